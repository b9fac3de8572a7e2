package policy

import (
	"cmp"
	"slices"
	"strings"

	"github.com/tollgate/tollgate/policy/ir"
)

// compileACME returns the IR of a listener's tls.acme block.
func compileACME(gateway, listener string, a ACME) *ir.ACME {
	domains := make([]string, 0, len(a.Domains))
	for _, d := range a.Domains {
		domains = append(domains, strings.ToLower(d))
	}
	slices.Sort(domains)
	return &ir.ACME{
		Secret:      ir.ListenerCertSecretName(gateway, listener, acmeCertName),
		Domains:     slices.Compact(domains),
		Email:       a.Email,
		Directory:   cmp.Or(a.Directory, DefaultACMEDirectory),
		RenewBefore: durationOr(a.RenewBefore, DefaultACMERenewBefore),
	}
}
