package deploy_test

import (
	"fmt"
	"net"
	"path/filepath"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/tollgate/tollgate/policy"
)

// TestKubernetesPolicy checks that every overlay's policy ConfigMap is a
// valid policy whose listener is Envoy's "http" container port, and that
// the dev overlay's backends are exactly its demo Services.
func TestKubernetesPolicy(t *testing.T) {
	for _, dir := range overlays {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m := buildOverlay(t, dir)
			cm := m.configMaps["tollgate-policy"]
			if cm == nil {
				t.Fatal("no tollgate-policy ConfigMap")
			}
			cfg, diags := policy.Build([]policy.File{{Name: "policy.yaml", Content: []byte(cm.Data["policy.yaml"])}})
			if diags.HasErrors() {
				t.Fatalf("%s policy: %v", dir, diags.Err())
			}
			httpPort := int32(0)
			for _, p := range m.deployments["envoy"].Spec.Template.Spec.Containers[0].Ports {
				if p.Name == "http" {
					httpPort = p.ContainerPort
				}
			}
			if l := cfg.Gateways[0].Listeners[0]; int32(l.Port) != httpPort || l.Address != "0.0.0.0" {
				t.Errorf("policy listener %s:%d, envoy's http port %d", l.Address, l.Port, httpPort)
			}
			if filepath.Base(dir) != "dev" {
				return
			}
			services := map[string]bool{}
			for _, name := range []string{"users", "orders"} {
				s := m.services[name]
				services[net.JoinHostPort(s.Spec.ClusterIP, fmt.Sprint(s.Spec.Ports[0].Port))] = true
			}
			endpoints := map[string]bool{}
			for _, b := range cfg.Backends {
				for _, e := range b.Endpoints {
					endpoints[net.JoinHostPort(e.Host, fmt.Sprint(e.Port))] = true
				}
			}
			if !mapsEqual(services, endpoints) {
				t.Errorf("dev policy endpoints %v, demo Services %v", keys(endpoints), keys(services))
			}
		})
	}
}

// TestKubernetesSecrets: every Secret key a container reads exists in the
// dev overlay's generated Secret; production creates the same Secret by
// hand (documented), so it must not generate one with demo values.
func TestKubernetesSecrets(t *testing.T) {
	for _, dir := range overlays {
		m := buildOverlay(t, dir)
		generated := m.secrets["tollgate-secrets"]
		if filepath.Base(dir) == "production" {
			if generated != nil {
				t.Errorf("production generates tollgate-secrets; it must come from outside the repository")
			}
			continue
		}
		for name, d := range m.deployments {
			for _, c := range d.Spec.Template.Spec.Containers {
				for _, e := range c.Env {
					ref := e.ValueFrom
					if ref == nil || ref.SecretKeyRef == nil {
						continue
					}
					if generated == nil || generated.Name != ref.SecretKeyRef.Name {
						t.Errorf("%s: %s reads Secret %s, which the overlay does not make", dir, name, ref.SecretKeyRef.Name)
					} else if _, ok := generated.Data[ref.SecretKeyRef.Key]; !ok {
						if _, ok := generated.StringData[ref.SecretKeyRef.Key]; !ok {
							t.Errorf("%s: %s reads key %s, missing from the Secret", dir, name, ref.SecretKeyRef.Key)
						}
					}
				}
			}
		}
	}
}

// TestKubernetesNetworkPolicies computes, for each protected port, who may
// connect: the xDS, authz and rate-limit ports only Envoy pods; the admin
// and Envoy stats ports only operator namespaces; Redis only tollgate; and
// a default deny for everything else.
func TestKubernetesNetworkPolicies(t *testing.T) {
	envoyPods := map[string]string{"app.kubernetes.io/name": "envoy"}
	tollgatePods := map[string]string{"app.kubernetes.io/name": "tollgate"}
	operators := map[string]string{"tollgate.io/operator": "true"}
	tests := []struct {
		pods  string
		port  int32
		peer  map[string]string // the only allowed peer
		inNS  bool              // peer is a namespace selector
		open  bool              // anyone may connect
		needs string            // overlay that has the pods ("" = all)
	}{
		{pods: "tollgate", port: 18000, peer: envoyPods},
		{pods: "tollgate", port: 18001, peer: envoyPods},
		{pods: "tollgate", port: 18002, peer: envoyPods},
		{pods: "tollgate", port: 9900, peer: operators, inNS: true},
		{pods: "envoy", port: 9902, peer: operators, inNS: true},
		{pods: "envoy", port: 9901}, // loopback only: no rule may open it
		{pods: "envoy", port: 8080, open: true},
		{pods: "redis", port: 6379, peer: tollgatePods, needs: "dev"},
	}
	for _, dir := range overlays {
		m := buildOverlay(t, dir)
		if np := m.netpols["default-deny-ingress"]; np == nil || len(np.Spec.PodSelector.MatchLabels) != 0 || len(np.Spec.Ingress) != 0 {
			t.Errorf("%s: no default-deny ingress policy", dir)
		}
		for _, tt := range tests {
			if tt.needs != "" && filepath.Base(dir) != tt.needs {
				continue
			}
			labels := podLabels(m, tt.pods)
			if labels == nil {
				t.Errorf("%s: no %s pods", dir, tt.pods)
				continue
			}
			peers, open := allowedPeers(m, labels, tt.port)
			where := fmt.Sprintf("%s: %s port %d", dir, tt.pods, tt.port)
			switch {
			case tt.open:
				if !open {
					t.Errorf("%s must be open to all", where)
				}
			case open:
				t.Errorf("%s is open to all", where)
			case tt.peer == nil && len(peers) > 0:
				t.Errorf("%s is reachable from %v; it must not be", where, peers)
			case tt.peer != nil:
				checkPeers(t, where, peers, tt.peer, tt.inNS)
			}
		}
	}
}

func checkPeers(t *testing.T, where string, peers []networkingv1.NetworkPolicyPeer, want map[string]string, inNS bool) {
	t.Helper()
	if len(peers) == 0 {
		t.Errorf("%s: nobody may connect; want %v", where, want)
	}
	for _, p := range peers {
		ok := p.IPBlock == nil
		if inNS {
			ok = ok && p.PodSelector == nil && p.NamespaceSelector != nil && equalLabels(p.NamespaceSelector.MatchLabels, want) &&
				len(p.NamespaceSelector.MatchExpressions) == 0
		} else {
			ok = ok && p.NamespaceSelector == nil && p.PodSelector != nil && equalLabels(p.PodSelector.MatchLabels, want) &&
				len(p.PodSelector.MatchExpressions) == 0
		}
		if !ok {
			t.Errorf("%s: allowed peer %+v; want only %v", where, p, want)
		}
	}
}

// allowedPeers returns the peers of every ingress rule that selects pods
// with labels and covers port, and whether some such rule allows everyone.
func allowedPeers(m *manifests, labels map[string]string, port int32) ([]networkingv1.NetworkPolicyPeer, bool) {
	var peers []networkingv1.NetworkPolicyPeer
	open := false
	for _, np := range m.netpols {
		sel := np.Spec.PodSelector
		if len(sel.MatchExpressions) != 0 || (len(sel.MatchLabels) > 0 && !selects(sel.MatchLabels, labels)) {
			continue
		}
		for _, rule := range np.Spec.Ingress {
			if !coversPort(rule.Ports, port) {
				continue
			}
			if len(rule.From) == 0 {
				open = true
			}
			peers = append(peers, rule.From...)
		}
	}
	return peers, open
}

func coversPort(ports []networkingv1.NetworkPolicyPort, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Port == nil {
			return true
		}
		if p.Port.IntValue() == int(port) && p.EndPort == nil {
			return true
		}
		if p.EndPort != nil && int32(p.Port.IntValue()) <= port && port <= *p.EndPort {
			return true
		}
	}
	return false
}

func podLabels(m *manifests, name string) map[string]string {
	if d, ok := m.deployments[name]; ok {
		return d.Spec.Template.Labels
	}
	if s, ok := m.statefulsets[name]; ok {
		return s.Spec.Template.Labels
	}
	return nil
}

func equalLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
