package deploy_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// overlays are the kustomizations users apply.
var overlays = []string{"deploy/kubernetes/overlays/dev", "deploy/kubernetes/overlays/production"}

// manifests is one built overlay, decoded into the Kubernetes API types.
type manifests struct {
	deployments  map[string]*appsv1.Deployment
	statefulsets map[string]*appsv1.StatefulSet
	services     map[string]*corev1.Service
	configMaps   map[string]*corev1.ConfigMap // by name without the hash suffix
	secrets      map[string]*corev1.Secret    // likewise
	pdbs         map[string]*policyv1.PodDisruptionBudget
	hpas         map[string]*autoscalingv2.HorizontalPodAutoscaler
	netpols      map[string]*networkingv1.NetworkPolicy
	other        int // namespaces and service accounts
}

// buildOverlay runs kustomize (krusty, the library inside `kubectl -k`)
// on dir and decodes every resource strictly: unknown fields, duplicate
// fields and wrong types fail, as do kinds this test does not know.
func buildOverlay(t *testing.T, dir string) *manifests {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(repoRoot, dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{appsv1.AddToScheme, corev1.AddToScheme, policyv1.AddToScheme,
		autoscalingv2.AddToScheme, networkingv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	decoder := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
	m := &manifests{deployments: map[string]*appsv1.Deployment{}, statefulsets: map[string]*appsv1.StatefulSet{},
		services: map[string]*corev1.Service{}, configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		netpols: map[string]*networkingv1.NetworkPolicy{}}
	for _, r := range rm.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		obj, _, err := decoder.Decode(y, nil, nil)
		if err != nil {
			t.Errorf("%s: %s %s: %v", dir, r.GetKind(), r.GetName(), err)
			continue
		}
		if err := m.add(obj); err != nil {
			t.Errorf("%s: %v", dir, err)
		}
	}
	return m
}

func (m *manifests) add(obj runtime.Object) error {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		m.deployments[o.Name] = o
	case *appsv1.StatefulSet:
		m.statefulsets[o.Name] = o
	case *corev1.Service:
		m.services[o.Name] = o
	case *corev1.ConfigMap:
		m.configMaps[unhashed(o.Name)] = o
	case *corev1.Secret:
		m.secrets[unhashed(o.Name)] = o
	case *policyv1.PodDisruptionBudget:
		m.pdbs[o.Name] = o
	case *autoscalingv2.HorizontalPodAutoscaler:
		m.hpas[o.Name] = o
	case *networkingv1.NetworkPolicy:
		m.netpols[o.Name] = o
	case *corev1.Namespace, *corev1.ServiceAccount:
		m.other++
	default:
		return fmt.Errorf("unexpected kind %T", obj)
	}
	return nil
}

// unhashed drops the hash suffix kustomize's generators add.
func unhashed(name string) string {
	if i := strings.LastIndexByte(name, '-'); i > 0 && len(name)-i == 11 {
		return name[:i]
	}
	return name
}

// TestKubernetesManifestsDecodeStrictly builds every overlay and decodes
// every resource with the Kubernetes API types.
func TestKubernetesManifestsDecodeStrictly(t *testing.T) {
	for _, dir := range overlays {
		m := buildOverlay(t, dir)
		if len(m.deployments) < 2 || len(m.services) < 4 || len(m.netpols) < 4 || m.other < 3 {
			t.Errorf("%s: too few resources: %d deployments, %d services, %d network policies", dir, len(m.deployments), len(m.services), len(m.netpols))
		}
	}
}

// TestStrictDecodingCatchesTypos makes sure the decoder above is strict.
func TestStrictDecodingCatchesTypos(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := appsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	decoder := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
	typo := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n"
	if _, _, err := decoder.Decode([]byte(typo), nil, nil); err == nil || !strings.Contains(err.Error(), "replica") {
		t.Errorf("a misspelt field decoded: %v", err)
	}
}

// TestKubernetesWorkloads checks what issue 7 asks of the workloads in
// every overlay: ≥2 tollgate replicas with a PDB, probes and resource
// requests on every container, tollgate command lines the real command
// tree accepts, Envoy behind a LoadBalancer with an HPA and a graceful
// drain, and every Service and PDB selecting pods that exist.
func TestKubernetesWorkloads(t *testing.T) {
	for _, dir := range overlays {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m := buildOverlay(t, dir)
			tg, envoy := m.deployments["tollgate"], m.deployments["envoy"]
			if tg == nil || envoy == nil {
				t.Fatalf("deployments tollgate and envoy are required; got %v", keysOf(m.deployments))
			}
			if tg.Spec.Replicas == nil || *tg.Spec.Replicas < 2 {
				t.Errorf("tollgate replicas %v, want ≥ 2", tg.Spec.Replicas)
			}
			for name, d := range m.deployments {
				checkPodSpec(t, "deployment "+name, &d.Spec.Template.Spec)
			}
			for name, s := range m.statefulsets {
				checkPodSpec(t, "statefulset "+name, &s.Spec.Template.Spec)
			}
			for _, name := range []string{"tollgate", "envoy"} {
				pdb := m.pdbs[name]
				if pdb == nil || !selects(pdb.Spec.Selector.MatchLabels, m.deployments[name].Spec.Template.Labels) {
					t.Errorf("no PodDisruptionBudget selects the %s pods", name)
				}
			}
			if svc := m.services["envoy"]; svc == nil || svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
				t.Errorf("envoy needs a LoadBalancer Service")
			}
			if hpa := m.hpas["envoy"]; hpa == nil || hpa.Spec.ScaleTargetRef.Name != "envoy" || hpa.Spec.ScaleTargetRef.Kind != "Deployment" ||
				hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 {
				t.Errorf("envoy needs an HPA on its Deployment with minReplicas ≥ 2")
			}
			if envoy.Spec.Replicas != nil {
				t.Errorf("the envoy Deployment sets replicas; the HPA owns them")
			}
			checkServicesSelectPods(t, m)
			checkTollgateContainerArgs(t, m)
		})
	}
}

// checkPodSpec: every container has readiness and liveness probes, CPU and
// memory requests, and runs as non-root without privilege escalation; every
// init container has CPU and memory requests and a strict security context.
func checkPodSpec(t *testing.T, where string, spec *corev1.PodSpec) {
	t.Helper()
	for _, c := range spec.Containers {
		if c.ReadinessProbe == nil {
			t.Errorf("%s: container %s has no readiness probe", where, c.Name)
		}
		if c.LivenessProbe == nil {
			t.Errorf("%s: container %s has no liveness probe", where, c.Name)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
			t.Errorf("%s: container %s has no CPU and memory requests", where, c.Name)
		}
		if c.SecurityContext == nil || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
			t.Errorf("%s: container %s must set allowPrivilegeEscalation: false", where, c.Name)
		}
		checkProbePort(t, where, c, c.ReadinessProbe)
		checkProbePort(t, where, c, c.LivenessProbe)
	}
	for _, c := range spec.InitContainers {
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
			t.Errorf("%s: init container %s has no CPU and memory requests", where, c.Name)
		}
		if !strictSecurityContext(c.SecurityContext) {
			t.Errorf("%s: init container %s must set allowPrivilegeEscalation: false, readOnlyRootFilesystem: true and drop ALL capabilities", where, c.Name)
		}
	}
	if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("%s: the pod must run as a numeric non-root user (runAsNonRoot with runAsUser)", where)
	}
}

// checkProbePort: an HTTP or TCP probe names a port the container declares.
func checkProbePort(t *testing.T, where string, c corev1.Container, p *corev1.Probe) {
	t.Helper()
	if p == nil {
		return
	}
	var port string
	switch {
	case p.HTTPGet != nil:
		port = p.HTTPGet.Port.String()
	case p.TCPSocket != nil:
		port = p.TCPSocket.Port.String()
	default:
		return
	}
	for _, cp := range c.Ports {
		if cp.Name == port || fmt.Sprint(cp.ContainerPort) == port {
			return
		}
	}
	t.Errorf("%s: container %s probes port %q, which it does not declare", where, c.Name, port)
}

// checkServicesSelectPods: every Service selects some pod template and its
// named target ports exist there.
func checkServicesSelectPods(t *testing.T, m *manifests) {
	t.Helper()
	templates := map[string]corev1.PodTemplateSpec{}
	for n, d := range m.deployments {
		templates[n] = d.Spec.Template
	}
	for n, s := range m.statefulsets {
		templates[n] = s.Spec.Template
	}
	for name, svc := range m.services {
		var matched *corev1.PodTemplateSpec
		for _, tpl := range templates {
			if selects(svc.Spec.Selector, tpl.Labels) {
				matched = &tpl
				break
			}
		}
		if matched == nil {
			t.Errorf("service %s selects no pods (%v)", name, svc.Spec.Selector)
			continue
		}
		for _, p := range svc.Spec.Ports {
			if p.TargetPort.String() != "" && !declaresPort(matched.Spec.Containers, p.TargetPort.String()) {
				t.Errorf("service %s: targetPort %s is not a port of the pods", name, p.TargetPort.String())
			}
		}
	}
}

func declaresPort(cs []corev1.Container, port string) bool {
	for _, c := range cs {
		for _, cp := range c.Ports {
			if cp.Name == port || fmt.Sprint(cp.ContainerPort) == port {
				return true
			}
		}
	}
	return false
}

// selects reports whether selector (non-empty) matches labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// checkTollgateContainerArgs runs every container (init containers too) of
// the tollgate image through the real command tree, with $(VAR) references
// replaced.
func checkTollgateContainerArgs(t *testing.T, m *manifests) {
	t.Helper()
	n := 0
	for name, d := range m.deployments {
		for _, c := range append(d.Spec.Template.Spec.InitContainers, d.Spec.Template.Spec.Containers...) {
			if !strings.Contains(c.Image, "tollgate") {
				continue
			}
			n++
			if len(c.Command) != 0 {
				t.Errorf("deployment %s: the tollgate image's entrypoint is the binary; set args, not command", name)
			}
			args := expandVars(c.Args)
			checkTollgateArgs(t, "deployment "+name, args)
			checkServeMounts(t, m, name, d.Spec.Template.Spec, c, args)
		}
	}
	if n == 0 {
		t.Errorf("no container runs the tollgate image")
	}
}

// expandVars replaces Kubernetes' $(VAR) references with a value that
// parses for any flag type the manifests use.
func expandVars(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.NewReplacer("$(REDIS_URL)", "redis://redis:6379/0", "$(POD_NAME)", "pod-0").Replace(a)
	}
	return out
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// checkServeMounts: serve's --policy is a key of the policy ConfigMap
// mounted in the container, and --data-dir a writable volume (the root file
// system is read-only).
func checkServeMounts(t *testing.T, m *manifests, name string, spec corev1.PodSpec, c corev1.Container, args []string) {
	t.Helper()
	if len(args) == 0 || args[0] != "serve" {
		return
	}
	cm := m.configMaps["tollgate-policy"]
	if key, ok := mountedConfigMapFile(spec, c, cm.Name, flagValue(args, "--policy")); !ok || cm.Data[key] == "" {
		t.Errorf("deployment %s: --policy %q is not a key of ConfigMap %s mounted in the container", name, flagValue(args, "--policy"), cm.Name)
	}
	dataDir := flagValue(args, "--data-dir")
	for _, vm := range c.VolumeMounts {
		if vm.MountPath == dataDir && !vm.ReadOnly {
			return
		}
	}
	t.Errorf("deployment %s: --data-dir %q is not a writable volume mount", name, dataDir)
}
