package xds

import (
	"sort"
	"strings"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// sortByName sorts resources by their xDS name.
func sortByName(rs []types.Resource) {
	sort.Slice(rs, func(i, j int) bool { return cache.GetResourceName(rs[i]) < cache.GetResourceName(rs[j]) })
}

// shortType turns a type URL into the word people use: "listener", "route",
// "cluster", "endpoint"; unknown URLs keep their last element.
func shortType(t string) string {
	switch t {
	case resource.ListenerType:
		return "listener"
	case resource.RouteType:
		return "route"
	case resource.ClusterType:
		return "cluster"
	case resource.EndpointType:
		return "endpoint"
	case resource.SecretType:
		return "secret"
	case resource.ExtensionConfigType:
		return "extension"
	}
	return t[strings.LastIndex(t, ".")+1:]
}
