package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/tollgate/tollgate/internal/certs"
	"github.com/tollgate/tollgate/policy/ir"
)

// compileTLS adds the TLS settings to cfg, whose gateways and backends are
// still in the order of p's: listeners' TLS and each gateway's secrets
// (its listeners' and its backends'), redirect and HSTS; backends' upstream
// TLS.
func compileTLS(cfg *ir.Config, p *Policy) {
	backendSecrets := map[string][]ir.Secret{}
	for i, b := range p.Backends {
		if b.TLS != nil {
			cfg.Backends[i].TLS, backendSecrets[b.Name] = compileBackendTLS(b.Name, *b.TLS)
		}
	}
	for i, g := range p.Gateways {
		gw := &cfg.Gateways[i]
		gw.RedirectHTTPS = g.RedirectHTTPS
		gw.HSTS = compileHSTS(g.HSTS)
		var secrets []ir.Secret
		for _, ln := range g.Listeners {
			if ln.TLS == nil {
				continue
			}
			t, s := compileListenerTLS(g.Name, ln.Name, *ln.TLS)
			j := slices.IndexFunc(gw.Listeners, func(l ir.Listener) bool { return l.Name == ln.Name })
			gw.Listeners[j].TLS = t
			secrets = append(secrets, s...)
		}
		for _, b := range gw.BackendNames() {
			secrets = append(secrets, backendSecrets[b]...)
		}
		slices.SortFunc(secrets, func(a, b ir.Secret) int { return strings.Compare(a.Name, b.Name) })
		gw.Secrets = secrets
	}
}

func compileListenerTLS(gateway, listener string, t ListenerTLS) (*ir.ListenerTLS, []ir.Secret) {
	out := &ir.ListenerTLS{MinVersion: t.MinVersion}
	if out.MinVersion == "" {
		out.MinVersion = DefaultMinTLSVersion
	}
	var secrets []ir.Secret
	for _, c := range t.Certificates {
		name := ir.ListenerCertSecretName(gateway, listener, c.Name)
		out.CertificateSecrets = append(out.CertificateSecrets, name)
		secrets = append(secrets, ir.Secret{Name: name, Kind: ir.SecretCertificate, Cert: pemSource(c.Cert), Key: pemSource(c.Key)})
	}
	if t.ACME != nil {
		out.ACME = compileACME(gateway, listener, *t.ACME)
		out.CertificateSecrets = append(out.CertificateSecrets, out.ACME.Secret)
		secrets = append(secrets, ir.Secret{Name: out.ACME.Secret, Kind: ir.SecretCertificate}) // material at run time
	}
	if t.ClientCA != "" {
		out.ClientCASecret = ir.ListenerClientCASecretName(gateway, listener)
		secrets = append(secrets, ir.Secret{Name: out.ClientCASecret, Kind: ir.SecretCA, Cert: pemSource(t.ClientCA)})
	}
	return out, secrets
}

func compileBackendTLS(backend string, t BackendTLS) (*ir.BackendTLS, []ir.Secret) {
	out := &ir.BackendTLS{SNI: t.SNI}
	var secrets []ir.Secret
	if t.CA != "" {
		out.CASecret = ir.BackendCASecretName(backend)
		secrets = append(secrets, ir.Secret{Name: out.CASecret, Kind: ir.SecretCA, Cert: pemSource(t.CA)})
	}
	if t.ClientCert != nil {
		out.ClientCertSecret = ir.BackendClientCertSecretName(backend)
		secrets = append(secrets, ir.Secret{Name: out.ClientCertSecret, Kind: ir.SecretCertificate,
			Cert: pemSource(t.ClientCert.Cert), Key: pemSource(t.ClientCert.Key)})
	}
	return out, secrets
}

func compileHSTS(h *HSTS) *ir.HSTS {
	if h == nil {
		return nil
	}
	out := &ir.HSTS{MaxAgeSeconds: DefaultHSTSMaxAge, IncludeSubDomains: h.IncludeSubDomains, Preload: h.Preload}
	if h.MaxAgeSet {
		out.MaxAgeSeconds = int64(h.MaxAge)
	}
	return out
}

// pemSource turns a policy PEM field into its IR source: inline PEM (with
// its digest standing in for it in the IR's JSON) or a file path.
func pemSource(v string) ir.PEMSource {
	if certs.IsInlinePEM(v) {
		sum := sha256.Sum256([]byte(v))
		return ir.PEMSource{Inline: v, InlineSHA256: hex.EncodeToString(sum[:])}
	}
	return ir.PEMSource{File: v}
}
