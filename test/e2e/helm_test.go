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
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/strategyops/strategy-operator/internal/localcluster"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

var _ = Describe("The operator installed with Helm", func() {
	It("installs, upgrades with a changed value and uninstalls; Retain state survives both", func(ctx SpecContext) {
		root := testenv.RepoRoot()
		helmBin := os.Getenv("HELM")
		Expect(helmBin).NotTo(BeEmpty(), "HELM must name the helm binary (make test-e2e builds it)")
		dir := GinkgoT().TempDir()

		By("a cluster of its own, its kubelet pulling from the same registry")
		c, err := localcluster.Start(testenv.BinaryDir(), dir)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(c.Stop)
		kubeletCtx, stop := context.WithCancel(context.Background())
		log, err := os.Create(filepath.Join(dir, "kubelet.log"))
		Expect(err).NotTo(HaveOccurred())
		_, done, err := c.StartKubelet(kubeletCtx, registry.Host, slog.New(slog.NewTextHandler(log, nil)))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() error { stop(); return <-done })

		helm := func(args ...string) {
			cmd := exec.CommandContext(ctx, helmBin, args...)
			cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig, "HELM_CACHE_HOME="+filepath.Join(dir, "helm-cache"),
				"HELM_CONFIG_HOME="+filepath.Join(dir, "helm-config"), "HELM_DATA_HOME="+filepath.Join(dir, "helm-data"))
			out, err := cmd.CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), "helm %s: %s", strings.Join(args, " "), out)
		}
		kc := func(args ...string) string {
			out, err := c.Kubectl(ctx, args...)
			Expect(err).NotTo(HaveOccurred())
			return out
		}
		chart := filepath.Join(root, "dist", "chart")
		release := []string{"strategy-operator", chart, "-n", operatorNamespace}

		By("helm lint finds nothing wrong with the chart")
		helm("lint", "--strict", chart)

		By("helm install")
		helm(append([]string{"install"}, append(release, "--create-namespace",
			"--set", "manager.image.tag=dev", "--set", "runner.image.tag=dev")...)...)
		kc("rollout", "status", "-n", operatorNamespace, managerDeployment, "--timeout=120s")
		Expect(kc("get", "-n", operatorNamespace, managerDeployment, "-o",
			"jsonpath={.spec.template.spec.serviceAccountName} {.spec.template.spec.containers[0].image}")).
			To(Equal("strategy-operator-controller-manager strategy-operator:dev"))

		By("a strategy with retention Retain trades")
		ns := "helm"
		kc("create", "namespace", ns)
		cmd := c.KubectlCommand(ctx, "apply", "-n", ns, "-f", "-")
		cmd.Stdin = strings.NewReader(`apiVersion: trading.strategyops.dev/v1alpha1
kind: Strategy
metadata: {name: kept}
spec:
  exchangeName: simulated
  symbols: [BNBUSDT]
  args: [--strategy=indicator, --speed=600, --option=fast=2, --option=slow=3]
  persistence: {backend: StrategyState}
  retention: Retain
---
apiVersion: trading.strategyops.dev/v1alpha1
kind: Strategy
metadata: {name: dropped}
spec:
  exchangeName: simulated
  symbols: [BNBUSDT]
  args: [--strategy=indicator, --speed=60]
  persistence: {backend: StrategyState}
  retention: Delete
`)
		out, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		state := "strategystate/" + stateName("kept", "BNBUSDT")
		var signal string
		Eventually(func() string {
			signal, _ = c.Kubectl(ctx, "get", "-n", ns, state, "-o", "jsonpath={.spec.signal.id}")
			return signal
		}, 3*time.Minute, time.Second).ShouldNot(BeEmpty(), "the runner opened no signal")
		dropped := "strategystate/" + stateName("dropped", "BNBUSDT")
		getDropped := func() error {
			_, err := c.Kubectl(ctx, "get", "-n", ns, dropped)
			return err
		}
		Eventually(getDropped, 60*time.Second, time.Second).Should(Succeed())
		runnerUID := kc("get", "pod", "kept-runner", "-n", ns, "-o", "jsonpath={.metadata.uid}")
		stateUID := kc("get", "-n", ns, state, "-o", "jsonpath={.metadata.uid}")

		args := func() string {
			return kc("get", "-n", operatorNamespace, managerDeployment, "-o",
				"jsonpath={.spec.template.spec.containers[0].args}")
		}
		Expect(args()).NotTo(ContainSubstring("--allowed-images"), "by default, the runner image only")

		By("helm upgrade with two replicas and more images allowed: the runner keeps running")
		helm(append([]string{"upgrade"}, append(release, "--reuse-values", "--set", "manager.replicas=2",
			"--set", "runner.allowedImages={registry.example.com/bots/*,registry.example.com/strategies/*}")...)...)
		Expect(kc("get", "-n", operatorNamespace, managerDeployment, "-o", "jsonpath={.spec.replicas}")).To(Equal("2"))
		Expect(args()).To(ContainSubstring("--allowed-images=registry.example.com/bots/*,registry.example.com/strategies/*"))
		kc("rollout", "status", "-n", operatorNamespace, managerDeployment, "--timeout=120s")
		Expect(kc("get", "pod", "kept-runner", "-n", ns, "-o", "jsonpath={.metadata.uid}")).To(Equal(runnerUID))

		By("both strategies deleted under the upgraded operator: Retain keeps its state, Delete does not")
		kc("delete", "strategy", "kept", "dropped", "-n", ns, "--timeout=120s")
		Eventually(getDropped, 60*time.Second, time.Second).Should(MatchError(ContainSubstring("NotFound")),
			"the Delete strategy's state stayed")
		Expect(kc("get", "-n", ns, state, "-o", "jsonpath={.metadata.uid}")).To(Equal(stateUID))

		By("helm uninstall: the manager goes, the CRDs and the Retain state stay")
		helm("uninstall", "strategy-operator", "-n", operatorNamespace, "--wait")
		Eventually(func() string {
			out, _ := c.Kubectl(ctx, "get", "pods", "-n", operatorNamespace, "-o", "name")
			return out
		}, 60*time.Second, time.Second).Should(BeEmpty())
		_, err = c.Kubectl(ctx, "get", "-n", operatorNamespace, managerDeployment)
		Expect(err).To(MatchError(ContainSubstring("NotFound")))
		kc("get", "crd", "strategies.trading.strategyops.dev", "strategystates.trading.strategyops.dev")
		Expect(kc("get", "-n", ns, state, "-o", "jsonpath={.metadata.uid} {.spec.strategyName}")).
			To(Equal(stateUID+" kept"), "the state object was replaced or emptied")
	})
})
