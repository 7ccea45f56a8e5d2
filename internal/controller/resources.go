/*
Copyright 2026 The strategy-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/strategyops/strategy-operator/internal/names"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/cachestore"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
)

// rwVerbs are all a runner may do to its own objects.
var rwVerbs = []string{"get", "update"}

// Labels and annotations the operator sets.
const (
	// LabelStrategyObject names the Strategy object that owns a runner's objects.
	LabelStrategyObject = "trading.strategyops.dev/strategy-object"
	// AnnotationTemplateHash records which spec a pod was made from.
	AnnotationTemplateHash = "trading.strategyops.dev/template-hash"

	// DataDir is where the runner keeps File state (the PVC's mount point).
	DataDir = "/var/lib/strategy"
	// ContainerName is the runner container's name.
	ContainerName = "runner"
)

// What the runner's pod serves, and how the kubelet probes it: the runner binds to the pod's
// own IP (env PodIPEnv), which a kubelet running every pod on one host (internal/podprocess)
// keeps apart from the other pods'.
const (
	// PodIPEnv holds the pod's IP (fieldRef status.podIP); the runner's bind addresses use it.
	PodIPEnv = "POD_IP"
	// MetricsPortName serves /metrics on MetricsPort; HealthPortName /healthz and /readyz
	// on HealthPort.
	MetricsPortName = "metrics"
	MetricsPort     = 8080
	HealthPortName  = "health"
	HealthPort      = 8081
	// RunnerFSGroup owns the File backend's volume: the group of the runner image's
	// non-root user (ociimage.NonRootUID), and a supplemental group of any user of an image
	// of the user's, so that either can write the state.
	RunnerFSGroup int64 = 65532
)

// The runner's resources when the Strategy names none (spec.resources): a runner is one
// small Go process, or one under runner exec with a process of the user's beside it.
var (
	DefaultRunnerCPURequest    = resource.MustParse("100m")
	DefaultRunnerMemoryRequest = resource.MustParse("128Mi")
	DefaultRunnerMemoryLimit   = resource.MustParse("512Mi")
)

// runnerResources are the resources of the Strategy's runner: spec.resources as given,
// or the defaults.
func runnerResources(s *v1.Strategy) corev1.ResourceRequirements {
	if s.Spec.Resources != nil {
		return *s.Spec.Resources.DeepCopy()
	}
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: DefaultRunnerCPURequest,
			corev1.ResourceMemory: DefaultRunnerMemoryRequest},
		Limits: corev1.ResourceList{corev1.ResourceMemory: DefaultRunnerMemoryLimit},
	}
}

// runnerProbes are the runner container's liveness and readiness probes. /healthz answers
// from the runner's first moment, through its restore and while it waits for the Lease
// (a standby runner is alive): liveness restarts only a runner that stopped answering for
// a minute. /readyz answers once it trades under the Lease.
func runnerProbes() (liveness, readiness *corev1.Probe) {
	get := func(urlPath string) corev1.ProbeHandler {
		return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: urlPath,
			Port: intstr.FromString(HealthPortName), Scheme: corev1.URISchemeHTTP}}
	}
	liveness = &corev1.Probe{ProbeHandler: get("/healthz"), InitialDelaySeconds: 5, PeriodSeconds: 10,
		TimeoutSeconds: 5, FailureThreshold: 6, SuccessThreshold: 1}
	readiness = &corev1.Probe{ProbeHandler: get("/readyz"), PeriodSeconds: 5, TimeoutSeconds: 3,
		FailureThreshold: 2, SuccessThreshold: 1}
	return liveness, readiness
}

// RunnerName names the pod, ServiceAccount, Role and RoleBinding of a strategy.
func RunnerName(s *v1.Strategy) string { return names.DerivedName(s.Name, "runner") }

// DataClaimName names the PersistentVolumeClaim of a strategy on the File backend.
func DataClaimName(s *v1.Strategy) string { return names.DerivedName(s.Name, "data") }

func strategyKey(s *v1.Strategy, symbol string) domain.Key {
	return domain.StrategyKey(symbol, s.EffectiveStrategyName(), s.Spec.ExchangeName)
}

// commonLabels are the labels of a Strategy object's runner objects: its identity's, and
// its own name.
func commonLabels(s *v1.Strategy) map[string]string {
	l := identityLabels(s)
	l["app.kubernetes.io/name"] = "strategy-runner"
	l[LabelStrategyObject] = names.LabelValue(s.Name)
	return l
}

func objectMeta(s *v1.Strategy, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: s.Namespace, Labels: commonLabels(s)}
}

// strategyContexts are the store contexts the runner of s writes (domain.StrategyContexts).
func strategyContexts(s *v1.Strategy) []domain.Context {
	return domain.StrategyContexts(s.EffectiveStrategyName(), s.Spec.ExchangeName, s.Spec.Symbols,
		s.EffectiveRiskProfiles()...)
}

// storeObjects are the objects the runner of s keeps its stores in on backend b.
func storeObjects(s *v1.Strategy, b v1.PersistenceBackend) []domain.StoreObject {
	return domain.StoreObjects(b, s.EffectiveStrategyName(), s.Spec.ExchangeName, s.Spec.Symbols,
		s.EffectiveRiskProfiles()...)
}

func objectNames(s *v1.Strategy, b v1.PersistenceBackend, kind string) []string {
	var out []string
	for _, o := range storeObjects(s, b) {
		if o.Kind == kind {
			out = append(out, o.Name)
		}
	}
	return out
}

// configMapNames are the ConfigMaps the runner of s uses on backend b.
func configMapNames(s *v1.Strategy, b v1.PersistenceBackend) []string {
	return objectNames(s, b, domain.KindConfigMap)
}

// stateNames are the StrategyStates the runner of s uses on backend b.
func stateNames(s *v1.Strategy, b v1.PersistenceBackend) []string {
	return objectNames(s, b, domain.KindStrategyState)
}

// anyStateNames are the StrategyStates the runner of s would use on any backend.
func anyStateNames(s *v1.Strategy) []string {
	var out []string
	for _, b := range domain.Backends(domain.InObjects) {
		for _, n := range stateNames(s, b) {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

// desiredRole grants the runner exactly its own objects: get and update of the store
// objects the operator made for it, and of its Lease, and creating events. It cannot list,
// create or delete anything else, nor read another strategy's state.
func desiredRole(s *v1.Strategy, b v1.PersistenceBackend) *rbacv1.Role {
	rules := []rbacv1.PolicyRule{{
		APIGroups: []string{coordinationv1.GroupName}, Resources: []string{"leases"},
		ResourceNames: []string{LeaseName(s)}, Verbs: rwVerbs,
	}}
	if cms := configMapNames(s, b); len(cms) > 0 {
		rules = append(rules, rbacv1.PolicyRule{
			APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: cms, Verbs: rwVerbs,
		})
	}
	if domain.HomeOf(b) == domain.InObjects || domain.HomeOf(b) == domain.InDatabase {
		rules = append(rules, rbacv1.PolicyRule{
			// The runner tells of hand edits of its state in Warning events on the Strategy.
			APIGroups: []string{eventsv1.GroupName}, Resources: []string{"events"}, Verbs: []string{"create"},
		})
	}
	if states := stateNames(s, b); len(states) > 0 {
		rules = append(rules, rbacv1.PolicyRule{
			APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"strategystates"},
			ResourceNames: states, Verbs: rwVerbs,
		})
	}
	return &rbacv1.Role{ObjectMeta: objectMeta(s, RunnerName(s)), Rules: rules}
}

func desiredRoleBinding(s *v1.Strategy) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: objectMeta(s, RunnerName(s)),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: RunnerName(s)},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: RunnerName(s), Namespace: s.Namespace}},
	}
}

func desiredServiceAccount(s *v1.Strategy) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: objectMeta(s, RunnerName(s))}
}

func desiredClaim(s *v1.Strategy) *corev1.PersistentVolumeClaim {
	size := resource.MustParse("1Gi")
	var class *string
	if f := s.Spec.Persistence.File; f != nil {
		if f.Size != nil {
			size = *f.Size
		}
		class = f.StorageClassName
	}
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: objectMeta(s, DataClaimName(s)),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: class,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
		},
	}
}

// RunnerPath is where an image that runs a process of the user's (spec.command) holds the
// runner.
const RunnerPath = names.RunnerPath

// runnerArgs are the runner's command-line flags for s on backend b. spec.args come last
// (for example --strategy=indicator, the built-in strategy logic to run); the runner is
// to refuse a flag given twice, so that they cannot override these.
func runnerArgs(s *v1.Strategy, b v1.PersistenceBackend, draining []string) []string {
	args := make([]string, 0, 12+len(s.Spec.Args))
	trading := slices.DeleteFunc(slices.Clone(s.Spec.Symbols), func(sym string) bool { return slices.Contains(draining, sym) })
	args = append(args,
		"--strategy-name="+s.EffectiveStrategyName(),
		"--exchange="+s.Spec.ExchangeName,
		"--symbols="+strings.Join(trading, ","),
		"--backend="+string(b),
		"--namespace="+s.Namespace,
		"--lease="+LeaseName(s),
		"--strategy-object="+s.Name,
		"--data-dir="+DataDir,
		"--termination-message-path="+corev1.TerminationMessagePathDefault,
		fmt.Sprintf("--metrics-bind-address=[$(%s)]:%d", PodIPEnv, MetricsPort),
		fmt.Sprintf("--health-probe-bind-address=[$(%s)]:%d", PodIPEnv, HealthPort),
	)
	if q := s.EffectiveQuietAfter(); q != v1.DefaultQuietAfter { // the runner's default: no new pod template
		args = append(args, "--quiet-after="+q.String())
	}
	if len(draining) > 0 {
		args = append(args, "--drain="+strings.Join(draining, ","))
	}
	if len(s.Spec.RiskProfiles) > 0 { // the runner's default otherwise: no new pod template
		args = append(args, "--risk-profiles="+strings.Join(s.Spec.RiskProfiles, ","))
	}
	switch domain.HomeOf(b) {
	case domain.InDatabase:
		args = append(args, layerArgs(s.Spec.Persistence)...)
	case domain.OnVolume:
		args = append(args, historyArgs(s)...) // the operator cannot reach this ledger: the runner bounds it
	}
	return append(args, s.Spec.Args...)
}

// historyArgs are the runner's flags for spec.history, for a ledger only the runner reaches.
func historyArgs(s *v1.Strategy) []string {
	r := retention(s)
	args := []string{fmt.Sprintf("--history-live-entries=%d", s.EffectiveLiveEntries()),
		fmt.Sprintf("--history-archived-entries=%d", r.Entries)}
	if r.MaxAge > 0 {
		args = append(args, "--history-max-age="+r.MaxAge.String())
	}
	return args
}

// layerArgs are the runner's flags for the cache and the replicas of p (their URLs come in
// the environment: replicaEnv).
func layerArgs(p v1.PersistenceSpec) []string {
	var args []string
	if c := p.Cache; c != nil {
		entries := int32(cachestore.DefaultMaxEntries)
		if c.MaxEntries != nil {
			entries = *c.MaxEntries
		}
		args = append(args, "--cache-max-entries="+strconv.Itoa(int(entries)))
		if c.MaxBytes != nil {
			args = append(args, "--cache-max-bytes="+strconv.FormatInt(c.MaxBytes.Value(), 10))
		}
	}
	if len(p.Replicas) > 0 {
		specs := make([]string, 0, len(p.Replicas))
		for _, rep := range p.Replicas {
			spec := rep.Name + ":" + string(rep.Backend)
			if rep.QueueSize != nil {
				spec += ":" + strconv.Itoa(int(*rep.QueueSize))
			}
			specs = append(specs, spec)
		}
		args = append(args, "--replicas="+strings.Join(specs, ","))
	}
	return args
}

// secretEnv is an environment variable set from a Secret's key.
func secretEnv(name string, ref v1.SecretKeyRef) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: ref.Name}, Key: ref.Key}}}
}

// desiredPod is the strategy's single pod. Its name is fixed, so the API server itself
// refuses a second one while the first exists.
func desiredPod(s *v1.Strategy, at place, defaultImage string, draining []string) *corev1.Pod {
	b := at.backend
	image := s.Spec.Image
	if image == "" {
		image = defaultImage
	}
	env := []corev1.EnvVar{
		// First: the runner's arguments, and any variable after it, may use $(POD_IP).
		{Name: PodIPEnv, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
		// The runner records it with what it trades (package handshake).
		{Name: "POD_UID", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.uid"}}},
	}
	if at.db != nil {
		// The database URLs come from their Secrets, never in the pod's spec or arguments.
		env = append(env, secretEnv(domain.StoreURLEnv, *at.db))
		for _, rep := range s.Spec.Persistence.Replicas {
			env = append(env, secretEnv(domain.ReplicaURLEnv(rep.Name), rep.URLSecretRef))
		}
	}
	env = append(env, s.Spec.Env...)
	liveness, readiness := runnerProbes()
	container := corev1.Container{
		Name: ContainerName, Image: image, Args: runnerArgs(s, b, draining), Env: env,
		Ports: []corev1.ContainerPort{
			{Name: MetricsPortName, ContainerPort: MetricsPort, Protocol: corev1.ProtocolTCP},
			{Name: HealthPortName, ContainerPort: HealthPort, Protocol: corev1.ProtocolTCP},
		},
		LivenessProbe:  liveness,
		ReadinessProbe: readiness,
		Resources:      runnerResources(s),
		// The runner writes why it stopped there; a crash before it could leaves the log's tail.
		TerminationMessagePath:   corev1.TerminationMessagePathDefault,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: new(false),
			ReadOnlyRootFilesystem:   new(true),
			RunAsNonRoot:             new(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
	if len(s.Spec.Command) > 0 {
		// The user's process, under runner exec: the runner first, in the user's image.
		container.Command = []string{RunnerPath}
		container.Args = append(append(append([]string{"exec"}, container.Args...), "--"), s.Spec.Command...)
	}
	pod := &corev1.Pod{
		ObjectMeta: objectMeta(s, RunnerName(s)),
		Spec: corev1.PodSpec{
			ServiceAccountName:            RunnerName(s),
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: ptr.To[int64](30),
			Containers:                    []corev1.Container{container},
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   new(true),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
		},
	}
	if domain.HomeOf(b) == domain.OnVolume {
		// The state's volume is the group's to write, for whichever non-root user runs; its
		// ownership is changed only when its root's differs, not file by file at every start.
		pod.Spec.SecurityContext.FSGroup = new(RunnerFSGroup)
		pod.Spec.SecurityContext.FSGroupChangePolicy = ptr.To(corev1.FSGroupChangeOnRootMismatch)
		pod.Spec.Volumes = []corev1.Volume{{Name: "state", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: DataClaimName(s)},
		}}}
		pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "state", MountPath: DataDir}}
	}
	if len(s.Spec.Command) > 0 {
		// The root filesystem is read-only: runner exec's socket, and the process's own files,
		// go to a writable /tmp.
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "tmp",
			VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		pod.Spec.Containers[0].VolumeMounts = append(pod.Spec.Containers[0].VolumeMounts,
			corev1.VolumeMount{Name: "tmp", MountPath: "/tmp"})
	}
	pod.Annotations = map[string]string{AnnotationTemplateHash: templateHash(pod)}
	return pod
}

// templateHash fingerprints what the pod was made from, so that a changed spec replaces it.
func templateHash(pod *corev1.Pod) string {
	data, _ := json.Marshal(struct {
		Labels map[string]string
		Spec   corev1.PodSpec
	}{pod.Labels, pod.Spec})
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

func objectKey(s *v1.Strategy, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: s.Namespace, Name: name}
}

// ParseBackends reads a comma-separated list of persistence backends.
func ParseBackends(list string) ([]v1.PersistenceBackend, error) {
	var out []v1.PersistenceBackend
	for _, name := range splitList(list) {
		b := v1.PersistenceBackend(name)
		if _, err := domain.Lookup(b); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no backend enabled")
	}
	return out, nil
}

// ParseNamespaces reads a comma-separated list of namespaces to watch (empty: all).
func ParseNamespaces(list string) ([]string, error) {
	out := splitList(list)
	for _, ns := range out {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return nil, fmt.Errorf("namespace %q: %s", ns, strings.Join(errs, "; "))
		}
	}
	return out, nil
}

// ParseImagePatterns reads a comma-separated list of image patterns (path.Match syntax).
func ParseImagePatterns(list string) ([]string, error) {
	out := splitList(list)
	for _, p := range out {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("image pattern %q: %w", p, err)
		}
	}
	return out, nil
}

// splitList reads a comma-separated flag value: items trimmed, empty ones dropped.
func splitList(list string) []string {
	var out []string
	for item := range strings.SplitSeq(list, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
