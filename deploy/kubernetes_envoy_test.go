package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestKubernetesEnvoy checks the Envoy Deployment of every overlay: it
// reads the generated bootstrap from the ConfigMap it mounts, the real
// Envoy accepts that bootstrap with the container's own command-line flags,
// and the preStop hook drains gracefully within the grace period.
func TestKubernetesEnvoy(t *testing.T) {
	for _, dir := range overlays {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m := buildOverlay(t, dir)
			spec := m.deployments["envoy"].Spec.Template.Spec
			c := spec.Containers[0]
			if c.Image != "envoyproxy/envoy:v1.40.0" {
				t.Errorf("envoy image %q, want envoyproxy/envoy:v1.40.0", c.Image)
			}
			cm := m.configMaps["envoy-bootstrap"]
			if cm == nil {
				t.Fatal("no envoy-bootstrap ConfigMap")
			}
			args := expandVars(c.Args)
			if len(args) < 2 || args[0] != "-c" {
				t.Fatalf("envoy args %q: want -c FILE first", args)
			}
			file, ok := mountedConfigMapFile(spec, c, cm.Name, args[1])
			if !ok {
				t.Fatalf("envoy reads %s, which is not a key of ConfigMap %s mounted in the container", args[1], cm.Name)
			}
			if cm.Data[file] != string(readFile(t, bootstraps[1].file)) {
				t.Errorf("ConfigMap %s key %s is not %s", cm.Name, file, bootstraps[1].file)
			}
			tmp := filepath.Join(t.TempDir(), "bootstrap.yaml")
			if err := os.WriteFile(tmp, []byte(cm.Data[file]), 0o600); err != nil {
				t.Fatal(err)
			}
			rel, err := filepath.Rel(mustAbs(t, repoRoot), tmp)
			if err != nil {
				t.Fatal(err)
			}
			envoyValidate(t, rel, args[2:]...)
			checkDrain(t, spec, c)
		})
	}
}

// mountedConfigMapFile returns the ConfigMap key that path names in c.
func mountedConfigMapFile(spec corev1.PodSpec, c corev1.Container, configMap, path string) (string, bool) {
	for _, vm := range c.VolumeMounts {
		key, ok := strings.CutPrefix(path, vm.MountPath+"/")
		if !ok {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == vm.Name && v.ConfigMap != nil && v.ConfigMap.Name == configMap {
				return key, true
			}
		}
	}
	return "", false
}

// checkDrain: preStop POSTs /drain_listeners?graceful to the loopback
// admin port, then sleeps at least --drain-time-s, and the grace period
// covers the sleep.
func checkDrain(t *testing.T, spec corev1.PodSpec, c corev1.Container) {
	t.Helper()
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Exec == nil {
		t.Fatal("envoy has no preStop exec hook")
	}
	script := strings.Join(c.Lifecycle.PreStop.Exec.Command, " ")
	for _, want := range []string{"/dev/tcp/127.0.0.1/9901", "POST /drain_listeners?graceful HTTP/1.1"} {
		if !strings.Contains(script, want) {
			t.Errorf("preStop %q lacks %q", script, want)
		}
	}
	sleep := atoiMatch(t, `sleep (\d+)$`, script)
	drain := atoiMatch(t, `^(\d+)$`, flagValue(c.Args, "--drain-time-s"))
	grace := int64(30)
	if spec.TerminationGracePeriodSeconds != nil {
		grace = *spec.TerminationGracePeriodSeconds
	}
	if !(drain < sleep && int64(sleep)+5 <= grace) {
		t.Errorf("drain %ds, preStop sleep %ds, grace period %ds: want drain < sleep and sleep + 5 ≤ grace", drain, sleep, grace)
	}
}

func atoiMatch(t *testing.T, re, s string) int {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		t.Fatalf("%q does not match %s", s, re)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
