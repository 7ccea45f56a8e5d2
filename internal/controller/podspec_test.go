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

package controller_test

import (
	"context"
	"fmt"
	"io"
	"slices"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/controller"
	"github.com/strategyops/strategy-operator/internal/ociimage"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/runner"
	"github.com/strategyops/strategy-operator/pkg/stateapi"
)

// The runner pod as the API server stores it: its probes, ports, resources and security
// context, written out here rather than taken from the controller's constants.
var _ = Describe("Runner pod spec", func() {
	var ctx context.Context
	var ns string
	BeforeEach(func() {
		ctx = context.Background()
		ns = newNamespace(ctx)
	})

	created := func(s *v1.Strategy) corev1.Pod {
		GinkgoHelper()
		Expect(direct.Create(ctx, s)).To(Succeed())
		pod := runnerPod(s)
		Eventually(func() error { return get(ctx, pod) }, timeout).Should(Succeed())
		Expect(pod.Spec.Containers).To(HaveLen(1))
		return *pod
	}
	httpGet := func(path string) corev1.ProbeHandler {
		return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("health"),
			Scheme: corev1.URISchemeHTTP}}
	}
	// observable checks what every runner pod carries, whatever its backend.
	observable := func(pod corev1.Pod) {
		GinkgoHelper()
		c := pod.Spec.Containers[0]
		Expect(c.Env[0]).To(Equal(corev1.EnvVar{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.podIP"}}}),
			"POD_IP comes first: the arguments, and any variable after it, may use $(POD_IP)")
		Expect(c.Args).To(ContainElements("--metrics-bind-address=[$(POD_IP)]:8080",
			"--health-probe-bind-address=[$(POD_IP)]:8081"))
		Expect(c.Ports).To(Equal([]corev1.ContainerPort{
			{Name: "metrics", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
			{Name: "health", ContainerPort: 8081, Protocol: corev1.ProtocolTCP},
		}))
		Expect(c.LivenessProbe).To(Equal(&corev1.Probe{ProbeHandler: httpGet("/healthz"), InitialDelaySeconds: 5,
			PeriodSeconds: 10, TimeoutSeconds: 5, FailureThreshold: 6, SuccessThreshold: 1}),
			"a minute without an answer, not a slow restore or a standby runner, restarts it")
		Expect(c.ReadinessProbe).To(Equal(&corev1.Probe{ProbeHandler: httpGet("/readyz"), PeriodSeconds: 5,
			TimeoutSeconds: 3, FailureThreshold: 2, SuccessThreshold: 1}))
		Expect(c.StartupProbe).To(BeNil())
		Expect(c.SecurityContext).To(Equal(&corev1.SecurityContext{
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			RunAsNonRoot:             new(true),
			ReadOnlyRootFilesystem:   new(true),
			AllowPrivilegeEscalation: new(false),
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		}))
		Expect(pod.Spec.SecurityContext.RunAsNonRoot).To(Equal(new(true)))
		Expect(pod.Spec.SecurityContext.SeccompProfile).To(Equal(
			&corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}))
	}
	// quantities are a resource list as strings.
	quantities := func(l corev1.ResourceList) map[corev1.ResourceName]string {
		out := map[corev1.ResourceName]string{}
		for k, q := range l {
			out[k] = q.String()
		}
		return out
	}

	It("serves metrics and probes, asks for default resources and runs locked down (ConfigMap)", func() {
		pod := created(strategy(ns, "observed", v1.BackendConfigMap, "BTCUSDT"))
		observable(pod)
		c := pod.Spec.Containers[0]
		Expect(quantities(c.Resources.Requests)).To(Equal(map[corev1.ResourceName]string{
			corev1.ResourceCPU: "100m", corev1.ResourceMemory: "128Mi"}))
		Expect(quantities(c.Resources.Limits)).To(Equal(map[corev1.ResourceName]string{
			corev1.ResourceMemory: "512Mi"}))
		Expect(pod.Spec.SecurityContext).To(Equal(&corev1.PodSecurityContext{RunAsNonRoot: new(true),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}),
			"no volume to own: no fsGroup")
		Expect(c.VolumeMounts).To(BeEmpty(), "the runner writes nothing to its filesystem on ConfigMap")
	})

	It("gives the File backend's volume to the runner's group, and takes spec.resources as given", func() {
		s := strategy(ns, "observed-file", v1.BackendFile, "BTCUSDT")
		s.Spec.Resources = &corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"),
				corev1.ResourceMemory: resource.MustParse("64Mi")},
			Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
		}
		pod := created(s)
		observable(pod)
		c := pod.Spec.Containers[0]
		Expect(quantities(c.Resources.Requests)).To(Equal(map[corev1.ResourceName]string{
			corev1.ResourceCPU: "250m", corev1.ResourceMemory: "64Mi"}))
		Expect(quantities(c.Resources.Limits)).To(Equal(map[corev1.ResourceName]string{
			corev1.ResourceMemory: "1Gi"}))
		Expect(pod.Spec.SecurityContext.FSGroup).To(Equal(ptr.To(int64(ociimage.NonRootUID))),
			"the runner image's user's group owns the state")
		Expect(pod.Spec.SecurityContext.FSGroupChangePolicy).To(Equal(ptr.To(corev1.FSGroupChangeOnRootMismatch)))
		Expect(c.VolumeMounts).To(Equal([]corev1.VolumeMount{{Name: "state", MountPath: controller.DataDir}}),
			"the state, the one thing a File runner writes, is on the claim")
		Expect(c.Args).To(ContainElement("--data-dir=" + controller.DataDir))
		Expect(c.Args).To(ContainElements("--history-live-entries=100", "--history-archived-entries=10000"),
			"the operator cannot reach this ledger: the runner bounds it, as spec.history says")
		Expect(pod.Spec.Volumes).To(ContainElement(HaveField("VolumeSource.PersistentVolumeClaim.ClaimName",
			controller.DataClaimName(s))))
	})

	It("serves them under runner exec too, the process's files on a writable /tmp", func() {
		s := strategy(ns, "observed-exec", v1.BackendStrategyState, "BTCUSDT")
		s.Spec.Image = "registry.example.com/bots/node-bot:v1"
		s.Spec.Command = []string{"node", "bot.js"}
		pod := created(s)
		observable(pod)
		c := pod.Spec.Containers[0]
		Expect(c.Args[:slices.Index(c.Args, "--")]).To(ContainElement("--metrics-bind-address=[$(POD_IP)]:8080"),
			"the flags are the runner's, before the user's command")
		Expect(c.VolumeMounts).To(Equal([]corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}}))
		Expect(pod.Spec.Volumes).To(ContainElement(And(HaveField("Name", "tmp"),
			HaveField("VolumeSource.EmptyDir", Not(BeNil())))))
	})

	It("sets the runner's environment, and a Strategy may not set any of it", func() {
		pod := created(strategy(ns, "observed-env", v1.BackendConfigMap, "BTCUSDT"))
		env := pod.Spec.Containers[0].Env
		reserved := make([]string, 0, 6+len(env))
		reserved = append(reserved, domain.StoreURLEnv, domain.ReplicaURLEnv("copy"), "KUBECONFIG",
			"KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", stateapi.SocketEnv)
		for _, e := range env {
			reserved = append(reserved, e.Name) // every variable the operator set
		}
		_, _ = runner.ParseSettings(nil, func(name string) string { // and every one the runner reads
			if !slices.Contains(reserved, name) {
				reserved = append(reserved, name)
			}
			return ""
		}, io.Discard)
		Expect(reserved).To(ContainElements("LEASE_NAME", "SYMBOLS"), "the runner's own defaults")
		for i, name := range reserved {
			s := strategy(ns, fmt.Sprintf("env-%d", i), v1.BackendConfigMap, "BTCUSDT")
			s.Spec.Env = []corev1.EnvVar{{Name: "LOG_FORMAT", Value: "json"}, {Name: name, Value: "elsewhere"}}
			err := direct.Create(ctx, s)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%s: want Invalid, got %v", name, err)
			Expect(err.Error()).To(ContainSubstring("spec.env[1]: Invalid value: " + name +
				" is set for the runner by the operator or the kubelet, or read by the runner"))
		}
		s := strategy(ns, "env-own", v1.BackendConfigMap, "BTCUSDT")
		s.Spec.Env = []corev1.EnvVar{{Name: "LOG_FORMAT", Value: "json"}, {Name: "POD_IPS", Value: "mine"}}
		Expect(direct.Create(ctx, s)).To(Succeed(), "a variable of the Strategy's own")
	})
})
