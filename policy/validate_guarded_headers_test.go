package policy

import "testing"

// TestValidateGuardedHeaderMatches: a route match may not name an identity
// or credential header. Envoy picks the route before any filter strips the
// identity headers, so a free-tier client sending x-consumer-tier:
// enterprise would pick the route meant for enterprise (issue 12 item 4).
func TestValidateGuardedHeaderMatches(t *testing.T) {
	runCases(t, base, []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "default identity and credential headers",
			src: "routes:\n  - name: r\n    backend: be\n    auth: none\n    match:\n      headers:\n" +
				"        - {name: x-consumer-tier, exact: enterprise}\n        - {name: X-User-Id, present: true}\n" +
				"        - {name: x-tenant-id, prefix: a}\n        - {name: x-user-roles, regex: \".*admin.*\"}\n" +
				"        - {name: Authorization, prefix: \"Bearer \"}\n        - {name: x-api-key, present: true}\n" +
				"        - {name: proxy-authorization, present: true}\n" +
				"        - {name: cookie, regex: \".*canary=1.*\"}\n        - {name: x-api-version, exact: \"2\"}\n",
			want: []string{
				`10:18 error routes[0].match.headers[0].name: header "x-consumer-tier" is an identity header: ` + identityMatchWhy,
				`11:18 error routes[0].match.headers[1].name: header "x-user-id" is an identity header: ` + identityMatchWhy,
				`12:18 error routes[0].match.headers[2].name: header "x-tenant-id" is an identity header: ` + identityMatchWhy,
				`13:18 error routes[0].match.headers[3].name: header "x-user-roles" is an identity header: ` + identityMatchWhy,
				`14:18 error routes[0].match.headers[4].name: header "authorization" carries raw credentials (bearer tokens, ` + "`ApiKey <key>`" + `): ` + credentialMatchWhy,
				`15:18 error routes[0].match.headers[5].name: header "x-api-key" carries raw API keys: ` + credentialMatchWhy,
				`16:18 error routes[0].match.headers[6].name: header "proxy-authorization" carries raw proxy credentials: ` + credentialMatchWhy,
			},
		},
		{
			name: "configured identity and API-key headers",
			src: "auth: {apiKeys: {header: x-gw-key}, identityHeaders: {tier: x-plan}}\n" +
				"routes:\n  - name: r\n    backend: be\n    match:\n      headers:\n" +
				"        - {name: x-plan, exact: gold}\n        - {name: X-GW-Key, present: true}\n        - {name: x-consumer-tier, exact: gold}\n",
			want: []string{
				`10:18 error routes[0].match.headers[0].name: header "x-plan" is an identity header: ` + identityMatchWhy,
				`11:18 error routes[0].match.headers[1].name: header "x-gw-key" carries the gateway's raw API keys (auth.apiKeys.header): ` + credentialMatchWhy,
			},
		},
	})
}

const identityMatchWhy = "Envoy picks the route before the auth layer strips and sets it, so any client could pick this route by sending " +
	"the value the match wants (e.g. a free-tier caller sending x-consumer-tier: enterprise)"

const credentialMatchWhy = "Envoy picks the route before the credential is verified, so the match would trust whatever the client sends"

// TestValidateCredentialRateLimitKeys: a rate-limit key may not be a
// credential header, which would write raw credentials into the counters'
// Redis key names (issue 12 item 13).
func TestValidateCredentialRateLimitKeys(t *testing.T) {
	runCases(t, base, []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "credential headers",
			src: "auth: {apiKeys: {header: x-gw-key}}\nroutes:\n  - name: r\n    backend: be\n    rateLimit:\n" +
				"      extra: [{requests: 1, per: second}]\n" +
				"      by: [header:authorization, header:X-Api-Key, header:cookie, header:proxy-authorization, header:x-gw-key, header:x-tenant-id]\n",
			want: []string{
				`10:12 error routes[0].rateLimit.by[0]: key "header:authorization" would write raw credentials (bearer tokens, ` + "`ApiKey <key>`" +
					`) into the names of the counters in Redis: header "authorization" is a credential header`,
				`10:34 error routes[0].rateLimit.by[1]: key "header:X-Api-Key" would write raw API keys into the names of the counters in Redis: ` +
					`header "x-api-key" is a credential header`,
				`10:52 error routes[0].rateLimit.by[2]: key "header:cookie" would write raw session cookies into the names of the counters in Redis: ` +
					`header "cookie" is a credential header`,
				`10:67 error routes[0].rateLimit.by[3]: key "header:proxy-authorization" would write raw proxy credentials into the names of the counters in Redis: ` +
					`header "proxy-authorization" is a credential header`,
				`10:95 error routes[0].rateLimit.by[4]: key "header:x-gw-key" would write the gateway's raw API keys (auth.apiKeys.header) into the names of the counters in Redis: ` +
					`header "x-gw-key" is a credential header`,
			},
		},
	})
}
