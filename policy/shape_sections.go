package policy

// The shapes of the policy's mappings, one function per loader field
// table (see shape.go).

func gatewayShape() *Shape {
	return object("Gateway", "One Envoy fleet.", gatewayFields(), map[string]*Shape{
		"name":          sName("The gateway's name; Envoys select it with node.cluster."),
		"listeners":     &Shape{Type: "array", Doc: "Addresses the gateway's Envoys bind; every listener serves all of the gateway's routes.", Items: listenerShape(), Min: intp(1)},
		"auth":          object("GatewayAuth", "How the gateway's Envoys call the authorization service.", gatewayAuthFields(), gatewayAuthProps()),
		"redirectHTTPS": sBool("Every plaintext listener answers every request with 301 to https (needs a TLS listener)."),
		"hsts":          object("HSTS", "Strict-Transport-Security on every routed response of the TLS listeners.", hstsFields(), hstsProps()),
		"headers":       headerRulesShape(),
		"cors":          corsShape("CORS policy of every route without its own."),
		"compression":   compressionShape("Response compression of every route without its own."),
		"edge":          object("Edge", "Edge hardening of every listener; unset fields keep the defaults.", edgeFields(), edgeProps()),
	})
}

func listenerShape() *Shape {
	return object("Listener", "One address the gateway binds.", listenerFields(), map[string]*Shape{
		"name":    sName("Also the Envoy listener name, route table name and stats prefix."),
		"port":    sInt("TCP port, 1-65535.", 1, 65535),
		"address": sString("IPv4 or IPv6 address to bind (default 0.0.0.0)."),
		"tls":     object("ListenerTLS", "Terminate TLS on the listener: certificates or acme.", listenerTLSFields(), listenerTLSProps()),
	})
}

func routeShape() *Shape {
	return object("Route", "Sends matching requests to a backend (or answers them itself).", routeFields(), map[string]*Shape{
		"name":           sName("Unique in the policy; the Envoy route name."),
		"gateway":        sString("Attach the route to this gateway only (default: every gateway)."),
		"match":          object("Match", "Request conditions, all of which must hold (default pathPrefix /).", matchFields(), matchProps()),
		"backend":        sString("The backend to send matching requests to."),
		"rewrite":        object("Rewrite", "Path and Host rewriting.", rewriteFields(), rewriteProps()),
		"timeout":        sDuration("Whole upstream exchange, retries included (default 15s; 0s disables it)."),
		"auth":           sOneOf("Authentication: `none` for a public route, or the methods, roles and scopes required (default: every configured method).", sWord("none", "A public route: no authorization call."), object("RouteAuth", "What the caller needs.", routeAuthFields(), routeAuthProps())),
		"rateLimit":      sOneOf("Rate limiting: `none`, or the route's settings (default: tier limits on authenticated routes, anonymous limits on public ones).", sWord("none", "Not rate limited."), object("RouteRateLimit", "The route's rate limits.", routeRateLimitFields(), routeRateLimitProps())),
		"accessLog":      sOneOf("The route's access log: `off`, or its own sampling.", offShape(), object("RouteAccessLog", "The route's access-log sampling.", []field[RouteAccessLog]{{name: "sample"}}, map[string]*Shape{"sample": sPercent("Share of the route's requests logged.")})),
		"transform":      object("Transform", "Convert bodies between JSON and XML (ext_proc).", transformFields(), transformProps()),
		"backends":       sList("A weighted split instead of backend.", object("WeightedBackend", "One target of a split.", weightedFields(), map[string]*Shape{"name": sString("A backend name."), "weight": sInt("Share of the requests, 0-10000 (0 drains the backend).", 0, 10000)})),
		"retries":        object("Retries", "Retry policy.", retriesFields(), retriesProps()),
		"idleTimeout":    sDuration("A request with no bytes either way for this long is ended."),
		"mirror":         object("Mirror", "Copy requests to another backend; answers are ignored.", mirrorFields(), map[string]*Shape{"backend": sString("The backend that receives the copies."), "percent": sInt("Share of the requests mirrored, 1-100 (default 100).", 1, 100)}),
		"headers":        headerRulesShape(),
		"query":          object("QueryMutations", "Request query-parameter mutations.", headerMutationsFields(), mutationProps()),
		"directResponse": object("DirectResponse", "Envoy answers itself; the route has no backend.", directResponseFields(), map[string]*Shape{"status": sInt("HTTP status, 200-599.", 200, 599), "body": sString("Response body, at most 4096 bytes.")}),
		"redirect":       object("Redirect", "Answer with a redirect; the route has no backend.", redirectFields(), redirectProps()),
		"cors":           corsShape("The route's CORS policy (replaces the gateway's)."),
		"compression":    compressionShape("The route's response compression (replaces the gateway's)."),
		"lua":            sString("Inline Lua for this route: envoy_on_request and/or envoy_on_response, at most 64 KiB."),
	})
}

func matchProps() map[string]*Shape {
	return map[string]*Shape{
		"hosts":      sStrings("Host names or suffix wildcards (*.example.com), no port."),
		"path":       sString("Exact path, starting with /."),
		"pathPrefix": sString("Path prefix, starting with /."),
		"pathRegex":  sString("RE2 regex that must match the whole path."),
		"methods":    sStrings("HTTP methods (GET, POST, ...)."),
		"headers": sList("Header conditions; exactly one of exact, prefix, regex, present each.", object("HeaderMatch", "One header condition.", headerFields(), map[string]*Shape{
			"name": sString("Header name (no pseudo-headers)."), "exact": sString("Exact value."), "prefix": sString("Value prefix."),
			"regex": sString("RE2 regex of the whole value."), "present": sBool("The header is present."),
		})),
	}
}

func rewriteProps() map[string]*Shape {
	return map[string]*Shape{
		"pathPrefix": sString("Replace the matched path or prefix with this (not with pathRegex matches)."),
		"pathRegex": object("RegexRewrite", "Rewrite the path with a regex.", regexRewriteFields(), map[string]*Shape{
			"pattern": sString("RE2 pattern; matches are replaced."), "substitution": &Shape{Type: "string", Doc: `Replacement, with \1 groups; may be "".`, AllowEmpty: true},
		}),
		"host":            sString("Literal Host for the upstream."),
		"hostFromBackend": sBool("Host becomes the chosen endpoint's ip:port."),
	}
}

func backendShape() *Shape {
	endpoint := sOneOf("An endpoint: \"IP:port\", or a mapping with a weight and zone.", sString("IP:port."),
		object("Endpoint", "An endpoint with a weight and zone.", endpointFields(), map[string]*Shape{
			"address": sString("IP:port."), "weight": sInt("Share of the traffic, 1-10000 (default 1).", 1, 10000), "zone": sString("Envoy locality (informational)."),
		}))
	lbPolicy := sEnum("Load-balancing policy.", "round_robin", "least_request", "random", "ring_hash", "maglev")
	return object("Backend", "An upstream service; also the Envoy cluster name.", backendFields(), map[string]*Shape{
		"name":      sName("Unique; the Envoy cluster name."),
		"endpoints": sList("Static endpoints (or use dns).", endpoint),
		"loadBalancing": sOneOf("A policy name, or {policy, hashOn} (default round_robin).", lbPolicy,
			object("LoadBalancing", "A policy with session affinity.", lbFields(), map[string]*Shape{
				"policy": lbPolicy,
				"hashOn": object("HashOn", "Session affinity for ring_hash and maglev: exactly one of header, cookie, clientIP.", hashOnFields(), map[string]*Shape{
					"header":   sString("Hash this request header."),
					"cookie":   object("HashCookie", "Hash a cookie; with ttl Envoy sets it.", cookieFields(), map[string]*Shape{"name": sString("Cookie name."), "ttl": sDuration("Max-Age of the cookie Envoy sets (0s: a session cookie).")}),
					"clientIP": sBool("Hash the client address."),
				}),
			})),
		"connectTimeout": sDuration("TCP connect timeout (default 5s)."),
		"tls":            object("BackendTLS", "Envoy talks TLS to the endpoints.", backendTLSFields(), backendTLSProps()),
		"dns":            sString("host:port resolved by Envoy (strict DNS) instead of endpoints."),
		"healthCheck": object("HealthCheck", "Active HTTP health checks.", healthFields(), map[string]*Shape{
			"path": sString("Path to check, from /."), "interval": sDuration("Default 5s."), "timeout": sDuration("Default 1s, at most the interval."),
			"healthyThreshold": sInt("Default 2.", 1, 100), "unhealthyThreshold": sInt("Default 3.", 1, 100),
			"expectedStatuses": sList("Healthy statuses (default [200]).", sInt("", 100, 599)),
		}),
		"outlierDetection": object("OutlierDetection", "Passive ejection of failing endpoints ({} for the defaults).", outlierFields(), map[string]*Shape{
			"consecutive5xx": sInt("Default 5.", 1), "interval": sDuration("Default 10s."), "baseEjectionTime": sDuration("Default 30s."), "maxEjectionPercent": sInt("Default 50.", 1, 100),
		}),
		"circuitBreakers": object("CircuitBreakers", "Per-Envoy limits for the backend.", breakerFields(), map[string]*Shape{
			"maxConnections": sInt("", 1), "maxPendingRequests": sInt("", 1), "maxRequests": sInt("", 1), "maxRetries": sInt("", 1),
		}),
	})
}

func retriesProps() map[string]*Shape {
	return map[string]*Shape{
		"attempts":      sInt("Retries after the first try, 1-10 (default 1).", 1, 10),
		"on":            sList("Retry conditions (default [5xx, connect-failure, reset]).", sEnum("", "5xx", "gateway-error", "reset", "connect-failure", "retriable-4xx")),
		"perTryTimeout": sDuration("Timeout of each try (at most the route timeout)."),
		"backoff":       object("Backoff", "Wait between tries.", backoffFields(), map[string]*Shape{"base": sDuration("Base interval."), "max": sDuration("Maximum (default 10 × base).")}),
	}
}

func offShape() *Shape {
	return &Shape{Doc: "Turned off.", OneOf: []*Shape{sWord("off", ""), {Type: "boolean", Enum: []string{"false"}}}}
}
