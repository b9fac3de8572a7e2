package policy

import (
	"github.com/goccy/go-yaml/ast"
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
func loadListenerTLS(l *loader, ln *Listener, path string, n ast.Node) {
	ln.TLS = &ListenerTLS{}
	mapping(l, path, n, ln.TLS, l.schema.tls.listener)
}

// loadGatewayHSTS loads a gateway's hsts mapping.
func loadGatewayHSTS(l *loader, g *Gateway, path string, n ast.Node) {
	g.HSTS = &HSTS{}
	mapping(l, path, n, g.HSTS, l.schema.tls.hsts)
}

// loadBackendTLS loads a backend's tls mapping.
func loadBackendTLS(l *loader, b *Backend, path string, n ast.Node) {
	b.TLS = &BackendTLS{}
	mapping(l, path, n, b.TLS, l.schema.tls.backend)
}

func listenerTLSFields() []field[ListenerTLS] {
	return []field[ListenerTLS]{
		{name: "certificates", hint: "add `certificates: [{name: main, cert: /etc/tollgate/tls.crt, key: /etc/tollgate/tls.key}]`",
			load: func(l *loader, t *ListenerTLS, path string, n ast.Node) {
				t.Certificates = appendList(l, path, n, []Certificate{}, l.schema.tls.cert)
			}},
		{name: "minVersion", load: func(l *loader, t *ListenerTLS, path string, n ast.Node) {
			t.MinVersion = l.versionString(path, n)
		}},
		{name: "clientCA", load: func(l *loader, t *ListenerTLS, path string, n ast.Node) {
			t.ClientCA = l.str(path, n)
		}},
		{name: "acme", load: loadACME},
	}
}

func certificateFields() []field[Certificate] {
	return []field[Certificate]{
		{name: "name", required: true, hint: "add `name: <certificate name>`", load: func(l *loader, c *Certificate, path string, n ast.Node) {
			c.Name = l.str(path, n)
		}},
		{name: "cert", required: true, hint: "add `cert: <file path or inline PEM of the certificate chain>`", load: func(l *loader, c *Certificate, path string, n ast.Node) {
			c.Cert = l.str(path, n)
		}},
		{name: "key", required: true, hint: "add `key: <file path or inline PEM of the private key>`", load: func(l *loader, c *Certificate, path string, n ast.Node) {
			c.Key = l.str(path, n)
		}},
	}
}

func hstsFields() []field[HSTS] {
	return []field[HSTS]{
		{name: "maxAge", load: func(l *loader, h *HSTS, path string, n ast.Node) {
			h.MaxAge, h.MaxAgeSet = l.integer(path, n)
		}},
		{name: "includeSubDomains", load: func(l *loader, h *HSTS, path string, n ast.Node) {
			h.IncludeSubDomains = l.boolean(path, n)
		}},
		{name: "preload", load: func(l *loader, h *HSTS, path string, n ast.Node) {
			h.Preload = l.boolean(path, n)
		}},
	}
}

func backendTLSFields() []field[BackendTLS] {
	return []field[BackendTLS]{
		{name: "sni", load: func(l *loader, t *BackendTLS, path string, n ast.Node) {
			t.SNI = l.str(path, n)
		}},
		{name: "ca", load: func(l *loader, t *BackendTLS, path string, n ast.Node) {
			t.CA = l.str(path, n)
		}},
		{name: "clientCert", load: func(l *loader, t *BackendTLS, path string, n ast.Node) {
			t.ClientCert = &ClientCert{}
			mapping(l, path, n, t.ClientCert, l.schema.tls.clientCert)
		}},
	}
}

func clientCertFields() []field[ClientCert] {
	return []field[ClientCert]{
		{name: "cert", required: true, hint: "add `cert: <file path or inline PEM>`", load: func(l *loader, c *ClientCert, path string, n ast.Node) {
			c.Cert = l.str(path, n)
		}},
		{name: "key", required: true, hint: "add `key: <file path or inline PEM>`", load: func(l *loader, c *ClientCert, path string, n ast.Node) {
			c.Key = l.str(path, n)
		}},
	}
}

// versionString loads a TLS version written as a string ("1.2") or a YAML
// number (1.2), keeping its text.
func (l *loader) versionString(path string, n ast.Node) string {
	v, ok := l.resolve(path, n)
	if !ok {
		return ""
	}
	if f, ok := v.(*ast.FloatNode); ok {
		return f.GetToken().Value
	}
	return l.str(path, v)
}
