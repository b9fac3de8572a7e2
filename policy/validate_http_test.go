package policy

import "testing"

// Route cases append a routes list to base: the route is on line 5.

func TestValidateHeaderRules(t *testing.T) {
	runCases(t, base, []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "valid mutations and substitution variables",
			src: "routes:\n  - {name: r, backend: be, auth: none, headers: {request: {add: {x-a: \"%REQ(x-b):10% %% %START_TIME(%s)%\", x-n: 2}, " +
				"set: {x-ip: \"%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%\"}, remove: [x-debug]}, response: {set: {cache-control: no-store}}}}\n",
		},
		{
			name: "identity, host, pseudo and Envoy headers cannot be changed",
			src:  "routes:\n  - {name: r, backend: be, auth: none, headers: {request: {set: {x-user-id: a, host: b, \":path\": c, x-envoy-foo: d}, remove: [X-User-Roles]}}}\n",
			want: []string{
				`5:66 error routes[0].headers.request.set.x-user-id: header "x-user-id" is an identity header managed by the auth layer`,
				`5:80 error routes[0].headers.request.set.host: header "host" cannot be changed here`,
				`5:89 error routes[0].headers.request.set.:path: header ":path" cannot be changed here`,
				`5:101 error routes[0].headers.request.set.x-envoy-foo: header "x-envoy-foo" is reserved for Envoy`,
				`5:127 error routes[0].headers.request.remove[0]: header "x-user-roles" is an identity header managed by the auth layer`,
			},
		},
		{
			name: "substitution variables are checked",
			src:  "routes:\n  - {name: r, backend: be, auth: none, headers: {request: {add: {x-a: \"%NOPE%\", x-b: \"%REQ%\", x-c: \"50%\", x-d: \"%DOWNSTREAM_REMOTE_ADDRESS(x)%\"}}}}\n",
			want: []string{
				`5:66 error routes[0].headers.request.add.x-a: unknown substitution variable %NOPE%`,
				`5:81 error routes[0].headers.request.add.x-b: substitution variable %REQ% needs an argument, e.g. %REQ(x-request-id)%`,
				`5:95 error routes[0].headers.request.add.x-c: unterminated substitution variable: a "%" without its closing "%"`,
				`5:107 error routes[0].headers.request.add.x-d: substitution variable %DOWNSTREAM_REMOTE_ADDRESS% takes no argument`,
			},
		},
		{
			name: "one change per header, valid names",
			src:  "routes:\n  - {name: r, backend: be, auth: none, headers: {request: {add: {x-a: one}, set: {X-A: two}}, response: {remove: [bad header]}}}\n",
			want: []string{
				`5:83 error routes[0].headers.request.set.X-A: header "x-a" is already changed at routes[0].headers.request.add.x-a (p.yaml:5:66)`,
				`5:115 error routes[0].headers.response.remove[0]: invalid header name "bad header"`,
			},
		},
		{
			name: "query parameters need no escaping",
			src:  "routes:\n  - {name: r, backend: be, auth: none, query: {add: {a: \"x y\"}, set: {v: 2}, remove: [\"a&b\"]}}\n",
			want: []string{
				`5:54 error routes[0].query.add.a: invalid query parameter value "x y"`,
				`5:87 error routes[0].query.remove[0]: invalid query parameter name "a&b"`,
			},
		},
		{
			name: "a Server response header is stripped by default",
			src:  "routes:\n  - {name: r, backend: be, auth: none, headers: {response: {set: {Server: mine}}}}\n",
			want: []string{`5:67 warning routes[0].headers.response.set.Server: the Server header is removed from responses while the gateway strips internal headers (the default)`},
		},
		{
			name: "custom identity headers are protected",
			src:  "auth: {identityHeaders: {userId: x-uid}}\nroutes: [{name: r, backend: be, auth: none, headers: {request: {remove: [x-uid]}}}]\n",
			want: []string{`5:74 error routes[0].headers.request.remove[0]: header "x-uid" is an identity header managed by the auth layer`},
		},
	})
}

func TestValidateRouteAnswers(t *testing.T) {
	runCases(t, base, []struct {
		name string
		src  string
		want []string
	}{
		{name: "direct response", src: "routes:\n  - {name: r, backend: be, auth: none}\n  - {name: d, auth: none, match: {path: /d}, directResponse: {status: 403, body: no}}\n"},
		{name: "redirect", src: "routes:\n  - {name: r, backend: be, auth: none}\n  - {name: d, auth: none, match: {path: /d}, redirect: {scheme: https, port: 443, status: 307}}\n"},
		{
			name: "a route needs a backend or an answer",
			src:  "routes:\n  - {name: r, auth: none}\n",
			want: []string{`5:6 error routes[0].backend: route has no backend`},
		},
		{
			name: "backend and direct response are exclusive",
			src:  "routes:\n  - {name: r, backend: be, auth: none, directResponse: {status: 200}}\n",
			want: []string{`5:57 error routes[0].directResponse: a route has exactly one of backend (or backends), directResponse and redirect; this one has backend and directResponse`},
		},
		{
			name: "direct response status and redirect exclusive",
			src:  "routes:\n  - {name: r, auth: none, directResponse: {status: 99}, redirect: {path: /x}}\n",
			want: []string{
				`5:52 error routes[0].directResponse.status: status 99 is out of range`,
				`5:68 error routes[0].redirect: a route has exactly one of backend (or backends), directResponse and redirect; this one has directResponse and redirect`,
			},
		},
		{
			name: "direct response needs a status",
			src:  "routes:\n  - {name: r, auth: none, directResponse: {body: x}}\n",
			want: []string{`5:44 error routes[0].directResponse.status: missing required field "status"`},
		},
		{
			name: "redirect fields",
			src:  "routes:\n  - {name: r, auth: none, redirect: {status: 300, scheme: ftp, host: \"Bad Host\", port: 70000, path: x, pathPrefix: /y}}\n",
			want: []string{
				`5:46 error routes[0].redirect.status: status 300 is not a redirect status`,
				`5:59 error routes[0].redirect.scheme: unknown scheme "ftp"`,
				`5:70 error routes[0].redirect.host: invalid redirect host "Bad Host"`,
				`5:88 error routes[0].redirect.port: port 70000 is out of range`,
				`5:101 error routes[0].redirect.path: path "x" must start with "/"`,
				`5:116 error routes[0].redirect.pathPrefix: path and pathPrefix are exclusive`,
			},
		},
		{
			name: "redirect to the same URL",
			src:  "routes:\n  - {name: r, auth: none, redirect: {status: 302}}\n",
			want: []string{`5:38 error routes[0].redirect: redirect changes nothing: it would send clients back to the same URL`},
		},
		{
			name: "no rate limit without a backend",
			src:  "auth: {apiKeys: {}}\nrateLimits: {anonymous: [{requests: 1, per: second}]}\nroutes:\n  - {name: r, backend: be, auth: none}\n  - {name: d, auth: none, match: {path: /d}, directResponse: {status: 200}}\n  - {name: x, auth: none, match: {path: /x}, directResponse: {status: 200}, rateLimit: {extra: [{requests: 1, per: second}]}}\n",
			want: []string{`9:89 error routes[2].rateLimit: a route without a backend cannot be rate limited (Envoy answers it before any limit applies)`},
		},
		{
			name: "rewrite needs a backend",
			src:  "routes:\n  - {name: r, auth: none, directResponse: {status: 200}, rewrite: {pathPrefix: /}}\n",
			want: []string{`5:68 error routes[0].rewrite: rewrite needs a backend`},
		},
	})
}

func TestValidateRewrite(t *testing.T) {
	runCases(t, base, []struct {
		name string
		src  string
		want []string
	}{
		{name: "regex and literal host", src: "routes:\n  - {name: r, backend: be, auth: none, rewrite: {pathRegex: {pattern: \"^/a/(.*)$\", substitution: '/\\1'}, host: \"api.internal:8080\"}}\n"},
		{name: "host from backend", src: "routes:\n  - {name: r, backend: be, auth: none, rewrite: {pathPrefix: /, hostFromBackend: true}}\n"},
		{name: "empty substitution", src: "routes:\n  - {name: r, backend: be, auth: none, rewrite: {pathRegex: {pattern: \"/v1\", substitution: \"\"}}}\n"},
		{
			name: "a rewrite does something",
			src:  "routes:\n  - {name: r, backend: be, auth: none, rewrite: {}}\n",
			want: []string{`5:49 error routes[0].rewrite: rewrite changes nothing`},
		},
		{
			name: "exclusive fields, bad regex and host",
			src:  "routes:\n  - {name: r, backend: be, auth: none, rewrite: {pathPrefix: /, pathRegex: {pattern: \"(\", substitution: \"\"}, host: \"bad host\", hostFromBackend: true}}\n",
			want: []string{
				`5:77 error routes[0].rewrite.pathRegex: pathPrefix and pathRegex are exclusive`,
				"5:86 error routes[0].rewrite.pathRegex.pattern: invalid regex \"(\": missing closing ): `(`",
				`5:116 error routes[0].rewrite.host: invalid host "bad host"`,
				`5:145 error routes[0].rewrite.hostFromBackend: host and hostFromBackend are exclusive`,
			},
		},
		{
			name: "substitution is required",
			src:  "routes:\n  - {name: r, backend: be, auth: none, rewrite: {pathRegex: {pattern: \"^/a\"}}}\n",
			want: []string{`5:62 error routes[0].rewrite.pathRegex.substitution: missing required field "substitution"`},
		},
		{
			name: "host port",
			src:  "routes:\n  - {name: r, backend: be, auth: none, rewrite: {host: \"api.internal:99999\"}}\n",
			want: []string{`5:56 error routes[0].rewrite.host: invalid port in host "api.internal:99999"`},
		},
	})
}

func TestValidateCORSCompressionLua(t *testing.T) {
	runCases(t, base, []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "valid CORS, compression and Lua",
			src: "routes:\n  - {name: r, backend: be, auth: none, cors: {allowOrigins: [\"https://a.example.com\", \"*\"], maxAge: 1m}, " +
				"compression: {algorithms: [br" + "otli], minLength: 0, contentTypes: [application/json]}, lua: \"function envoy_on_request(h) end\"}\n",
		},
		{name: "none on a route", src: "routes:\n  - {name: r, backend: be, auth: none, cors: none, compression: none}\n"},
		{
			name: "CORS allows an origin",
			src:  "routes:\n  - {name: r, backend: be, auth: none, cors: {}}\n",
			want: []string{`5:46 error routes[0].cors: CORS policy allows no origin`},
		},
		{
			name: "CORS fields",
			src: "routes:\n  - {name: r, backend: be, auth: none, match: {methods: [GET]}, cors: {allowOrigins: [\"*\", \"https://a.com/path\", \"HTTPS://A.COM\", \"a.com\"], " +
				"allowOriginRegexes: [\"(\"], allowMethods: [get], allowHeaders: [\"bad h\"], allowCredentials: true, maxAge: 1500ms}}\n",
			want: []string{
				`5:72 warning routes[0].cors: the route's match.methods has no OPTIONS, so CORS preflight requests do not match it and get 404`,
				`5:87 error routes[0].cors.allowOrigins[0]: allowOrigins "*" cannot be used with allowCredentials: true`,
				`5:92 error routes[0].cors.allowOrigins[1]: invalid origin "https://a.com/path": an origin has no path, query, fragment or user`,
				`5:114 error routes[0].cors.allowOrigins[2]: invalid origin "HTTPS://A.COM": browsers send origins in lower case`,
				`5:131 error routes[0].cors.allowOrigins[3]: invalid origin "a.com": the scheme must be http or https`,
				"5:162 error routes[0].cors.allowOriginRegexes[0]: invalid regex \"(\": missing closing ): `(`",
				`5:183 error routes[0].cors.allowMethods[0]: invalid method "get"`,
				`5:204 error routes[0].cors.allowHeaders[0]: invalid header name "bad h"`,
				`5:246 error routes[0].cors.maxAge: maxAge 1500ms is not a whole number of seconds ≥ 1s`,
			},
		},
		{
			name: "CORS is none or a mapping",
			src:  "routes:\n  - {name: r, backend: be, auth: none, cors: nope}\n",
			want: []string{`5:46 error routes[0].cors: expected "none" or a mapping, got string "nope"`},
		},
		{
			name: "compression fields",
			src: "routes:\n  - {name: r, backend: be, auth: none, compression: {algorithms: [gzip, zstd, gzip, brotl], minLength: -1, " +
				"contentTypes: [json, \"Text/Plain\", \"text/plain; charset=utf-8\"]}}\n",
			want: []string{
				`5:73 error routes[0].compression.algorithms[1]: unknown algorithm "zstd"`,
				`5:79 error routes[0].compression.algorithms[2]: duplicate algorithm "gzip"`,
				`5:85 error routes[0].compression.algorithms[3]: unknown algorithm "brotl"; did you mean "brotli"?`,
				`5:104 error routes[0].compression.minLength: minLength -1 is out of range`,
				`5:123 error routes[0].compression.contentTypes[0]: invalid content type "json"`,
				`5:129 error routes[0].compression.contentTypes[1]: invalid content type "Text/Plain"`,
				`5:143 error routes[0].compression.contentTypes[2]: invalid content type "text/plain; charset=utf-8"`,
			},
		},
		{
			name: "compression needs an algorithm",
			src:  "routes:\n  - {name: r, backend: be, auth: none, compression: {algorithms: []}}\n",
			want: []string{`5:66 error routes[0].compression.algorithms: no algorithm`},
		},
		{
			name: "Lua defines a handler",
			src:  "routes:\n  - {name: r, backend: be, auth: none, lua: \"print(1)\"}\n",
			want: []string{`5:45 error routes[0].lua: Lua script defines neither envoy_on_request nor envoy_on_response`},
		},
		{
			name: "Lua cannot touch identity headers",
			src:  "routes:\n  - {name: r, backend: be, auth: none, lua: \"function envoy_on_request(h) h:headers():replace('X-User-Id', 'admin') end\"}\n",
			want: []string{`5:45 error routes[0].lua: Lua script names the identity header "x-user-id"`},
		},
		{
			name: "Lua is a string",
			src:  "routes:\n  - {name: r, backend: be, auth: none, lua: 5}\n",
			want: []string{`5:45 error routes[0].lua: expected a string, got integer 5`},
		},
	})
}

func TestValidateGatewayTransformAndEdge(t *testing.T) {
	const gw = "version: 1\ngateways:\n  - name: gw\n    listeners: [{name: http, port: 8080}]\n"
	const tail = "backends: [{name: be, endpoints: [\"10.0.0.1:80\"]}]\nroutes: [{name: r, backend: be, auth: none}]\n"
	runCases(t, gw, []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "valid gateway settings",
			src: "    headers: {request: {set: {x-gw: a}}, response: {remove: [x-powered-by]}}\n    cors: {allowOrigins: [\"https://a.example.com\"]}\n" +
				"    compression: {}\n    edge: {xffTrustedHops: 2, stripInternalHeaders: false, maxRequestHeadersKb: 96, maxHeadersCount: 200, " +
				"requestHeadersTimeout: 5s, streamIdleTimeout: 1m, idleTimeout: 10m}\n" + tail,
		},
		{
			name: "gateway fields",
			src: "    cors: none\n    compression: none\n    edge: {xffTrustedHops: 11, maxRequestHeadersKb: 0, maxHeadersCount: 20000, requestHeadersTimeout: 0s, " +
				"streamIdleTimeout: x, idleTimeout: -1s, stripInternalHeaders: 1}\n    headers: {request: {set: {x-consumer-tier: gold}}}\n" + tail,
			want: []string{
				`5:11 error gateways[0].cors: "none" is only for routes`,
				`6:18 error gateways[0].compression: "none" is only for routes`,
				`7:28 error gateways[0].edge.xffTrustedHops: 11 is out of range`,
				`7:53 error gateways[0].edge.maxRequestHeadersKb: 0 is out of range`,
				`7:73 error gateways[0].edge.maxHeadersCount: 20000 is out of range`,
				`7:103 error gateways[0].edge.requestHeadersTimeout: requestHeadersTimeout must be positive, got 0s`,
				`7:126 error gateways[0].edge.streamIdleTimeout: invalid duration "x"`,
				`7:142 error gateways[0].edge.idleTimeout: idleTimeout must be positive, got -1s`,
				`7:169 error gateways[0].edge.stripInternalHeaders: expected true or false, got integer 1`,
				`8:31 error gateways[0].headers.request.set.x-consumer-tier: header "x-consumer-tier" is an identity header managed by the auth layer`,
			},
		},
		{
			name: "unknown edge field",
			src:  "    edge: {xffTrustedHop: 1}\n" + tail,
			want: []string{`5:12 error gateways[0].edge.xffTrustedHop: unknown field "xffTrustedHop"; did you mean "xffTrustedHops"?`},
		},
	})
}

func TestCompileRouteWithoutBackendIsNotRateLimited(t *testing.T) {
	src := base + "auth: {apiKeys: {}}\nrateLimits: {anonymous: [{requests: 1, per: second}]}\nroutes:\n" +
		"  - {name: r, backend: be, auth: none}\n  - {name: d, auth: none, match: {path: /d}, directResponse: {status: 200}}\n"
	cfg := buildValid(t, []File{{Name: "p.yaml", Content: []byte(src)}})
	for _, r := range cfg.Gateways[0].VirtualHosts[0].Routes {
		if want := r.Name == "r"; r.RateLimit.Enabled != want {
			t.Errorf("route %s: rate limited %v, want %v", r.Name, r.RateLimit.Enabled, want)
		}
	}
}
