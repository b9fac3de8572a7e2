package policy

import "go.yaml.in/yaml/v3"

// loadACME loads a listener's tls.acme mapping.
func loadACME(l *loader, t *ListenerTLS, path string, n *yaml.Node) {
	t.ACME = &ACME{}
	mapping(l, path, n, t.ACME, acmeFields())
}

func acmeFields() []field[ACME] {
	return []field[ACME]{
		{name: "domains", required: true, hint: "add `domains: [api.example.com]`", load: func(l *loader, a *ACME, path string, n *yaml.Node) {
			a.Domains = l.strings(path, n)
		}},
		{name: "email", load: func(l *loader, a *ACME, path string, n *yaml.Node) { a.Email = l.str(path, n) }},
		{name: "directory", load: func(l *loader, a *ACME, path string, n *yaml.Node) { a.Directory = l.str(path, n) }},
		{name: "renewBefore", load: func(l *loader, a *ACME, path string, n *yaml.Node) { a.RenewBefore = l.str(path, n) }},
	}
}
