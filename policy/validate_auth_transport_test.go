package policy

import (
	"slices"
	"testing"
)

// TestValidatePlainHTTPProviders: a jwksUri or introspectionUrl in plain
// http is refused unless its host is loopback or the provider says
// `insecure: true`, which draws a warning (issue 12 item 10).
func TestValidatePlainHTTPProviders(t *testing.T) {
	const keys = "anyone on the network path can replace the signing keys and forge tokens for any caller"
	const secret = "the client secret and every access token travel in clear, and anyone on the network path can answer that any token is active"
	oauth2 := func(fields string) string {
		return "  oauth2: [{name: p, clientId: c, clientSecretEnv: S, " + fields + "}]\n"
	}
	runCases(t, authBase, []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "plain http jwksUri",
			src:  jwt("jwksUri: http://idp.example.com/keys"),
			want: []string{`6:53 error auth.jwt[0].jwksUri: jwksUri "http://idp.example.com/keys" is plain http: ` + keys},
		},
		{
			name: "plain http introspectionUrl",
			src:  oauth2("introspectionUrl: \"http://10.0.0.5:8080/i\""),
			want: []string{`6:73 error auth.oauth2[0].introspectionUrl: introspectionUrl "http://10.0.0.5:8080/i" is plain http: ` + secret},
		},
		{
			name: "loopback hosts may use plain http",
			src: "  jwt:\n    - {name: a, issuer: a, jwksUri: \"http://127.0.0.1:9000/keys\"}\n" +
				"    - {name: b, issuer: b, jwksUri: \"http://127.8.0.1/keys\"}\n" +
				"    - {name: c, issuer: c, jwksUri: \"http://[::1]:9000/keys\"}\n" +
				"    - {name: d, issuer: d, jwksUri: \"http://LocalHost:9000/keys\"}\n" +
				oauth2("introspectionUrl: \"http://localhost:9001/i\""),
		},
		{
			name: "insecure: true allows plain http, with a warning",
			src: jwt("jwksUri: http://idp.example.com/keys, insecure: true") +
				oauth2("introspectionUrl: \"http://idp.example.com/i\", insecure: true"),
			want: []string{
				`6:92 warning auth.jwt[0].insecure: jwksUri "http://idp.example.com/keys" is plain http (insecure: true): ` + keys,
				`7:111 warning auth.oauth2[0].insecure: introspectionUrl "http://idp.example.com/i" is plain http (insecure: true): ` + secret,
			},
		},
		{
			name: "insecure: true where it changes nothing",
			src: "  jwt:\n    - {name: a, issuer: a, jwksUri: https://idp/keys, insecure: true}\n" +
				"    - {name: b, issuer: b, jwks: {keys: [{kty: RSA, n: x, e: AQAB}]}, insecure: true}\n" +
				oauth2("introspectionUrl: \"http://127.0.0.1/i\", insecure: true"),
			want: []string{
				`7:65 warning auth.jwt[0].insecure: insecure has no effect: the provider has no plain http jwksUri`,
				`8:81 warning auth.jwt[1].insecure: insecure has no effect: the provider has no plain http jwksUri`,
				`9:105 warning auth.oauth2[0].insecure: insecure has no effect: introspectionUrl "http://127.0.0.1/i" is on a loopback host, which plain http may reach anyway`,
			},
		},
		{
			name: "insecure is a boolean",
			src:  jwt("jwksUri: https://idp/keys, insecure: yes"),
			want: []string{`6:81 error auth.jwt[0].insecure: expected true or false, got string "yes"`},
		},
	})
}

// TestCompileInsecure: insecure reaches the IR.
func TestCompileInsecure(t *testing.T) {
	src := authBase + jwt("jwksUri: http://idp.example.com/keys, insecure: true") +
		"  oauth2: [{name: p, introspectionUrl: https://p/i, clientId: c, clientSecretEnv: S}]\n"
	cfg, ds := Build([]File{{Name: "p.yaml", Content: []byte(src)}})
	if cfg == nil || len(ds) != 1 || !slices.ContainsFunc(ds, func(d Diagnostic) bool { return d.Path == "auth.jwt[0].insecure" }) {
		t.Fatalf("want a config and one warning, got %q", render(ds))
	}
	if !cfg.Auth.JWT[0].Insecure || cfg.Auth.OAuth2[0].Insecure {
		t.Fatalf("insecure: jwt %v (want true), oauth2 %v (want false)", cfg.Auth.JWT[0].Insecure, cfg.Auth.OAuth2[0].Insecure)
	}
}
