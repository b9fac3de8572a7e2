package deploy_test

import (
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// allowedAdminHosts returns the Host names serve's args let the admin API
// answer to: the built-in loopback names plus every --admin-allowed-host.
func allowedAdminHosts(args []string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	for i, a := range args {
		v, ok := strings.CutPrefix(a, "--admin-allowed-host=")
		if !ok && a == "--admin-allowed-host" && i+1 < len(args) {
			v, ok = args[i+1], true
		}
		if ok {
			hosts = append(hosts, strings.Split(v, ",")...)
		}
	}
	return hosts
}

// TestComposeAdminClientsUseAllowedHosts: the demo-key job and Prometheus
// reach the admin API as http://tollgate:9900, so serve must accept that
// Host (it answers 421 to names it does not know, against DNS rebinding).
func TestComposeAdminClientsUseAllowedHosts(t *testing.T) {
	p := loadCompose(t)
	allowed := allowedAdminHosts(p.Services["tollgate"].Command)
	server, err := url.Parse(flagValue(p.Services["demo-key"].Command, "--server"))
	if err != nil || server.Hostname() == "" {
		t.Fatalf("demo-key --server: %v", err)
	}
	hosts := map[string]string{"demo-key --server": server.Hostname()}
	var prom struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	decodeYAML(t, "deploy/observability/prometheus/prometheus.yml", &prom)
	for _, sc := range prom.ScrapeConfigs {
		if sc.JobName == "tollgate" {
			host, _, _ := net.SplitHostPort(sc.StaticConfigs[0].Targets[0])
			hosts["prometheus target"] = host
		}
	}
	for who, h := range hosts {
		if !slices.Contains(allowed, h) {
			t.Errorf("%s uses Host %q; add --admin-allowed-host=%s to the tollgate service (allowed: %v)", who, h, h, allowed)
		}
	}
}

// TestKubernetesAdminServiceNamesAllowed: clients in the cluster reach the
// admin API through the tollgate-admin Service by its short and qualified
// names; serve must accept each as Host.
func TestKubernetesAdminServiceNamesAllowed(t *testing.T) {
	for _, dir := range overlays {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m := buildOverlay(t, dir)
			svc, tg := m.services["tollgate-admin"], m.deployments["tollgate"]
			if svc == nil || tg == nil {
				t.Fatalf("the tollgate-admin Service and tollgate Deployment are required")
			}
			allowed := allowedAdminHosts(expandVars(tg.Spec.Template.Spec.Containers[0].Args))
			ns := svc.Namespace
			for _, h := range []string{svc.Name, svc.Name + "." + ns, svc.Name + "." + ns + ".svc", svc.Name + "." + ns + ".svc.cluster.local"} {
				if !slices.Contains(allowed, h) {
					t.Errorf("Host %q is not in --admin-allowed-host (%v)", h, allowed)
				}
			}
		})
	}
}
