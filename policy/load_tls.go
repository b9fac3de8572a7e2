package policy

import (
	"go.yaml.in/yaml/v3"
)

// tlsSchema holds the allowed fields of the TLS mappings.
type tlsSchema struct {
	listener   []field[ListenerTLS]
	cert       []field[Certificate]
	hsts       []field[HSTS]
	backend    []field[BackendTLS]
	clientCert []field[ClientCert]
}

func newTLSSchema() tlsSchema {
	return tlsSchema{
		listener:   listenerTLSFields(),
		cert:       certificateFields(),
		hsts:       hstsFields(),
		backend:    backendTLSFields(),
		clientCert: clientCertFields(),
	}
}

// loadListenerTLS loads a listener's tls mapping.
func loadListenerTLS(l *loader, ln *Listener, path string, n *yaml.Node) {
	ln.TLS = &ListenerTLS{}
	mapping(l, path, n, ln.TLS, l.schema.tls.listener)
}

// loadGatewayHSTS loads a gateway's hsts mapping.
func loadGatewayHSTS(l *loader, g *Gateway, path string, n *yaml.Node) {
	g.HSTS = &HSTS{}
	mapping(l, path, n, g.HSTS, l.schema.tls.hsts)
}

// loadBackendTLS loads a backend's tls mapping.
func loadBackendTLS(l *loader, b *Backend, path string, n *yaml.Node) {
	b.TLS = &BackendTLS{}
	mapping(l, path, n, b.TLS, l.schema.tls.backend)
}

func listenerTLSFields() []field[ListenerTLS] {
	return []field[ListenerTLS]{
		{name: "certificates", hint: "add `certificates: [{name: main, cert: /etc/tollgate/tls.crt, key: /etc/tollgate/tls.key}]`",
			load: func(l *loader, t *ListenerTLS, path string, n *yaml.Node) {
				t.Certificates = appendList(l, path, n, []Certificate{}, l.schema.tls.cert)
			}},
		{name: "minVersion", load: func(l *loader, t *ListenerTLS, path string, n *yaml.Node) {
			t.MinVersion = l.versionString(path, n)
		}},
		{name: "clientCA", load: func(l *loader, t *ListenerTLS, path string, n *yaml.Node) {
			t.ClientCA = l.str(path, n)
		}},
		{name: "acme", load: loadACME},
	}
}

func certificateFields() []field[Certificate] {
	return []field[Certificate]{
		{name: "name", required: true, hint: "add `name: <certificate name>`", load: func(l *loader, c *Certificate, path string, n *yaml.Node) {
			c.Name = l.str(path, n)
		}},
		{name: "cert", required: true, hint: "add `cert: <file path or inline PEM of the certificate chain>`", load: func(l *loader, c *Certificate, path string, n *yaml.Node) {
			c.Cert = l.str(path, n)
		}},
		{name: "key", required: true, hint: "add `key: <file path or inline PEM of the private key>`", load: func(l *loader, c *Certificate, path string, n *yaml.Node) {
			c.Key = l.str(path, n)
		}},
	}
}

func hstsFields() []field[HSTS] {
	return []field[HSTS]{
		{name: "maxAge", load: func(l *loader, h *HSTS, path string, n *yaml.Node) {
			h.MaxAge, h.MaxAgeSet = l.integer(path, n)
		}},
		{name: "includeSubDomains", load: func(l *loader, h *HSTS, path string, n *yaml.Node) {
			h.IncludeSubDomains = l.boolean(path, n)
		}},
		{name: "preload", load: func(l *loader, h *HSTS, path string, n *yaml.Node) {
			h.Preload = l.boolean(path, n)
		}},
	}
}

func backendTLSFields() []field[BackendTLS] {
	return []field[BackendTLS]{
		{name: "sni", load: func(l *loader, t *BackendTLS, path string, n *yaml.Node) {
			t.SNI = l.str(path, n)
		}},
		{name: "ca", load: func(l *loader, t *BackendTLS, path string, n *yaml.Node) {
			t.CA = l.str(path, n)
		}},
		{name: "clientCert", load: func(l *loader, t *BackendTLS, path string, n *yaml.Node) {
			t.ClientCert = &ClientCert{}
			mapping(l, path, n, t.ClientCert, l.schema.tls.clientCert)
		}},
	}
}

func clientCertFields() []field[ClientCert] {
	return []field[ClientCert]{
		{name: "cert", required: true, hint: "add `cert: <file path or inline PEM>`", load: func(l *loader, c *ClientCert, path string, n *yaml.Node) {
			c.Cert = l.str(path, n)
		}},
		{name: "key", required: true, hint: "add `key: <file path or inline PEM>`", load: func(l *loader, c *ClientCert, path string, n *yaml.Node) {
			c.Key = l.str(path, n)
		}},
	}
}

// versionString loads a TLS version written as a string ("1.2") or a YAML
// number (1.2), keeping its text.
func (l *loader) versionString(path string, n *yaml.Node) string {
	v, ok := l.resolve(path, n)
	if !ok {
		return ""
	}
	if kindOfNode(v) == kindFloat {
		return v.Value
	}
	return l.str(path, v)
}
