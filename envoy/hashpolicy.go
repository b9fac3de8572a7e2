package envoy

import (
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// HashPolicyHeader hashes the value of the request header name, for
// ring_hash and maglev clusters.
func HashPolicyHeader(name string) *routev3.RouteAction_HashPolicy {
	return &routev3.RouteAction_HashPolicy{
		PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{
			Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: name},
		},
	}
}

// HashPolicyCookie hashes the cookie name. With ttl > 0 Envoy sets the
// cookie (path "/", Max-Age ttl) on the response when the request has none,
// so a client that keeps cookies sticks to its endpoint.
func HashPolicyCookie(name string, ttl time.Duration) *routev3.RouteAction_HashPolicy {
	c := &routev3.RouteAction_HashPolicy_Cookie{Name: name}
	if ttl > 0 {
		c.Ttl = durationpb.New(ttl)
		c.Path = "/"
	}
	return &routev3.RouteAction_HashPolicy{PolicySpecifier: &routev3.RouteAction_HashPolicy_Cookie_{Cookie: c}}
}

// HashPolicySourceIP hashes the client's IP address (the downstream
// connection's, or the trusted X-Forwarded-For entry with
// use_remote_address).
func HashPolicySourceIP() *routev3.RouteAction_HashPolicy {
	return &routev3.RouteAction_HashPolicy{
		PolicySpecifier: &routev3.RouteAction_HashPolicy_ConnectionProperties_{
			ConnectionProperties: &routev3.RouteAction_HashPolicy_ConnectionProperties{SourceIp: true},
		},
	}
}
