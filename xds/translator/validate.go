package translator

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/internal/parallel"
)

// Validate reports every problem that would make Envoy reject r, or leave
// it waiting, as far as it can be checked without Envoy:
//   - each resource satisfies its PGV rules, including the unpacked contents
//     of every Any inside it (envoy.Validate);
//   - names are non-empty and unique per type, and no two listeners bind the
//     same address and port;
//   - the RDS names the listeners' HTTP connection managers reference equal
//     the route configuration names: none missing, none orphaned;
//   - the EDS service names of the EDS clusters equal the
//     ClusterLoadAssignment names, exactly one CLA each, none orphaned (the
//     exact-match rule of go-control-plane's Snapshot.Consistent);
//   - every cluster a route forwards to exists, and no two virtual hosts of
//     a route configuration share a domain (compared case-insensitively, as
//     Envoy does);
//   - the gRPC cluster of every ext_authz and ratelimit filter exists
//     (Envoy accepts a missing one and fails, or for a fail-open ratelimit
//     filter admits, every request), every per-filter config of a virtual
//     host or route is keyed by the name of an HTTP filter of the
//     connection managers using the table (Envoy silently ignores others),
//     and route tables with rate_limits are only used by connection
//     managers that run a ratelimit filter (Envoy silently never limits);
//   - every SDS secret a TLS context references exists, and every secret
//     is referenced (checkSDSReferences).
//
// Each error names the resource type and name; all problems are joined.
//
// A large route table's routes are checked on GOMAXPROCS goroutines
// (envoy.ValidateRouteTable); the result is the same.
func Validate(r *Resources) error {
	return ValidateWith(r, &envoy.AnyTypes{})
}

// ValidateWith is Validate with the message-type analysis of types, which
// it extends: a caller that validates again and again (each push) shares
// one AnyTypes so the types are analysed once (envoy.AnyTypes).
func ValidateWith(r *Resources, types *envoy.AnyTypes) error {
	return validateWith(r, types, validateWorkers, nil)
}

// validateWorkers is how many goroutines Validate checks a route table of
// n routes on.
func validateWorkers(n int) int { return parallel.Workers(n, envoy.ValidateRoutesMin) }

// validate is Validate checking a route table of n routes on workers(n)
// goroutines, and not checking the routes for which known returns true.
func validate(r *Resources, workers func(n int) int, known func(*routev3.Route) bool) error {
	return validateWith(r, &envoy.AnyTypes{}, workers, known)
}

// validateWith is ValidateWith checking a route table of n routes on
// workers(n) goroutines, and not checking the routes for which known
// returns true (nil: none; see envoy.ValidateRouteTableKnown): routes that
// passed the same checks before.
func validateWith(r *Resources, types *envoy.AnyTypes, workers func(n int) int, known func(*routev3.Route) bool) error {
	if r == nil {
		return errors.New("validate: nil resources")
	}
	v := envoy.NewValidatorWith(types)
	var errs []error
	errs = append(errs, validateEach(v, "listener", r.Listeners, (*listenerv3.Listener).GetName)...)
	errs = append(errs, validateEachWith("route configuration", r.Routes, (*routev3.RouteConfiguration).GetName,
		func(rc *routev3.RouteConfiguration) error {
			return envoy.ValidateRouteTableKnown(v, rc, workers(routeCount(rc)), known)
		})...)
	errs = append(errs, validateEach(v, "cluster", r.Clusters, (*clusterv3.Cluster).GetName)...)
	errs = append(errs, validateEach(v, "cluster load assignment", r.Endpoints, claName)...)
	errs = append(errs, checkListenerAddresses(r.Listeners)...)
	errs = append(errs, checkRDSReferences(r)...)
	errs = append(errs, checkEDSReferences(r)...)
	errs = append(errs, checkRouteTables(r)...)
	errs = append(errs, checkHTTPFilters(r)...)
	errs = append(errs, validateEach(v, "secret", r.Secrets, (*tlsv3.Secret).GetName)...)
	errs = append(errs, checkSDSReferences(r)...)
	return errors.Join(errs...)
}

// validateEach runs v on every resource and checks that names are non-empty
// and unique.
func validateEach[T proto.Message](v *envoy.Validator, kind string, resources []T, name func(T) string) []error {
	return validateEachWith(kind, resources, name, func(res T) error { return v.Validate(res) })
}

// validateEachWith is validateEach validating each resource with check.
func validateEachWith[T proto.Message](kind string, resources []T, name func(T) string, check func(T) error) []error {
	var errs []error
	seen := make(map[string]bool, len(resources))
	for _, res := range resources {
		n := name(res)
		switch {
		case n == "":
			errs = append(errs, fmt.Errorf("%s with an empty name", kind))
		case seen[n]:
			errs = append(errs, fmt.Errorf("%s %q: duplicate name", kind, n))
		}
		seen[n] = true
		if err := check(res); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", kind, n, err))
		}
	}
	return errs
}

// checkListenerAddresses reports listeners that bind an address another
// listener already binds.
func checkListenerAddresses(listeners []*listenerv3.Listener) []error {
	var errs []error
	bound := make(map[string]string, len(listeners))
	for _, l := range listeners {
		sa := l.GetAddress().GetSocketAddress()
		if sa == nil {
			continue
		}
		addr := net.JoinHostPort(sa.GetAddress(), strconv.FormatUint(uint64(sa.GetPortValue()), 10))
		if other, ok := bound[addr]; ok {
			errs = append(errs, fmt.Errorf("listener %q: address %s already bound by listener %q", l.GetName(), addr, other))
			continue
		}
		bound[addr] = l.GetName()
	}
	return errs
}

// checkRDSReferences checks that the route configurations are exactly the
// ones the listeners reference.
func checkRDSReferences(r *Resources) []error {
	var errs []error
	have := make(map[string]bool, len(r.Routes))
	for _, rc := range r.Routes {
		have[rc.GetName()] = true
	}
	referenced := map[string]bool{}
	for _, l := range r.Listeners {
		names, err := rdsNames(l)
		if err != nil {
			errs = append(errs, fmt.Errorf("listener %q: %w", l.GetName(), err))
		}
		for _, n := range names {
			referenced[n] = true
			if !have[n] {
				errs = append(errs, fmt.Errorf("listener %q: route configuration %q not found", l.GetName(), n))
			}
		}
	}
	for _, rc := range r.Routes {
		if !referenced[rc.GetName()] {
			errs = append(errs, fmt.Errorf("route configuration %q: not referenced by any listener", rc.GetName()))
		}
	}
	return errs
}

// rdsNames returns the RDS route configuration names referenced by the HTTP
// connection managers of l's filter chains, default chain included.
func rdsNames(l *listenerv3.Listener) ([]string, error) {
	hcms, err := connectionManagers(l)
	var names []string
	for _, hcm := range hcms {
		if rds := hcm.GetRds(); rds != nil {
			names = append(names, rds.GetRouteConfigName())
		}
	}
	return names, err
}

// connectionManagers returns the HTTP connection managers of l's filter
// chains, default chain included, in order. Like go-control-plane's
// consistency check it recognises them by type, whatever the filter name.
// On an error it returns the ones decoded so far.
func connectionManagers(l *listenerv3.Listener) ([]*hcmv3.HttpConnectionManager, error) {
	chains := l.GetFilterChains()
	if dc := l.GetDefaultFilterChain(); dc != nil {
		chains = append(chains[:len(chains):len(chains)], dc)
	}
	var out []*hcmv3.HttpConnectionManager
	for _, fc := range chains {
		for _, f := range fc.GetFilters() {
			a := f.GetTypedConfig()
			if !a.MessageIs((*hcmv3.HttpConnectionManager)(nil)) {
				continue
			}
			hcm := &hcmv3.HttpConnectionManager{}
			if err := anypb.UnmarshalTo(a, hcm, proto.UnmarshalOptions{}); err != nil {
				return out, fmt.Errorf("filter %q: %w", f.GetName(), err)
			}
			out = append(out, hcm)
		}
	}
	return out, nil
}

// checkEDSReferences checks that the ClusterLoadAssignments are exactly the
// ones the EDS clusters reference (service name, or cluster name if empty).
func checkEDSReferences(r *Resources) []error {
	var errs []error
	have := make(map[string]bool, len(r.Endpoints))
	for _, cla := range r.Endpoints {
		have[cla.GetClusterName()] = true
	}
	referenced := make(map[string]bool, len(r.Clusters))
	for _, c := range r.Clusters {
		if c.GetType() != clusterv3.Cluster_EDS {
			continue
		}
		n := c.GetEdsClusterConfig().GetServiceName()
		if n == "" {
			n = c.GetName()
		}
		referenced[n] = true
		if !have[n] {
			errs = append(errs, fmt.Errorf("cluster %q: cluster load assignment %q not found", c.GetName(), n))
		}
	}
	for _, cla := range r.Endpoints {
		if !referenced[cla.GetClusterName()] {
			errs = append(errs, fmt.Errorf("cluster load assignment %q: not referenced by any EDS cluster", cla.GetClusterName()))
		}
	}
	return errs
}

// checkRouteTables checks that every cluster a route forwards to exists and
// that no domain is served by two virtual hosts of one route configuration.
func checkRouteTables(r *Resources) []error {
	clusters := make(map[string]bool, len(r.Clusters))
	for _, c := range r.Clusters {
		clusters[c.GetName()] = true
	}
	var errs []error
	for _, rc := range r.Routes {
		domains := map[string]string{}
		for _, vh := range rc.GetVirtualHosts() {
			for _, d := range vh.GetDomains() {
				d = strings.ToLower(d) // Envoy compares domains case-insensitively
				if other, ok := domains[d]; ok {
					errs = append(errs, fmt.Errorf("route configuration %q: virtual host %q: domain %q already served by virtual host %q",
						rc.GetName(), vh.GetName(), d, other))
				}
				domains[d] = vh.GetName()
			}
			for _, rt := range vh.GetRoutes() {
				for _, c := range routeClusters(rt) {
					if !clusters[c] {
						errs = append(errs, fmt.Errorf("route configuration %q: virtual host %q: route %q: cluster %q not found",
							rc.GetName(), vh.GetName(), rt.GetName(), c))
					}
				}
			}
		}
	}
	return errs
}

// routeClusters returns the clusters a route forwards to by name.
func routeClusters(rt *routev3.Route) []string {
	action := rt.GetRoute()
	var names []string
	if c := action.GetCluster(); c != "" {
		names = append(names, c)
	}
	for _, wc := range action.GetWeightedClusters().GetClusters() {
		names = append(names, wc.GetName())
	}
	for _, m := range action.GetRequestMirrorPolicies() {
		names = append(names, m.GetCluster())
	}
	return names
}

// routeCount is the number of routes in rc's virtual hosts.
func routeCount(rc *routev3.RouteConfiguration) int {
	n := 0
	for _, vh := range rc.GetVirtualHosts() {
		n += len(vh.GetRoutes())
	}
	return n
}

// claName returns the name of a ClusterLoadAssignment.
func claName(cla *endpointv3.ClusterLoadAssignment) string { return cla.GetClusterName() }
