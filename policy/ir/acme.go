package ir

import "time"

// ACME says that a TLS listener's certificate comes from an ACME CA: the
// control plane obtains and renews it (HTTP-01 through the gateway's
// plaintext listeners) and supplies it as the content of Secret, a
// certificate secret with no policy material (its PEMSource is empty).
type ACME struct {
	// Secret is the listener's certificate secret
	// (ListenerCertSecretName(gateway, listener, "acme")).
	Secret string `json:"secret"`
	// Domains, sorted, lower case.
	Domains     []string      `json:"domains"`
	Email       string        `json:"email,omitempty"`
	Directory   string        `json:"directory"`
	RenewBefore time.Duration `json:"renewBefore"`
}

// ACMEChallengeClusterName is the cluster of the control plane's HTTP-01
// challenge responder, which a gateway with ACME listeners routes
// /.well-known/acme-challenge/ to on its plaintext listeners.
const ACMEChallengeClusterName = "tollgate_acme"

// ACMEListeners returns the ACME settings of the gateway's TLS listeners,
// in listener order.
func (g *Gateway) ACMEListeners() []ACME {
	var out []ACME
	for _, l := range g.Listeners {
		if l.TLS != nil && l.TLS.ACME != nil {
			out = append(out, *l.TLS.ACME)
		}
	}
	return out
}
