package envoy

import (
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// HTTPSRedirectRoute returns a route named name that answers every request
// with a 301 to the same host and path over https on port (omitted from the
// Location when it is 443).
func HTTPSRedirectRoute(name string, port uint32) *routev3.Route {
	redirect := &routev3.RedirectAction{
		SchemeRewriteSpecifier: &routev3.RedirectAction_HttpsRedirect{HttpsRedirect: true},
		ResponseCode:           routev3.RedirectAction_MOVED_PERMANENTLY,
	}
	if port != 443 {
		redirect.PortRedirect = port
	}
	return &routev3.Route{
		Name:   name,
		Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_Redirect{Redirect: redirect},
	}
}
