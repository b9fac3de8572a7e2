package policy

func gatewayAuthProps() map[string]*Shape {
	return map[string]*Shape{
		"statusOnError": &Shape{Type: "integer", Doc: "Envoy's answer when the authorization service is unreachable or too slow (default 503), with a JSON body naming authz_unavailable.", Enum: []string{"403", "503"}},
		"timeout":       sDuration("Deadline of one authorization call (default 200ms)."),
	}
}

func hstsProps() map[string]*Shape {
	return map[string]*Shape{
		"maxAge":            sInt("Seconds (default 31536000).", 0),
		"includeSubDomains": sBool("Add includeSubDomains."),
		"preload":           sBool("Add preload (needs includeSubDomains and maxAge of at least a year)."),
	}
}

func edgeProps() map[string]*Shape {
	return map[string]*Shape{
		"xffTrustedHops":        sInt("Proxies in front of Envoy trusted in X-Forwarded-For (default 0).", 0, 10),
		"stripInternalHeaders":  sBool("Remove Server and x-envoy-* from responses (default true)."),
		"maxRequestHeadersKb":   sInt("Largest request headers in KiB (default 60).", 1),
		"maxHeadersCount":       sInt("Most request headers (default 100).", 1),
		"requestHeadersTimeout": sDuration("Time to receive the request headers (default 10s)."),
		"streamIdleTimeout":     sDuration("Idle time of a stream (default 5m)."),
		"idleTimeout":           sDuration("Idle time of a connection (default 1h)."),
	}
}

func listenerTLSProps() map[string]*Shape {
	return map[string]*Shape{
		"certificates": sList("Certificates chosen by SNI; the first is the default.", object("Certificate", "A certificate chain and its key.", certificateFields(), map[string]*Shape{
			"name": sName("Unique per listener."), "cert": sString("File path or inline PEM of the chain, leaf first."), "key": sString("File path or inline PEM of the private key."),
		})),
		"minVersion": sOneOf("Lowest TLS version (default \"1.2\").", sEnum("", "1.2", "1.3"), &Shape{Type: "number", Enum: []string{"1.2", "1.3"}}),
		"clientCA":   sString("CA bundle (file path or inline PEM): clients must present a certificate from it (mTLS)."),
		"acme": object("ACME", "Obtain the certificate from an ACME CA (HTTP-01 through the gateway's Envoys).", acmeFields(), map[string]*Shape{
			"domains":     sStrings("Host names of the certificate, at most 100, no wildcards."),
			"email":       sString("The ACME account's contact address."),
			"directory":   sString("The CA's ACME directory URL (default Let's Encrypt production)."),
			"renewBefore": sDuration("Renew when the remaining lifetime drops below this (default 720h)."),
		}),
	}
}

func backendTLSProps() map[string]*Shape {
	return map[string]*Shape{
		"sni":        sString("SNI sent upstream; with ca, also a required SAN."),
		"ca":         sString("CA bundle that must sign the backend's certificate (without it: not verified, a warning)."),
		"clientCert": object("ClientCert", "Certificate Envoy presents to the backend.", clientCertFields(), map[string]*Shape{"cert": sString("File path or inline PEM."), "key": sString("File path or inline PEM.")}),
	}
}

func routeAuthProps() map[string]*Shape {
	return map[string]*Shape{
		"methods":            sList("Accepted methods (default: every configured one).", sEnum("", "jwt", "apiKey", "oauth2")),
		"roles":              sStrings("The caller needs one of these roles."),
		"scopes":             sStrings("The caller needs all of these scopes."),
		"forwardCredentials": sBool("Keep Authorization and the key header for the upstream."),
	}
}

func routeRateLimitProps() map[string]*Shape {
	return map[string]*Shape{
		"consumer": sBool("Apply the caller's tier limits (default true on authenticated routes)."),
		"extra":    sList("Route limits, keyed by `by`.", limitShape()),
		"by":       sStrings("Keys of the extra limits: consumer, clientIP, header:<name>."),
		"shadow":   sBool("Count and report, never refuse."),
	}
}

func limitShape() *Shape {
	return object("Limit", "requests per unit.", limitFields(), map[string]*Shape{
		"requests": sInt("Requests per unit.", 1),
		"per":      sEnum("The unit.", "second", "minute", "hour", "day", "month"),
		"burst":    sInt("Largest burst (default requests; not below it).", 1),
	})
}

func transformProps() map[string]*Shape {
	conv := []string{"json-to-xml", "xml-to-json"}
	return map[string]*Shape{
		"request":      sEnum("Convert the request body.", conv...),
		"response":     sEnum("Convert the upstream's response body.", conv...),
		"rootElement":  sString("Root element of json-to-xml output (default root)."),
		"maxBodyBytes": sInt("Largest body converted (default 1048576).", 1, 1048576),
		"failureMode":  sEnum("When the service fails: closed answers 503, open passes the body (default closed).", "closed", "open"),
	}
}

func headerRulesShape() *Shape {
	m := func(doc string) *Shape {
		return object("HeaderMutations", doc, headerMutationsFields(), mutationProps())
	}
	return object("HeaderRules", "Request and response header mutations.", headerRulesFields(), map[string]*Shape{
		"request": m("Request header mutations."), "response": m("Response header mutations."),
	})
}

func mutationProps() map[string]*Shape {
	value := sOneOf("A value (strings, numbers and booleans as written; Envoy substitution variables allowed).", sString(""), &Shape{Type: "number"}, &Shape{Type: "boolean"})
	return map[string]*Shape{
		"add":    sMap("Append these (name: value).", value),
		"set":    sMap("Replace these (name: value).", value),
		"remove": sStrings("Remove these."),
	}
}

func redirectProps() map[string]*Shape {
	return map[string]*Shape{
		"scheme": sEnum("", "http", "https"), "host": sString("New host."), "port": sInt("New port.", 1, 65535),
		"path": sString("New whole path."), "pathPrefix": sString("Replacement of the matched prefix."),
		"stripQuery": sBool("Drop the query."),
		"status":     &Shape{Type: "integer", Doc: "Default 301.", Enum: []string{"301", "302", "303", "307", "308"}},
	}
}

func corsShape(doc string) *Shape {
	return sOneOf(doc, sWord("none", "CORS off."), object("CORS", "A CORS policy (Envoy answers preflights).", corsFields(), map[string]*Shape{
		"allowOrigins":       sStrings("Exact lower-case origins, or \"*\"."),
		"allowOriginRegexes": sStrings("Whole-origin RE2 regexes."),
		"allowMethods":       sStrings("Upper-case methods."),
		"allowHeaders":       sStrings("Header names."),
		"exposeHeaders":      sStrings("Header names."),
		"allowCredentials":   sBool("Allow credentials (not with \"*\")."),
		"maxAge":             sDuration("Preflight cache time, whole seconds."),
	}))
}

func compressionShape(doc string) *Shape {
	return sOneOf(doc, sWord("none", "Compression off."), object("Compression", "Response compression chosen by Accept-Encoding.", compressionFields(), map[string]*Shape{
		"algorithms":   sList("Default [brotli, gzip].", sEnum("", "brotli", "gzip")),
		"minLength":    sInt("Smaller responses are not compressed (default 1024).", 0),
		"contentTypes": sStrings("Media types compressed (default Envoy's list)."),
	}))
}

func authShape() *Shape {
	return object("Auth", "Authentication methods and identity headers.", authFields(), map[string]*Shape{
		"jwt": sList("JWT providers, matched by the token's iss.", object("JWTProvider", "One JWT issuer.", jwtFields(), map[string]*Shape{
			"name": sName("Provider name."), "issuer": sString("The tokens' iss claim, exactly."),
			"audiences":     sStrings("The token's aud must name one (default: any)."),
			"jwksUri":       sString("Remote JWK set (https, or http on loopback or with insecure)."),
			"jwks":          sOneOf("Inline JWK set (public keys only): JSON text or a mapping.", sString(""), &Shape{Type: "map", Values: &Shape{}}),
			"algorithms":    sStrings("Allow-list (default ES256, ES384, EdDSA, PS256, PS384, RS256, RS384, RS512)."),
			"hmacSecretEnv": sString("Environment variable holding the HMAC secret (HS256/384/512)."),
			"clockSkew":     sDuration("Default 30s."),
			"maxLifetime":   sDuration("Largest exp - iat (default 24h)."),
			"jwksRefresh": sDuration("Time between two fetches of jwksUri, 5s to 5m (default 30s): a token signed with a key " +
				"withdrawn from the JWKS is refused within it, on every path."),
			"claims": object("ClaimMap", "Claims of the user id, roles, tenant and tier.", claimFields(), map[string]*Shape{
				"userId": sString("Default sub."), "roles": sString(""), "tenant": sString(""), "tier": sString(""),
			}),
			"insecure":  sBool("Allow a plain-http jwksUri beyond loopback (a warning)."),
			"namespace": sName("Identity namespace of its callers, \"<namespace>:<sub>\" (default: the provider name); name another provider's to share identities."),
		})),
		"apiKeys": object("APIKeys", "API keys (stored hashed in Redis or memory).", apiKeysFields(), map[string]*Shape{"header": sString("Header carrying keys (default x-api-key)."),
			"namespace": sName("Identity namespace of the keys' consumers, \"<namespace>:<consumer>\" (default: none, bare consumers).")}),
		"oauth2": sList("OAuth 2.0 introspection (RFC 7662) providers.", object("OAuth2Provider", "One introspection endpoint.", oauth2Fields(), map[string]*Shape{
			"name": sName("Provider name."), "introspectionUrl": sString("Introspection endpoint URL."), "clientId": sString("Client id."),
			"clientSecretEnv": sString("Environment variable holding the client secret."), "audiences": sStrings("Required aud (default: any)."),
			"cacheTtl": sDuration("Result cache time (default 30s)."), "insecure": sBool("Allow a plain-http URL beyond loopback."),
			"namespace":     sName("Identity namespace of its callers (default: the provider name)."),
			"tokenPrefix":   sString("Only tokens starting with it go to this endpoint; required, and prefix-free, with several providers."),
			"maxConcurrent": sInt("Introspections in flight; beyond it a token gets 503 at once (default 64).", 1, 10000),
		})),
		"identityHeaders": object("IdentityHeaders", "Headers carrying the identity upstream; stripped from every request.", identityHeaderFields(), map[string]*Shape{
			"userId": sString("Default x-user-id."), "roles": sString("Default x-user-roles."), "tenant": sString("Default x-tenant-id."), "tier": sString("Default x-consumer-tier."),
		}),
	})
}

func rateLimitsShape() *Shape {
	tier := sOneOf("A tier: its limits, or unlimited.", sList("All of the tier's limits apply.", limitShape()), sWord("unlimited", "Never counted."))
	return object("RateLimits", "Consumer tiers, anonymous limits and the failure mode.", rateLimitsFields(), map[string]*Shape{
		"tiers":       sMap("Tier name to limits.", tier),
		"defaultTier": sString("Tier of consumers without a (known) tier; required with tiers."),
		"anonymous":   sList("Per client IP on public routes.", limitShape()),
		"failureMode": sEnum("When Redis is down or slow (default open).", "open", "closed", "local"),
		"mode":        sEnum("quota lets Envoy enforce server-assigned shares of the Redis account (no call per request; the default unless a route uses shadow limits or limits keyed by a header); exact counts every request in Redis (one call per request).", "quota", "exact"),
		"ietfHeaders": sBool("Quota mode: also send RateLimit and RateLimit-Policy (draft-ietf-httpapi-ratelimit-headers) on admitted responses and the backstop's 429s, beside X-RateLimit-* (default false: it costs Envoy CPU on every rate-limited request). Exact mode always sends them."),
	})
}

func observabilityShape() *Shape {
	return object("Observability", "Access log and tracing.", observabilityFields(), map[string]*Shape{
		"accessLog": sOneOf("JSON access log (default on, stdout, every request): off, or settings.", offShape(), object("AccessLog", "Access-log settings.", accessLogFields(), map[string]*Shape{
			"path": sString("Absolute file path instead of stdout."), "sample": sPercent("Share of requests logged (default 100%)."),
			"grpc": sString("host:port of a gRPC AccessLogService."),
		})),
		"routeStats": sBool("Envoy stats per route, vhost.<vhost>.route.<route>.* (default: true up to 2,000 routes, false above, with a warning). Envoy rebuilds them for every route on each push that changes routes (about 25 µs and 1 KiB per route): at 10,000 routes, they cost Envoy about 250 ms per push."),
		"tracing": object("Tracing", "OpenTelemetry tracing through Envoy.", tracingFields(), map[string]*Shape{
			"otlp": sString("OTLP/gRPC collector host:port."), "sampling": sPercent("Share of new traces sampled (default 100%)."),
			"serviceName": sString("service.name of Envoy's spans (default tollgate-<gateway>)."),
		}),
	})
}
