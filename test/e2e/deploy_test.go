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
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/strategyops/strategy-operator/internal/testenv"
)

const (
	operatorNamespace = "strategy-operator-system"
	managerDeployment = "deployment/strategy-operator-controller-manager"
	// managerLease is the manager's leader election Lease.
	managerLease = "strategy-operator.strategyops.dev"
	// acquiredLease is what controller-runtime's leader election logs on winning.
	acquiredLease = "Successfully acquired lease"
)

// managerPods are the manager's pods by name, with their containers' process ids.
func managerPods(ctx SpecContext) map[string]int {
	out := kubectl(ctx, "get", "pods", "-n", operatorNamespace, "-l", "control-plane=controller-manager", "-o",
		`jsonpath={range .items[*]}{.metadata.name}={.status.containerStatuses[0].containerID}{"\n"}{end}`)
	pods := map[string]int{}
	for line := range strings.Lines(out) {
		name, id, _ := strings.Cut(strings.TrimSpace(line), "=")
		pid, err := strconv.Atoi(strings.TrimPrefix(id, "process://"))
		if err == nil {
			pods[name] = pid
		}
	}
	return pods
}

// leaders are the manager pods whose log says they won the leader election.
func leaders(pods map[string]int) []string {
	var out []string
	for name := range pods {
		data, _ := os.ReadFile(kubelet.LogPath(operatorNamespace, name))
		if strings.Contains(string(data), acquiredLease) {
			out = append(out, name)
		}
	}
	return out
}

var _ = Describe("The operator installed with make deploy", Ordered, func() {
	It("runs the manager from its image as its own ServiceAccount, with no other credentials", func(ctx SpecContext) {
		pods := managerPods(ctx)
		Expect(pods).To(HaveLen(1))
		for name, pid := range pods {
			Expect(kubectl(ctx, "get", "pod", name, "-n", operatorNamespace, "-o", "jsonpath={.spec.serviceAccountName}")).
				To(Equal("strategy-operator-controller-manager"))
			exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
			Expect(err).NotTo(HaveOccurred())
			Expect(exe).To(HaveSuffix("/manager"))
			Expect(exe).To(ContainSubstring(filepath.Join("kubelet", "images")))
			environ, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
			Expect(err).NotTo(HaveOccurred())
			Expect(string(environ)).To(ContainSubstring("KUBECONFIG=" + kubelet.Kubeconfig(operatorNamespace, name)))
			Expect(string(environ)).NotTo(ContainSubstring(cluster.Kubeconfig),
				"the administrator's kubeconfig reached the manager")
			Expect(kubectl(ctx, "get", "pod", name, "-n", operatorNamespace, "-o",
				`jsonpath={.spec.containers[0].args}`)).To(And(ContainSubstring("--runner-image=strategy-runner:dev"),
				ContainSubstring("--allowed-images="+allowedImages)))
		}
	})

	It("installs every role the docs name, under the name they give", func(ctx SpecContext) {
		named := regexp.MustCompile("`([a-z0-9-]+-role)`")
		docs, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "docs", "*.md"))
		Expect(err).NotTo(HaveOccurred())
		roles := map[string]bool{}
		for _, f := range append(docs, filepath.Join(testenv.RepoRoot(), "README.md")) {
			data, err := os.ReadFile(f)
			Expect(err).NotTo(HaveOccurred())
			for _, m := range named.FindAllStringSubmatch(string(data), -1) {
				roles[m[1]] = true
			}
		}
		Expect(roles).To(HaveKey("strategy-operator-strategy-editor-role"), "the role a Strategy author is bound to")
		for role := range roles {
			_, err := cluster.Kubectl(ctx, "get", "clusterrole", role)
			Expect(err).NotTo(HaveOccurred(), "the docs name ClusterRole %s, which make deploy does not install", role)
		}
	})

	It("hands over to the second replica within the lease time when the leader dies; no strategy restarts",
		func(ctx SpecContext) {
			ns := "failover"
			kubectl(ctx, "create", "namespace", ns)
			DeferCleanup(func(ctx SpecContext) { _, _ = cluster.Kubectl(ctx, "delete", "namespace", ns, "--wait=false") })

			By("two replicas, one of them the leader")
			kubectl(ctx, "scale", "-n", operatorNamespace, managerDeployment, "--replicas=2")
			DeferCleanup(func(ctx SpecContext) {
				_, _ = cluster.Kubectl(ctx, "scale", "-n", operatorNamespace, managerDeployment, "--replicas=1")
			})
			kubectl(ctx, "rollout", "status", "-n", operatorNamespace, managerDeployment, "--timeout=120s")
			var pods map[string]int
			Eventually(func(g Gomega) {
				pods = managerPods(ctx)
				g.Expect(pods).To(HaveLen(2))
				g.Expect(leaders(pods)).To(HaveLen(1))
			}, 60*time.Second, 500*time.Millisecond).Should(Succeed())
			leader := leaders(pods)[0]

			By("a strategy trading under the leader")
			applyStrategy(ctx, ns, "steady", "StrategyState", "Delete", []string{"LTCUSDT"})
			waitRunning(ctx, ns, "steady")
			runnerUID := kubectl(ctx, "get", "pod", "steady-runner", "-n", ns, "-o", "jsonpath={.metadata.uid}")

			By("SIGKILL to the leader's process: another process takes the Lease")
			holder := func() string {
				out, _ := cluster.Kubectl(ctx, "get", "lease", managerLease, "-n", operatorNamespace, "-o",
					"jsonpath={.spec.holderIdentity}")
				return out
			}
			before := holder()
			Expect(before).NotTo(BeEmpty())
			killed := time.Now()
			Expect(syscall.Kill(pods[leader], syscall.SIGKILL)).To(Succeed())
			// The standby, or the killed pod's container the kubelet restarted (a process of
			// another identity), whichever tries first once the lease has run out.
			Eventually(holder, 30*time.Second, 200*time.Millisecond).Should(And(Not(BeEmpty()), Not(Equal(before))))
			handOver := time.Since(killed)
			AddReportEntry("manager leader hand-over", handOver.String())
			GinkgoWriter.Printf("manager leader hand-over after SIGKILL: %s\n", handOver)
			// controller-runtime's defaults: a 15 s lease, renewed and tried every 2 s; the
			// standby counts the lease from when it last saw it change.
			Expect(handOver).To(BeNumerically("<", 15*time.Second+2*2*time.Second+3*time.Second))

			By("the new leader reconciles: a new strategy gets its runner; the old one kept its pod")
			applyStrategy(ctx, ns, "after", "StrategyState", "Delete", []string{"DOTUSDT"})
			waitRunning(ctx, ns, "after")
			Expect(kubectl(ctx, "get", "pod", "steady-runner", "-n", ns, "-o", "jsonpath={.metadata.uid}")).To(Equal(runnerUID))
			Expect(kubectl(ctx, "get", "pod", "steady-runner", "-n", ns, "-o",
				"jsonpath={.status.containerStatuses[0].restartCount}")).To(Equal("0"))
			Expect(strings.Fields(kubectl(ctx, "get", "pods", "-n", ns, "-o", "jsonpath={.items[*].metadata.name}"))).
				To(ConsistOf("steady-runner", "after-runner"), "one runner per strategy")
		})
})
