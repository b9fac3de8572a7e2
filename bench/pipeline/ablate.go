package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/loadgen"
)

// ablateOpts are the flags of the ablation run (-ablate).
type ablateOpts struct {
	rate      float64       // fixed request rate
	dur       time.Duration // per measurement
	reps      int           // measurements per variant (median reported)
	dumpOnly  string        // write the quota Envoy's static config here and stop
	only      string        // comma-separated variant names ("" = all)
	callgrind bool          // count instructions under valgrind instead
	consumers int           // distinct credentials (and RLQS buckets) cycled per route
	ietf      bool          // rateLimits.ietfHeaders in the quota stack's policy
	idle      time.Duration // CPU mode: measure every Envoy idle this long before and after the rounds
	envoyEnv  []string      // added to every variant Envoy's environment (e.g. GOMAXPROCS=1, GODEBUG=asyncpreemptoff=1 for the module's Go runtime)
	cgKeep    string        // callgrind: copy every variant's dumps into this directory
	module    bool          // the quota stack runs `tollgate serve --envoy-module` (JWT routes decided by Tollgate's Envoy module)
}

// runAblation starts the quota stack, turns its Envoy's xDS configuration
// into a static bootstrap, and measures Envoy CPU per request at a fixed
// rate for the configuration with one feature removed at a time.
func runAblation(w io.Writer, o ablateOpts) error {
	dir, err := os.MkdirTemp("", "tollgate-ablate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var ps procs
	defer ps.stop()
	sh, err := startShared(dir, &ps)
	if err != nil {
		return err
	}
	sh.ietfHeaders = o.ietf
	qu, err := startQuota(sh, &ps, o.module)
	if err != nil {
		return fmt.Errorf("quota stack: %w", err)
	}
	n := o.consumers
	if n <= 0 || n > active {
		n = active
	}
	// Under callgrind with few consumers, each variant gets consumers of
	// its own: the RLQS shares of a consumer an earlier variant's (killed)
	// Envoy used are not this variant's to start with.
	sets := 1
	if k := len(selected(o.only)); o.callgrind && n*k <= 4*active {
		sets = k
	}
	toks, err := mint(sh.iss, n*sets+1, func(i int) string { return fmt.Sprintf("user-%d", i) })
	if err != nil {
		return err
	}
	// The last token only wakes the stack up (its own consumer).
	if err := loadgen.WaitHTTP(fmt.Sprintf("http://127.0.0.1:%d/jwt/x", qu.port), "Bearer "+toks[n*sets], 30*time.Second); err != nil {
		return err
	}
	cfg, err := staticConfig(qu.envoyAdmin)
	if err != nil {
		return err
	}
	if o.dumpOnly != "" {
		return dumpConfig(o.dumpOnly, cfg, sh.module, o.module)
	}
	cfgs, err := ablationConfigs(sh, &ps, cfg, selected(o.only))
	if err != nil {
		return err
	}
	keys, err := signedKeys(n * sets)
	if err != nil {
		return err
	}
	authFor := credentialSets(toks, keys, n, sets)
	if o.callgrind {
		return ablateCallgrind(w, dir, &ps, sh, cfgs, authFor, o)
	}
	return ablate(w, dir, &ps, sh, cfgs, authFor, o)
}

// ablationConfigs returns the variants' configurations: the quota stack's
// (quota) and, when a selected variant needs it, the exact stack's, which
// it starts. It refuses variants that would not measure what they name
// (checkVariants).
func ablationConfigs(sh *shared, ps *procs, quota map[string]any, vs []variant) (ablateConfigs, error) {
	cfgs := ablateConfigs{quota: quota}
	if slices.ContainsFunc(vs, fromExact) {
		ex, err := startTollgate(sh, ps, "exact", 1)
		if err != nil {
			return cfgs, fmt.Errorf("exact stack: %w", err)
		}
		if err := loadgen.WaitHTTP(fmt.Sprintf("http://127.0.0.1:%d/plain/x", ex.port), "", 30*time.Second); err != nil {
			return cfgs, fmt.Errorf("exact stack: %w", err)
		}
		if cfgs.exact, err = staticConfig(ex.envoyAdmin); err != nil {
			return cfgs, fmt.Errorf("exact stack: %w", err)
		}
	}
	return cfgs, checkVariants(cfgs, vs)
}

// credentialSets returns authFor, which gives the JWT route's variants
// tokens and the signed-key route's (path /key) signed API keys, n of
// them cycled; with several sets each call takes the next set. Variants
// named exact-* or *-noauth send no credentials, as the main bench's
// plain proxying row; the others on /plain send tokens too.
func credentialSets(toks, keys []string, n, sets int) func(variant) func(int) string {
	call := 0
	return func(v variant) func(int) string {
		if fromExact(v) || strings.HasSuffix(v.name, "-noauth") {
			return func(int) string { return "" }
		}
		i := call % sets
		call++
		if strings.HasPrefix(v.path, "/key") {
			return cycle("ApiKey ", keys[i*n:(i+1)*n])
		}
		return cycle("Bearer ", toks[i*n:(i+1)*n])
	}
}

// staticConfig reads an Envoy's config dump (with endpoints) and returns
// a static bootstrap holding its listeners, routes and clusters.
func staticConfig(adminPort int) (map[string]any, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/config_dump?include_eds", adminPort))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var dump struct {
		Configs []map[string]any `json:"configs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&dump); err != nil {
		return nil, err
	}
	var listeners, clusters []any
	routes := map[string]any{}
	eps := map[string]any{}
	ecds := map[string]any{} // filter configs Envoy got over ECDS
	for _, c := range dump.Configs {
		for _, l := range list(c["dynamic_listeners"]) {
			listeners = append(listeners, get(l, "active_state", "listener"))
		}
		for _, cl := range list(c["dynamic_active_clusters"]) {
			clusters = append(clusters, get(cl, "cluster"))
		}
		for _, cl := range list(c["static_clusters"]) {
			clusters = append(clusters, get(cl, "cluster"))
		}
		for _, r := range list(c["dynamic_route_configs"]) {
			rc := get(r, "route_config").(map[string]any)
			delete(rc, "@type")
			routes[rc["name"].(string)] = rc
		}
		for _, e := range list(c["ecds_filters"]) {
			if m, ok := get(e, "ecds_filter").(map[string]any); ok {
				ecds[fmt.Sprint(m["name"])] = m["typed_config"]
			}
		}
		for _, e := range list(c["dynamic_endpoint_configs"]) {
			la := get(e, "endpoint_config").(map[string]any)
			delete(la, "@type")
			eps[la["cluster_name"].(string)] = la
		}
	}
	for _, cl := range clusters {
		m := cl.(map[string]any)
		delete(m, "@type")
		if m["type"] == "EDS" || m["eds_cluster_config"] != nil {
			delete(m, "eds_cluster_config")
			m["type"] = "STATIC"
			m["load_assignment"] = eps[m["name"].(string)]
		}
	}
	for _, l := range listeners {
		m := l.(map[string]any)
		delete(m, "@type")
		for _, hcm := range hcms(m) {
			staticFilters(hcm, ecds)
			if rds, ok := hcm["rds"].(map[string]any); ok {
				hcm["route_config"] = routes[rds["route_config_name"].(string)]
				delete(hcm, "rds")
			}
		}
	}
	return map[string]any{"static_resources": map[string]any{"listeners": listeners, "clusters": clusters}}, nil
}

// staticFilters replaces the HTTP filters configured over ECDS with the
// configuration Envoy received (or their default).
func staticFilters(hcm map[string]any, ecds map[string]any) {
	for _, f := range list(hcm["http_filters"]) {
		m := f.(map[string]any)
		cd, ok := m["config_discovery"].(map[string]any)
		if !ok {
			continue
		}
		tc := ecds[fmt.Sprint(m["name"])]
		if tc == nil {
			tc = cd["default_config"]
		}
		m["typed_config"] = tc
		delete(m, "config_discovery")
	}
}

// hcms returns the http_connection_manager configs of a listener.
func hcms(l map[string]any) []map[string]any {
	var out []map[string]any
	for _, fc := range list(l["filter_chains"]) {
		for _, f := range list(get(fc, "filters")) {
			tc, ok := get(f, "typed_config").(map[string]any)
			if ok && tc["@type"] == "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager" {
				out = append(out, tc)
			}
		}
	}
	return out
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// get walks keys through nested maps; nil when a step is missing.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
