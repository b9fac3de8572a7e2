package deploy_test

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/tollgate/tollgate/internal/cli"
)

// TestKubernetesEnvoyModule checks the Envoy module's wiring in every
// overlay: the control plane's serve --envoy-module names
// libtollgate_envoy.so in a directory the Envoy container mounts
// read-only from an emptyDir; an init container of the control plane's
// image (the same image reference and pull policy after the overlay's
// image override: one release) runs `envoy-module install --to` into that
// emptyDir, mounted read-write, and not over the library's own directory
// in the image.
func TestKubernetesEnvoyModule(t *testing.T) {
	for _, dir := range overlays {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m := buildOverlay(t, dir)
			tg := m.deployments["tollgate"].Spec.Template.Spec.Containers[0]
			module := flagValue(expandVars(tg.Args), "--envoy-module")
			if filepath.Base(module) != cli.EnvoyModuleFile {
				t.Fatalf("serve --envoy-module %q, want a path to %s", module, cli.EnvoyModuleFile)
			}
			spec := m.deployments["envoy"].Spec.Template.Spec
			volume := emptyDirMount(spec, spec.Containers[0], filepath.Dir(module))
			if volume == nil || !volume.ReadOnly {
				t.Fatalf("envoy does not mount an emptyDir read-only at %s (serve --envoy-module %s): %+v", filepath.Dir(module), module, volume)
			}
			i := slices.IndexFunc(spec.InitContainers, func(c corev1.Container) bool {
				return len(c.Args) >= 2 && c.Args[0] == "envoy-module" && c.Args[1] == "install"
			})
			if i < 0 {
				t.Fatalf("no init container of the envoy pods runs envoy-module install")
			}
			checkModuleInstaller(t, spec, spec.InitContainers[i], tg, volume.Name)
			checkListenerStartupProbe(t, spec.Containers[0])
		})
	}
}

// checkListenerStartupProbe: the Envoy container is not ready before the
// policy's listener accepts connections. Envoy's /ready (the readiness
// probe) turns 200 once its first LDS response was handled, accepted or
// not: an Envoy whose module refuses the control plane's configuration (a
// module of another contract, a missing library) binds no listener yet
// reports LIVE (envoymodule/smoke TestModuleContractLDS). Without this
// probe such a pod turns Ready and a rolling update replaces the serving
// Envoys with ones that refuse every connection.
func checkListenerStartupProbe(t *testing.T, c corev1.Container) {
	t.Helper()
	p := c.StartupProbe
	if p == nil || p.TCPSocket == nil {
		t.Fatalf("envoy container %s: no TCP startup probe on the listener port (startupProbe %+v)", c.Name, p)
	}
	port := p.TCPSocket.Port.String()
	i := slices.IndexFunc(c.Ports, func(cp corev1.ContainerPort) bool {
		return cp.Name == port || strconv.Itoa(int(cp.ContainerPort)) == port
	})
	if i < 0 || c.Ports[i].Name != "http" {
		t.Errorf("envoy container %s: startup probe on port %q, want the policy's listener port http", c.Name, port)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/ready" {
		t.Errorf("envoy container %s: readiness probe %+v, want GET /ready (it turns 503 during the drain)",
			c.Name, c.ReadinessProbe)
	}
}

// checkModuleInstaller: the init container runs the control plane's image
// with its pull policy, installs into the named volume mounted read-write,
// does not hide its source, runs non-root with a strict security context.
func checkModuleInstaller(t *testing.T, spec corev1.PodSpec, c, tg corev1.Container, volume string) {
	t.Helper()
	if c.Image != tg.Image || c.ImagePullPolicy != tg.ImagePullPolicy {
		t.Errorf("init container %s runs %q (pull %q); the control plane runs %q (pull %q): they must be one release",
			c.Name, c.Image, c.ImagePullPolicy, tg.Image, tg.ImagePullPolicy)
	}
	if len(c.Command) != 0 {
		t.Errorf("init container %s sets command; the tollgate image's entrypoint is the binary", c.Name)
	}
	to := flagValue(c.Args, "--to")
	if v := emptyDirMount(spec, c, to); v == nil || v.Name != volume || v.ReadOnly {
		t.Errorf("init container %s installs into %s, which is not volume %s mounted read-write: %+v", c.Name, to, volume, v)
	}
	from := flagValue(c.Args, "--from")
	if from == "" {
		from = cli.DefaultEnvoyModulePath
	}
	for _, vm := range c.VolumeMounts {
		if from == vm.MountPath || strings.HasPrefix(from, vm.MountPath+"/") {
			t.Errorf("init container %s mounts %s over its source %s", c.Name, vm.MountPath, from)
		}
	}
	if !strictSecurityContext(c.SecurityContext) {
		t.Errorf("init container %s: security context %+v is not strict", c.Name, c.SecurityContext)
	}
	if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
		(c.SecurityContext.RunAsUser != nil && *c.SecurityContext.RunAsUser == 0) {
		t.Errorf("init container %s must run as non-root", c.Name)
	}
}

// emptyDirMount returns c's mount of an emptyDir volume of spec at path,
// or nil.
func emptyDirMount(spec corev1.PodSpec, c corev1.Container, path string) *corev1.VolumeMount {
	for i, vm := range c.VolumeMounts {
		if vm.MountPath != path {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == vm.Name && v.EmptyDir != nil {
				return &c.VolumeMounts[i]
			}
		}
	}
	return nil
}

// strictSecurityContext: no privilege escalation, a read-only root file
// system and every capability dropped, as the other containers.
func strictSecurityContext(sc *corev1.SecurityContext) bool {
	return sc != nil && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation &&
		sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem &&
		sc.Capabilities != nil && slices.Contains(sc.Capabilities.Drop, "ALL") && len(sc.Capabilities.Add) == 0 &&
		(sc.Privileged == nil || !*sc.Privileged)
}
