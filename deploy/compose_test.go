package deploy_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	composecli "github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/goccy/go-yaml"

	"github.com/tollgate/tollgate/internal/cli"
	"github.com/tollgate/tollgate/policy"
)

const composeFile = "docker-compose.yml"

// tollgateImage is the image the Dockerfile builds in compose.
const tollgateImage = "tollgate:dev"

// loadCompose loads docker-compose.yml with compose-go, the loader of the
// docker compose CLI: schema validation (unknown keys fail), interpolation,
// YAML anchors and merge keys, normalisation, path resolution and the
// consistency check (depends_on, networks and volumes that exist).
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := composecli.NewProjectOptions([]string{filepath.Join(root, composeFile)},
		composecli.WithWorkingDirectory(root), composecli.WithEnv([]string{}), composecli.WithResolvedPaths(true), composecli.WithConsistency(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose-go rejects %s: %v", composeFile, err)
	}
	return p
}

// TestComposeServices checks the services issue 7 asks for, their pinned
// images and the start order.
func TestComposeServices(t *testing.T) {
	p := loadCompose(t)
	wantImages := map[string]string{
		"redis": "redis:8.2-alpine", "tollgate": tollgateImage, "users-1": tollgateImage, "users-2": tollgateImage,
		"orders-1": tollgateImage, "envoy": "envoyproxy/envoy:v1.40.0", "demo-key": tollgateImage, "envoy-module": tollgateImage,
		"prometheus": "prom/prometheus:v3.5.0", "grafana": "grafana/grafana:12.1.0",
		"otel-collector": "otel/opentelemetry-collector-contrib:0.130.0", "jaeger": "jaegertracing/jaeger:2.8.0",
	}
	for name, want := range wantImages {
		s, ok := p.Services[name]
		if !ok {
			t.Errorf("service %s is missing", name)
			continue
		}
		if s.Image != want {
			t.Errorf("service %s: image %q, want %q", name, s.Image, want)
		}
	}
	for name := range p.Services {
		if _, ok := wantImages[name]; !ok {
			t.Errorf("service %s is not checked by this test: add it to wantImages", name)
		}
	}
	wantDeps := map[string]map[string]string{
		"tollgate":   {"redis": types.ServiceConditionHealthy},
		"envoy":      {"envoy-module": types.ServiceConditionCompletedSuccessfully, "tollgate": types.ServiceConditionHealthy, "users-1": types.ServiceConditionHealthy, "users-2": types.ServiceConditionHealthy, "orders-1": types.ServiceConditionHealthy},
		"demo-key":   {"tollgate": types.ServiceConditionHealthy},
		"prometheus": {"tollgate": types.ServiceConditionHealthy, "envoy": types.ServiceConditionHealthy},
		"grafana":    {"prometheus": types.ServiceConditionHealthy},
	}
	for name, deps := range wantDeps {
		for dep, cond := range deps {
			if got := p.Services[name].DependsOn[dep].Condition; got != cond {
				t.Errorf("%s depends on %s with condition %q, want %q", name, dep, got, cond)
			}
		}
	}
	// Every service another waits on for health has a health check.
	for name, s := range p.Services {
		for dep, d := range s.DependsOn {
			hc := p.Services[dep].HealthCheck
			if d.Condition == types.ServiceConditionHealthy && (hc == nil || hc.Disable || len(hc.Test) < 2) {
				t.Errorf("%s waits for %s to be healthy, but %s has no health check", name, dep, dep)
			}
		}
	}
	if b := p.Services["tollgate"].Build; b == nil || !strings.HasSuffix(b.Dockerfile, "Dockerfile") {
		t.Errorf("tollgate must be built from the Dockerfile: %+v", b)
	}
}

// TestComposeFilesExist checks that every bind-mounted file or directory
// and the build context exist.
func TestComposeFilesExist(t *testing.T) {
	p := loadCompose(t)
	n := 0
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			n++
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("service %s mounts %s, which does not exist: %v", name, v.Source, err)
			}
			if !v.ReadOnly {
				t.Errorf("service %s mounts %s read-write; mount repository files :ro", name, v.Source)
			}
		}
		if s.Build != nil {
			if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("service %s builds from a missing Dockerfile: %v", name, err)
			}
		}
	}
	if n < 7 {
		t.Errorf("only %d bind mounts found: is the loader resolving them?", n)
	}
}

// TestComposeCommandLines checks every tollgate command line in the compose
// file against the real command tree, including the health checks.
func TestComposeCommandLines(t *testing.T) {
	p := loadCompose(t)
	n := 0
	for name, s := range p.Services {
		if s.Image != tollgateImage {
			continue
		}
		n++
		checkTollgateArgs(t, "compose service "+name, s.Command)
		checkComposeServeMounts(t, name, s)
		if hc := s.HealthCheck; hc != nil && len(hc.Test) > 2 && hc.Test[0] == "CMD" {
			if hc.Test[1] != "/usr/local/bin/tollgate" {
				t.Errorf("service %s: health check runs %s; the distroless image has only /usr/local/bin/tollgate", name, hc.Test[1])
			}
			checkTollgateArgs(t, "compose service "+name+" healthcheck", hc.Test[2:])
		}
	}
	if n != 6 {
		t.Errorf("%d services run the tollgate image, want 6", n)
	}
}

// TestComposeEnvoy checks the Envoy service: the bootstrap it mounts is a
// generated one (TestBootstrapsAreGenerated) and passes the real Envoy with
// the service's command-line flags; the published ports are the policy's
// listener and the stats port.
func TestComposeEnvoy(t *testing.T) {
	p := loadCompose(t)
	s := p.Services["envoy"]
	cmd := []string(s.Command)
	if len(cmd) < 3 || cmd[0] != "envoy" || cmd[1] != "-c" {
		t.Fatalf("envoy command %q: want envoy -c FILE ...", cmd)
	}
	var file string
	for _, v := range s.Volumes {
		if v.Target == cmd[2] {
			file = v.Source
		}
	}
	rel, err := filepath.Rel(mustAbs(t, repoRoot), file)
	if err != nil || !slices.ContainsFunc(bootstraps, func(b struct {
		file string
		args []string
	}) bool {
		return b.file == rel
	}) {
		t.Fatalf("envoy reads %s from %q, which is not one of the generated bootstraps", cmd[2], rel)
	}
	envoyValidate(t, rel, cmd[3:]...)
	published := map[uint32]bool{}
	for _, port := range s.Ports {
		published[port.Target] = true
	}
	for _, want := range []uint32{8080, 9902} {
		if !published[want] {
			t.Errorf("envoy does not publish port %d", want)
		}
	}
	// Envoy's /ready is LIVE with its configuration refused and nothing
	// listening: the health check connects to the listener too (run against
	// a real Envoy by e2e TestDeployEnvoyScripts).
	if s.HealthCheck == nil || !strings.Contains(strings.Join(s.HealthCheck.Test, " "), "/dev/tcp/127.0.0.1/8080") {
		t.Errorf("envoy's health check does not connect to the policy's listener 8080")
	}
}

// TestComposePolicy checks that the mounted demo policy is valid, that its
// backends are exactly the demo upstreams' fixed addresses and ports, and
// that the policy's listener is the port Envoy publishes.
func TestComposePolicy(t *testing.T) {
	p := loadCompose(t)
	cfg, diags := policy.Build([]policy.File{{Name: composePolicy, Content: readFile(t, composePolicy)}})
	if diags.HasErrors() {
		t.Fatalf("%s: %v", composePolicy, diags.Err())
	}
	upstreams := map[string]bool{}
	for name, s := range p.Services {
		if len(s.Command) == 0 || s.Command[0] != "demo-upstream" {
			continue
		}
		ip := s.Networks["tollgate"].Ipv4Address
		addr := flagValue(s.Command, "--addr")
		_, port, _ := strings.Cut(addr, ":")
		upstreams[ip+":"+port] = true
		if a, err := netip.ParseAddr(ip); err != nil || !inSubnet(t, p, a) {
			t.Errorf("%s: address %q is not a fixed address of the tollgate network", name, ip)
		}
	}
	policyEndpoints := map[string]bool{}
	for _, b := range cfg.Backends {
		for _, e := range b.Endpoints {
			policyEndpoints[net.JoinHostPort(e.Host, fmt.Sprint(e.Port))] = true
		}
	}
	if len(upstreams) != 3 || !mapsEqual(upstreams, policyEndpoints) {
		t.Errorf("policy endpoints %v, demo upstreams %v: they must be the same", keys(policyEndpoints), keys(upstreams))
	}
	if l := cfg.Gateways[0].Listeners[0]; l.Port != 8080 || l.Address != "0.0.0.0" {
		t.Errorf("policy listener %s:%d, want 0.0.0.0:8080 (published by the envoy service)", l.Address, l.Port)
	}
}

// TestComposeSecretsAgree checks that the demo admin token is the same for
// the server, the demo-key job and Prometheus's credentials file, and that
// the pepper is long enough for --redis.
func TestComposeSecretsAgree(t *testing.T) {
	p := loadCompose(t)
	file := strings.TrimSpace(string(readFile(t, "deploy/compose/admin-token")))
	server := p.Services["tollgate"].Environment["TOLLGATE_ADMIN_TOKEN"]
	client := p.Services["demo-key"].Environment["TOLLGATE_TOKEN"]
	if server == nil || client == nil || *server != file || *client != file {
		t.Errorf("admin tokens differ: server %v, demo-key %v, deploy/compose/admin-token %q", server, client, file)
	}
	if pepper := p.Services["tollgate"].Environment["TOLLGATE_KEY_PEPPER"]; pepper == nil || len(*pepper) < 16 {
		t.Errorf("TOLLGATE_KEY_PEPPER must be at least 16 bytes with --redis")
	}
}

// TestComposeObservability checks that Prometheus scrapes the ports the
// services serve (Envoy's stats port, tollgate's admin address with the
// token file), that Grafana's dashboard provider watches the directory the
// compose file mounts, and that the collector exports to a service that
// exists.
func TestComposeObservability(t *testing.T) {
	p := loadCompose(t)
	var prom struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			Authorization struct {
				Type            string `yaml:"type"`
				CredentialsFile string `yaml:"credentials_file"`
			} `yaml:"authorization"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	decodeYAML(t, "deploy/observability/prometheus/prometheus.yml", &prom)
	jobs := map[string]string{}
	for _, sc := range prom.ScrapeConfigs {
		jobs[sc.JobName] = sc.MetricsPath + " " + strings.Join(sc.StaticConfigs[0].Targets, ",")
		if sc.JobName == "tollgate" && (sc.Authorization.Type != "Bearer" || !mountedIn(p, "prometheus", sc.Authorization.CredentialsFile)) {
			t.Errorf("the tollgate job must send the admin token from a mounted file: %+v", sc.Authorization)
		}
	}
	statsPort := flagValue(bootstraps[0].args, "--stats-port")
	adminPort := strings.TrimPrefix(flagValue(p.Services["tollgate"].Command, "--admin-addr"), "0.0.0.0:")
	want := map[string]string{"envoy": "/stats/prometheus envoy:" + statsPort, "tollgate": "/metrics tollgate:" + adminPort}
	for job, w := range want {
		if jobs[job] != w {
			t.Errorf("prometheus job %s scrapes %q, want %q", job, jobs[job], w)
		}
	}
	var provider struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	decodeYAML(t, "deploy/observability/grafana/provisioning/dashboards/tollgate.yml", &provider)
	if len(provider.Providers) != 1 || !mountedIn(p, "grafana", provider.Providers[0].Options.Path) {
		t.Errorf("grafana's dashboard provider must watch a mounted directory: %+v", provider)
	}
	var otel struct {
		Exporters map[string]struct {
			Endpoint string `yaml:"endpoint"`
		} `yaml:"exporters"`
	}
	decodeYAML(t, "deploy/observability/otel-collector/config.yaml", &otel)
	host, _, _ := strings.Cut(otel.Exporters["otlp/jaeger"].Endpoint, ":")
	if _, ok := p.Services[host]; !ok {
		t.Errorf("the collector exports to %q, which is not a compose service", host)
	}
}

func decodeYAML(t *testing.T, rel string, v any) {
	t.Helper()
	if err := yaml.Unmarshal(readFile(t, rel), v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

// mountedIn reports whether path is a bind mount target of service, or
// below one.
func mountedIn(p *types.Project, service, path string) bool {
	for _, v := range p.Services[service].Volumes {
		if path == v.Target || strings.HasPrefix(path, v.Target+"/") {
			return true
		}
	}
	return false
}

// flagValue returns the value of --name=value or --name value in args.
func flagValue(args []string, name string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func inSubnet(t *testing.T, p *types.Project, a netip.Addr) bool {
	for _, c := range p.Networks["tollgate"].Ipam.Config {
		subnet, err := netip.ParsePrefix(c.Subnet)
		if err != nil {
			t.Fatalf("subnet %q: %v", c.Subnet, err)
		}
		dynamic, err := netip.ParsePrefix(c.IPRange)
		if err != nil {
			t.Fatalf("ip_range %q: %v", c.IPRange, err)
		}
		if subnet.Contains(a) && !dynamic.Contains(a) {
			return true
		}
	}
	return false
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// checkComposeServeMounts: serve's --policy is a bind-mounted file and its
// --data-dir a named volume, so the store survives restarts.
func checkComposeServeMounts(t *testing.T, name string, s types.ServiceConfig) {
	t.Helper()
	if len(s.Command) == 0 || s.Command[0] != "serve" {
		return
	}
	want := map[string]string{flagValue(s.Command, "--policy"): types.VolumeTypeBind, flagValue(s.Command, "--data-dir"): types.VolumeTypeVolume}
	for path, typ := range want {
		found := false
		for _, v := range s.Volumes {
			found = found || (v.Target == path && v.Type == typ)
		}
		if !found {
			t.Errorf("service %s: %s is not a %s mount", name, path, typ)
		}
	}
}

// TestComposeEnvoyModule checks the Envoy module's wiring: serve's
// --envoy-module names libtollgate_envoy.so in a named volume that Envoy
// mounts read-only; a one-shot service of the same image installs the
// library into that volume (`envoy-module install --to`, mounted
// read-write on the image's nonroot-owned empty directory, so the new
// volume is writable by uid 65532, and not over the library's own
// directory in the image); Envoy starts once it completed and restarts
// when it is updated.
func TestComposeEnvoyModule(t *testing.T) {
	p := loadCompose(t)
	module := flagValue(p.Services["tollgate"].Command, "--envoy-module")
	if filepath.Base(module) != cli.EnvoyModuleFile {
		t.Fatalf("serve --envoy-module %q, want a path to %s", module, cli.EnvoyModuleFile)
	}
	volume := namedVolumeAt(t, p.Services["envoy"], filepath.Dir(module))
	if volume == nil || !volume.ReadOnly {
		t.Fatalf("envoy does not mount a named volume read-only at %s (serve --envoy-module %s): %+v", filepath.Dir(module), module, volume)
	}
	var installer string
	for name, s := range p.Services {
		if len(s.Command) >= 2 && s.Command[0] == "envoy-module" && s.Command[1] == "install" {
			installer = name
		}
	}
	s := p.Services[installer]
	if installer == "" || s.Image != p.Services["tollgate"].Image {
		t.Fatalf("no service of the control plane's image %q runs envoy-module install (%q: %q)", p.Services["tollgate"].Image, installer, s.Image)
	}
	to := flagValue(s.Command, "--to")
	if v := namedVolumeAt(t, s, to); v == nil || v.Source != volume.Source || v.ReadOnly {
		t.Errorf("%s installs into %s, which is not volume %s mounted read-write: %+v", installer, to, volume.Source, v)
	}
	if c := stageCopies(t)["module:/out/envoy-module"]; to != c.dst || c.chown != "65532:65532" {
		t.Errorf("%s installs into %s; the image's empty nonroot-owned directory is %s (chown %s)", installer, to, c.dst, c.chown)
	}
	from := flagValue(s.Command, "--from")
	if from == "" {
		from = cli.DefaultEnvoyModulePath
	}
	for _, v := range s.Volumes {
		if from == v.Target || strings.HasPrefix(from, v.Target+"/") {
			t.Errorf("%s mounts %s over its source %s", installer, v.Target, from)
		}
	}
	if dep := p.Services["envoy"].DependsOn[installer]; dep.Condition != types.ServiceConditionCompletedSuccessfully || !dep.Restart {
		t.Errorf("envoy depends on %s with %+v, want service_completed_successfully and restart: true", installer, dep)
	}
	if s.Restart != "no" {
		t.Errorf("%s restarts %q; a one-shot must not (restart: \"no\")", installer, s.Restart)
	}
}

// namedVolumeAt returns s's mount of a named volume at target, or nil.
func namedVolumeAt(t *testing.T, s types.ServiceConfig, target string) *types.ServiceVolumeConfig {
	t.Helper()
	for i, v := range s.Volumes {
		if v.Target == target && v.Type == types.VolumeTypeVolume {
			return &s.Volumes[i]
		}
	}
	return nil
}
