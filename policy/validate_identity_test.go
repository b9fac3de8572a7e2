package policy

import "testing"

// oauth2 is one oauth2 provider entry (a flow mapping) with more fields.
func oauth2(name, fields string) string {
	return "    - {name: " + name + ", introspectionUrl: https://idp/i, clientId: c, clientSecretEnv: S" + fields + "}\n"
}

func TestValidateIdentityNamespaces(t *testing.T) {
	runCases(t, authBase, []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "an explicit namespace follows the name rule",
			src:  jwt("jwksUri: https://idp/k, namespace: Corp:1") + "  apiKeys: {namespace: a_b}\n",
			want: []string{`6:79 error auth.jwt[0].namespace: invalid identity namespace "Corp:1"`, `7:24 error auth.apiKeys.namespace: invalid identity namespace "a_b"`},
		},
		{
			name: "a jwt and an oauth2 provider of the same name do not share identities by accident",
			src:  jwt("jwksUri: https://idp/k") + "  oauth2:\n" + oauth2("corp", ""),
			want: []string{`8:14 error auth.oauth2[0].name: providers auth.jwt[0] (p.yaml:6:10) and auth.oauth2[0] share the identity namespace "corp" only because they have the same name: their callers with equal subjects would be one identity`},
		},
		{
			name: "sharing a namespace is explicit",
			src:  jwt("jwksUri: https://idp/k") + "  oauth2:\n" + oauth2("corp", ", namespace: corp"),
			want: nil,
		},
		{
			name: "two jwt providers may share a namespace",
			src: "  jwt:\n    - {name: corp, issuer: https://a/, jwksUri: https://a/k}\n" +
				"    - {name: partner, issuer: https://b/, jwksUri: https://b/k, namespace: corp}\n",
			want: nil,
		},
	})
}

func TestValidateTokenPrefixes(t *testing.T) {
	runCases(t, authBase, []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "one provider needs no prefix",
			src:  "  oauth2:\n" + oauth2("a", ""),
			want: nil,
		},
		{
			name: "several providers need one each",
			src:  "  oauth2:\n" + oauth2("a", ", tokenPrefix: a_") + oauth2("b", ""),
			want: []string{`8:8 error auth.oauth2[1]: oauth2 provider "b" has no tokenPrefix: with several oauth2 providers, each needs one so that a token is sent to its own provider's endpoint only, never to the others`},
		},
		{
			name: "no prefix may start another",
			src:  "  oauth2:\n" + oauth2("a", ", tokenPrefix: tok") + oauth2("b", ", tokenPrefix: tok_b") + oauth2("c", ", tokenPrefix: tok"),
			want: []string{
				`8:96 error auth.oauth2[1].tokenPrefix: tokenPrefix "tok_b" overlaps tokenPrefix "tok" at auth.oauth2[0].tokenPrefix (p.yaml:7:96): a token could belong to both providers`,
				`9:96 error auth.oauth2[2].tokenPrefix: tokenPrefix "tok" overlaps tokenPrefix "tok" at auth.oauth2[0].tokenPrefix (p.yaml:7:96): a token could belong to both providers`,
				`9:96 error auth.oauth2[2].tokenPrefix: tokenPrefix "tok" overlaps tokenPrefix "tok_b" at auth.oauth2[1].tokenPrefix (p.yaml:8:96): a token could belong to both providers`,
			},
		},
		{
			name: "a prefix holds bearer token characters",
			src:  "  oauth2:\n" + oauth2("a", ", tokenPrefix: \"a b\""),
			want: []string{`7:96 error auth.oauth2[0].tokenPrefix: tokenPrefix "a b" holds a character no bearer token has`},
		},
		{
			name: "maxConcurrent bounds",
			src:  "  oauth2:\n" + oauth2("a", ", maxConcurrent: 0, tokenPrefix: a_") + oauth2("b", ", maxConcurrent: 10001, tokenPrefix: b_"),
			want: []string{`7:98 error auth.oauth2[0].maxConcurrent: maxConcurrent must be at least 1, got 0`, `8:98 error auth.oauth2[1].maxConcurrent: maxConcurrent must be between 1 and 10000, got 10001`},
		},
	})
}
