package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"mime"
	"net"
	"net/http"
	"strings"
)

// Access says who may call the admin API. Every request passes, in order:
//
//   - the Host check (421 otherwise): the Host header's name must be
//     localhost, 127.0.0.1, ::1, the listen address's host or one of
//     AllowedHosts; on a wildcard listen address (0.0.0.0, ::) any IP
//     literal is accepted too. A DNS-rebinding page always sends its own
//     domain name, so it is refused;
//   - the browser check (403 otherwise): a request with an Origin header,
//     or with Sec-Fetch-Site other than "none", must come from one of
//     AllowedOrigins (none by default): web pages cannot call the API;
//   - the content check (415 otherwise): a POST, PUT or PATCH, and any
//     request with a body, must be Content-Type: application/json, which a
//     page can only send after a CORS preflight;
//   - the token check (401 otherwise, all but /healthz and /readyz):
//     "Authorization: Bearer <Token>", compared in constant time.
type Access struct {
	// Token is the bearer token. Empty refuses every authenticated call
	// (fail closed): the API has no unauthenticated mode.
	Token string
	// ListenAddr is the API's listen address (host:port).
	ListenAddr string
	// AllowedHosts are further names clients may send as Host (no port).
	AllowedHosts []string
	// AllowedOrigins are browser origins (scheme://host[:port]) allowed to
	// call the API; they get CORS answers.
	AllowedOrigins []string
}

// guard wraps next in the Host, browser and content checks of Access.
func (a Access) guard(next http.Handler) http.Handler {
	hosts := a.hostSet()
	anyIP := isWildcard(splitHost(a.ListenAddr))
	origins := map[string]bool{}
	for _, o := range a.AllowedOrigins {
		origins[normOrigin(o)] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := splitHost(r.Host)
		if !hosts[host] && !(anyIP && net.ParseIP(host) != nil) {
			writeJSON(w, http.StatusMisdirectedRequest, ErrorResponse{Error: "the admin API does not answer for Host " +
				quote(r.Host) + ": add --admin-allowed-host=" + host + " to tollgate serve if this name is yours"})
			return
		}
		origin, fromPage := requestOrigin(r)
		if fromPage && !origins[origin] {
			writeJSON(w, http.StatusForbidden, ErrorResponse{Error: "the admin API refuses requests from web pages (Origin " +
				quote(origin) + "); allow an origin with --admin-allowed-origin"})
			return
		}
		if fromPage {
			setCORS(w.Header(), origin)
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		if hasBody(r) && !isJSON(r.Header.Get("Content-Type")) {
			writeJSON(w, http.StatusUnsupportedMediaType, ErrorResponse{Error: "the request body must be sent as Content-Type: application/json"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostSet returns the allowed Host names, lower case.
func (a Access) hostSet() map[string]bool {
	set := map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}
	if h := splitHost(a.ListenAddr); h != "" && !isWildcard(h) {
		set[h] = true
	}
	for _, h := range a.AllowedHosts {
		set[splitHost(h)] = true
	}
	return set
}

// splitHost returns the host of hostport (a port and IPv6 brackets
// removed), lower case and without a trailing dot.
func splitHost(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.Trim(h, "[]"), ".")
	return strings.ToLower(h)
}

func isWildcard(host string) bool { return host == "" || host == "0.0.0.0" || host == "::" }

// requestOrigin returns the request's Origin and whether a web page sent
// the request: an Origin header (even "null"), or Sec-Fetch-Site other
// than "none" (a user typing the URL).
func requestOrigin(r *http.Request) (string, bool) {
	if vs := r.Header.Values("Origin"); len(vs) > 0 {
		return normOrigin(vs[0]), true
	}
	site := r.Header.Get("Sec-Fetch-Site")
	return "", site != "" && site != "none"
}

func normOrigin(o string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(o), "/"))
}

// setCORS lets an allowed origin read the answer and send the API's
// methods and headers.
func setCORS(h http.Header, origin string) {
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
	h.Set("Access-Control-Max-Age", "600")
	h.Add("Vary", "Origin")
}

// hasBody reports whether r carries, or may carry, a body.
func hasBody(r *http.Request) bool {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		return true
	}
	return r.ContentLength != 0
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

// auth checks the bearer token. Both sides are hashed before the
// constant-time comparison, so neither the token nor its length leaks
// through timing. An empty configured token refuses everything.
func (s *Server) auth(next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(s.access.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := bearer(r.Header.Get("Authorization"))
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 || !ok || s.access.Token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tollgate-admin"`)
			writeJSON(w, http.StatusUnauthorized, ErrorResponse{Error: "missing or wrong admin token: send Authorization: Bearer <token>; " +
				"the CLI reads --token, TOLLGATE_TOKEN, --token-file or the token file tollgate serve writes (see tollgate serve's log)"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearer returns the token of an "Authorization: Bearer <token>" value.
func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
