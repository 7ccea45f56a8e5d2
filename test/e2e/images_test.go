//go:build e2e

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

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/strategyops/strategy-operator/internal/controller"
	"github.com/strategyops/strategy-operator/internal/localcluster"
)

var _ = Describe("Images", func() {
	It("runs a pod's image pulled from the registry, and says so when the image cannot be pulled", func(ctx SpecContext) {
		ns := "images"
		kubectl(ctx, "create", "namespace", ns)
		DeferCleanup(func(ctx SpecContext) { _, _ = cluster.Kubectl(ctx, "delete", "namespace", ns, "--wait=false") })

		By("a Strategy whose image the registry does not have")
		strategy := func(image string) string {
			return fmt.Sprintf(`apiVersion: trading.strategyops.dev/v1alpha1
kind: Strategy
metadata: {name: pulled}
spec:
  exchangeName: simulated
  symbols: [XRPUSDT]
  image: %s
  args: [--strategy=indicator, --speed=60]
  persistence: {backend: StrategyState}
  retention: Delete
`, image)
		}
		apply := func(manifest string) {
			cmd := cluster.KubectlCommand(ctx, "apply", "-n", ns, "-f", "-")
			cmd.Stdin = strings.NewReader(manifest)
			out, err := cmd.CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), string(out))
		}
		By("an image outside the install's --allowed-images gets no pod, and the Strategy says why")
		apply(strategy("registry.example.com/someone/miner:latest"))
		Eventually(func() string {
			out, _ := cluster.Kubectl(ctx, "get", "strategy", "pulled", "-n", ns, "-o",
				`jsonpath={.status.conditions[?(@.type=="Ready")].reason}|{.status.conditions[?(@.type=="Ready")].message}`)
			return out
		}, 60*time.Second, 500*time.Millisecond).Should(And(HavePrefix(controller.ReasonImageNotAllowed+"|"),
			ContainSubstring("registry.example.com/someone/miner:latest"), ContainSubstring(localcluster.RunnerImage+":*")))
		_, err := cluster.Kubectl(ctx, "get", "pod", "pulled-runner", "-n", ns)
		Expect(err).To(HaveOccurred(), "no pod for an image the install does not allow")

		By("an allowed image the registry does not have")
		apply(strategy("strategy-runner:no-such-tag"))
		Eventually(func(g Gomega) {
			out, err := cluster.Kubectl(ctx, "get", "pod", "pulled-runner", "-n", ns, "-o",
				"jsonpath={.status.phase}|{.status.containerStatuses[0].state.waiting.reason}|"+
					"{.status.containerStatuses[0].state.waiting.message}")
			g.Expect(err).NotTo(HaveOccurred())
			f := strings.SplitN(out, "|", 3)
			g.Expect(f).To(HaveLen(3), "kubectl printed %q", out)
			g.Expect(f[0]).To(Equal("Pending"))
			g.Expect(f[1]).To(BeElementOf("ErrImagePull", "ImagePullBackOff"))
			g.Expect(f[2]).To(ContainSubstring("strategy-runner:no-such-tag"))
		}, 60*time.Second, 500*time.Millisecond).Should(Succeed())
		Eventually(func() string {
			out, _ := cluster.Kubectl(ctx, "get", "strategy", "pulled", "-n", ns, "-o",
				`jsonpath={.status.conditions[?(@.type=="Ready")].reason}|{.status.conditions[?(@.type=="Ready")].message}`)
			return out
		}, 60*time.Second, 500*time.Millisecond).Should(And(HavePrefix(controller.ReasonImagePullFailed+"|"),
			ContainSubstring("strategy-runner:no-such-tag")))

		By("the image fixed, the pod runs the image's runner binary, unpacked from its layers")
		apply(strategy(localcluster.RunnerImage + ":dev"))
		pid := waitRunning(ctx, ns, "pulled")
		exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
		Expect(err).NotTo(HaveOccurred())
		Expect(exe).To(HaveSuffix(filepath.Join("usr", "local", "bin", "runner")))
		Expect(exe).To(ContainSubstring(filepath.Join("kubelet", "images")), "the runner is the image's, not bin/runner")
		imageID := kubectl(ctx, "get", "pod", "pulled-runner", "-n", ns, "-o",
			"jsonpath={.status.containerStatuses[0].imageID}")
		Expect(imageID).To(HavePrefix("sha256:"))
		Expect(exe).To(ContainSubstring(strings.TrimPrefix(imageID, "sha256:")),
			"the process runs the digest the status names")

		By("the pod is as the operator made it: probes, resources, a restricted securityContext")
		var pod corev1.Pod
		podJSON := kubectl(ctx, "get", "pod", "pulled-runner", "-n", ns, "-o", "json")
		Expect(json.Unmarshal([]byte(podJSON), &pod)).To(Succeed())
		c := pod.Spec.Containers[0]
		Expect(c.LivenessProbe).NotTo(BeNil())
		Expect(c.LivenessProbe.HTTPGet.Path).To(Equal("/healthz"))
		Expect(c.ReadinessProbe).NotTo(BeNil())
		Expect(c.ReadinessProbe.HTTPGet.Path).To(Equal("/readyz"))
		Expect(c.Resources.Requests).To(HaveKey(corev1.ResourceCPU))
		Expect(c.Resources.Requests).To(HaveKey(corev1.ResourceMemory))
		Expect(c.Resources.Limits).To(HaveKey(corev1.ResourceMemory))
		Expect(pod.Spec.SecurityContext.RunAsNonRoot).To(HaveValue(BeTrue()))
		Expect(pod.Spec.SecurityContext.SeccompProfile.Type).To(Equal(corev1.SeccompProfileTypeRuntimeDefault))
		Expect(c.SecurityContext.ReadOnlyRootFilesystem).To(HaveValue(BeTrue()))
		Expect(c.SecurityContext.AllowPrivilegeEscalation).To(HaveValue(BeFalse()))
		Expect(c.SecurityContext.Capabilities.Drop).To(ContainElement(corev1.Capability("ALL")))

		By("its endpoints on the pod IP: alive, ready under the Lease, and metrics that say it trades")
		get := func(g Gomega, port int32, path string) string {
			resp, err := http.Get(fmt.Sprintf("http://%s:%d%s", pod.Status.PodIP, port, path))
			g.Expect(err).NotTo(HaveOccurred())
			defer func() { _ = resp.Body.Close() }()
			body, err := io.ReadAll(resp.Body)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%s: %s", path, body)
			return string(body)
		}
		Expect(pod.Status.PodIP).NotTo(Equal("127.0.0.1"), "each pod has an address of its own")
		Eventually(func(g Gomega) {
			get(g, controller.HealthPort, "/healthz")
			get(g, controller.HealthPort, "/readyz")
			metrics := get(g, controller.MetricsPort, "/metrics")
			g.Expect(metrics).To(MatchRegexp(`(?m)^strategyops_runner_seconds_since_last_candle\{[^}]*symbol="XRPUSDT"[^}]*\} `))
			g.Expect(metrics).To(MatchRegexp(`(?m)^strategyops_runner_fencing_token\{[^}]*\} [1-9]`))
		}, 60*time.Second, time.Second).Should(Succeed())
	})
})
