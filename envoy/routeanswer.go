package envoy

import (
	"fmt"
	"net"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// DirectResponseRoute returns a route that answers requests matching match
// with status and body itself, without a backend.
func DirectResponseRoute(name string, match *routev3.RouteMatch, status uint32, body string) *routev3.Route {
	a := &routev3.DirectResponseAction{Status: status}
	if body != "" {
		a.Body = &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: body}}
	}
	return &routev3.Route{Name: name, Match: match, Action: &routev3.Route_DirectResponse{DirectResponse: a}}
}

// RedirectOptions is a redirect: the request's URL with the set parts
// replaced. Path replaces the whole path, PathPrefix the matched prefix.
type RedirectOptions struct {
	Scheme     string
	Host       string
	Port       uint32
	Path       string
	PathPrefix string
	StripQuery bool
	// Status is 301, 302, 303, 307 or 308.
	Status uint32
}

// redirectCodes maps statuses to Envoy's redirect response codes.
var redirectCodes = map[uint32]routev3.RedirectAction_RedirectResponseCode{
	301: routev3.RedirectAction_MOVED_PERMANENTLY,
	302: routev3.RedirectAction_FOUND,
	303: routev3.RedirectAction_SEE_OTHER,
	307: routev3.RedirectAction_TEMPORARY_REDIRECT,
	308: routev3.RedirectAction_PERMANENT_REDIRECT,
}

// RedirectRoute returns a route that answers requests matching match with
// the redirect o.
func RedirectRoute(name string, match *routev3.RouteMatch, o RedirectOptions) (*routev3.Route, error) {
	code, ok := redirectCodes[o.Status]
	if !ok {
		return nil, fmt.Errorf("redirect status %d is not 301, 302, 303, 307 or 308", o.Status)
	}
	a := &routev3.RedirectAction{HostRedirect: o.Host, PortRedirect: o.Port, ResponseCode: code, StripQuery: o.StripQuery}
	if o.Scheme != "" {
		a.SchemeRewriteSpecifier = &routev3.RedirectAction_SchemeRedirect{SchemeRedirect: o.Scheme}
	}
	switch {
	case o.Path != "":
		a.PathRewriteSpecifier = &routev3.RedirectAction_PathRedirect{PathRedirect: o.Path}
	case o.PathPrefix != "":
		a.PathRewriteSpecifier = &routev3.RedirectAction_PrefixRewrite{PrefixRewrite: o.PathPrefix}
	}
	return &routev3.Route{Name: name, Match: match, Action: &routev3.Route_Redirect{Redirect: a}}, nil
}

// SetHostRewrite makes action replace the Host header with host, or, when
// auto, with the host name of the upstream endpoint Envoy picks.
func SetHostRewrite(action *routev3.RouteAction, host string, auto bool) {
	switch {
	case auto:
		action.HostRewriteSpecifier = &routev3.RouteAction_AutoHostRewrite{AutoHostRewrite: wrapperspb.Bool(true)}
	case host != "":
		action.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: host}
	}
}

// SetEndpointHostnames gives every endpoint of cla the host name
// "address:port", which auto host rewrite sends as the Host header.
func SetEndpointHostnames(cla *endpointv3.ClusterLoadAssignment) {
	for _, le := range cla.GetEndpoints() {
		for _, lb := range le.GetLbEndpoints() {
			ep := lb.GetEndpoint()
			sa := ep.GetAddress().GetSocketAddress()
			if ep == nil || sa == nil {
				continue
			}
			ep.Hostname = net.JoinHostPort(sa.GetAddress(), strconv.FormatUint(uint64(sa.GetPortValue()), 10))
		}
	}
}
