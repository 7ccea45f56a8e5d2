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
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/persist/strategystatestore"
	"github.com/strategyops/strategy-operator/internal/runner"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

// fastLease lets a restarted runner take over its Lease within seconds of a SIGKILL.
const fastLease = "--lease-duration=4s, --renew-deadline=3s, --retry-period=500ms"

// applyStrategy applies a Strategy on the simulated market running an hour of candles a
// minute, with the indicator strategy's extra options.
func applyStrategy(ctx context.Context, ns, name, backend, retention string, symbols []string, options ...string) {
	args := "--strategy=indicator, --speed=60, " + fastLease
	for _, o := range options {
		args += ", --option=" + o
	}
	cmd := cluster.KubectlCommand(ctx, "apply", "-n", ns, "-f", "-")
	cmd.Stdin = strings.NewReader(fmt.Sprintf(`apiVersion: trading.strategyops.dev/v1alpha1
kind: Strategy
metadata: {name: %s}
spec:
  exchangeName: simulated
  symbols: [%s]
  args: [%s]
  persistence: {backend: %s}
  retention: %s
`, name, strings.Join(symbols, ", "), args, backend, retention))
	out, err := cmd.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), string(out))
}

func kubectl(ctx context.Context, args ...string) string {
	out, err := cluster.Kubectl(ctx, args...)
	Expect(err).NotTo(HaveOccurred())
	return out
}

// waitRunning waits until the strategy's pod is Ready, and not being deleted (a pod the
// operator is replacing can still read Ready), and returns its process id.
func waitRunning(ctx context.Context, ns, strategy string) int {
	pod := "pod/" + strategy + "-runner"
	var pid int
	Eventually(func(g Gomega) {
		out, err := cluster.Kubectl(ctx, "get", "-n", ns, pod, "-o", `jsonpath={.metadata.deletionTimestamp}|`+
			`{.status.conditions[?(@.type=="Ready")].status}|{.status.containerStatuses[0].containerID}`)
		g.Expect(err).NotTo(HaveOccurred())
		fields := strings.Split(out, "|")
		g.Expect(fields).To(HaveLen(3), "kubectl printed %q", out)
		g.Expect(fields[0]).To(BeEmpty(), "the pod is being deleted")
		g.Expect(fields[1]).To(Equal("True"), "the pod is not Ready")
		pid, err = strconv.Atoi(strings.TrimPrefix(fields[2], "process://"))
		g.Expect(err).NotTo(HaveOccurred(), "container id %q", fields[2])
	}, 60*time.Second, 500*time.Millisecond).Should(Succeed())
	return pid
}

func stateName(strategy, symbol string) string {
	return strategystatestore.ObjectName(strategystatestore.Key{StrategyName: strategy, ExchangeName: "simulated",
		Symbol: symbol})
}

// configMapData reads a ConfigMap's data with kubectl.
func configMapData(ctx context.Context, ns, name string) map[string]string {
	var cm struct {
		Data map[string]string `json:"data"`
	}
	Expect(json.Unmarshal([]byte(kubectl(ctx, "get", "configmap", name, "-n", ns, "-o", "json")), &cm)).To(Succeed())
	return cm.Data
}

// ledger reads the strategy's history ConfigMap of symbol with kubectl: every signal's
// entry by id.
func ledger(ctx context.Context, ns, strategy, symbol string) map[string]domain.HistoryEntry {
	name := domain.ConfigMapName(domain.History, domain.StrategyKey(symbol, strategy, "simulated"))
	out := map[string]domain.HistoryEntry{}
	for _, v := range configMapData(ctx, ns, name) {
		var e domain.HistoryEntry
		if json.Unmarshal([]byte(v), &e) == nil && e.ID != "" {
			out[e.ID] = e
		}
	}
	return out
}

func eventKinds(e domain.HistoryEntry) []string {
	kinds := make([]string, 0, len(e.Events))
	for _, ev := range e.Events {
		kinds = append(kinds, ev.Kind)
	}
	return kinds
}

// runnerLog is everything the strategy's runner pods printed, across restarts.
func runnerLog(ns, strategy string) string {
	data, _ := os.ReadFile(kubelet.LogPath(ns, strategy+"-runner"))
	return string(data)
}

// logLines counts the runner's JSON log lines with message msg about signal id.
func logLines(ns, strategy, msg, id string) int {
	n := 0
	for _, f := range testenv.LogRecords(runnerLog(ns, strategy), msg) {
		if f["signal"] == id {
			n++
		}
	}
	return n
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

var _ = Describe("strategies running for real", func() {
	It("restores an open signal after the runner is SIGKILLed, and closes it exactly once", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		symbols := []string{"BTCUSDT", "ETHUSDT", "SOLUSDT"}
		applyStrategy(ctx, ns, "crash", "StrategyState", "Delete", symbols, "take-profit=4", "stop-loss=3",
			"minutes=20") // a signal lasts at most 20 seconds
		pid := waitRunning(ctx, ns, "crash")

		By("waiting for an open signal, then killing the runner with SIGKILL")
		var symbol, id string
		Eventually(func() string {
			for _, sym := range symbols {
				out := kubectl(ctx, "get", "strategystate", stateName("crash", sym), "-n", ns,
					"-o", "jsonpath={.spec.phase} {.spec.signal.id}")
				if phase, sid, _ := strings.Cut(out, " "); phase == "Open" {
					symbol, id = sym, sid
					Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())
					return id
				}
			}
			return ""
		}, 2*time.Minute, 100*time.Millisecond).ShouldNot(BeEmpty())
		Expect(ledger(ctx, ns, "crash", symbol)[id].Events).NotTo(ContainElement(
			HaveField("Kind", runner.KindClose)), "the signal closed before the kill")

		By("the kubelet restarts the container; the new runner resumes the signal")
		Eventually(func() string {
			return kubectl(ctx, "get", "pod", "crash-runner", "-n", ns,
				"-o", "jsonpath={.status.containerStatuses[0].restartCount}")
		}, 30*time.Second).Should(Equal("1"))
		Eventually(func() int { return logLines(ns, "crash", "Resuming an open signal", id) }, 30*time.Second).
			Should(Equal(1))

		By("the signal closes, and the ledger holds it opened once and closed once")
		Eventually(func() []string { return eventKinds(ledger(ctx, ns, "crash", symbol)[id]) }, 3*time.Minute, time.Second).
			Should(ContainElement(runner.KindClose))
		Expect(eventKinds(ledger(ctx, ns, "crash", symbol)[id])).To(Equal([]string{runner.KindOpen, runner.KindClose}))
		Expect(kubectl(ctx, "get", "strategystate", stateName("crash", symbol), "-n", ns,
			"-o", "jsonpath={.spec.signal.id}")).NotTo(Equal(id))
	})

	It("shows a runner that keeps failing as Failed, with the runner's own error", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		cmd := cluster.KubectlCommand(ctx, "apply", "-n", ns, "-f", "-")
		cmd.Stdin = strings.NewReader(`apiVersion: trading.strategyops.dev/v1alpha1
kind: Strategy
metadata: {name: broken}
spec:
  exchangeName: simulated
  symbols: [BTCUSDT]
  args: [--speed=-1]
  persistence: {backend: ConfigMap}
`)
		out, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		Eventually(func() string {
			return kubectl(ctx, "get", "strategy", "broken", "-n", ns, "-o",
				`jsonpath={.status.phase} {.status.conditions[?(@.type=="Degraded")].message}`)
		}, 60*time.Second, time.Second).
			Should(And(HavePrefix("Failed "), ContainSubstring("--speed must be positive, got -1")))
		Consistently(func() string {
			return kubectl(ctx, "get", "strategy", "broken", "-n", ns, "-o",
				`jsonpath={.status.conditions[?(@.type=="Ready")].reason}`)
		}, 5*time.Second, 500*time.Millisecond).Should(Equal("RunnerFailing"), "Ready flaps with the restarts")
	})

	It("follows hand edits of its state: adopts a new take profit, cancels a removed signal, warns of each",
		func(ctx SpecContext) {
			ns := newNamespace(ctx)
			const symbol = "BTCUSDT"
			applyStrategy(ctx, ns, "edited", "StrategyState", "Delete", []string{symbol}, "take-profit=4", "stop-loss=3")
			waitRunning(ctx, ns, "edited")
			state := stateName("edited", symbol)
			warnings := func() string {
				return kubectl(ctx, "get", "events", "-n", ns, "--field-selector",
					"type=Warning,involvedObject.kind=Strategy,involvedObject.name=edited", "-o",
					`jsonpath={range .items[*]}{.reason}: {.note}{.message}{"\n"}{end}`)
			}

			By("a take profit moved further away with kubectl is adopted")
			var id string
			var takeProfit float64
			Eventually(func() error {
				out := kubectl(ctx, "get", "strategystate", state, "-n", ns, "-o",
					"jsonpath={.spec.signal.id} {.spec.signal.priceOpen} {.spec.signal.priceTakeProfit}")
				f := strings.Fields(out)
				if len(f) != 3 {
					return fmt.Errorf("no open signal yet: %q", out)
				}
				open, _ := strconv.ParseFloat(f[1], 64)
				tp, _ := strconv.ParseFloat(f[2], 64)
				id, takeProfit = f[0], open+(tp-open)*1.1
				_, err := cluster.Kubectl(ctx, "patch", "strategystate", state, "-n", ns, "--type=json", "-p",
					fmt.Sprintf(`[{"op":"test","path":"/spec/signal/id","value":%q},`+
						`{"op":"replace","path":"/spec/signal/priceTakeProfit","value":%v}]`, id, takeProfit))
				return err
			}, 2*time.Minute, 500*time.Millisecond).Should(Succeed())
			Eventually(warnings, 30*time.Second, time.Second).Should(
				ContainSubstring(runner.NoticeEditAdopted + ": adopted a hand edit of open signal " + id))
			adopted := id
			Eventually(func() []domain.HistoryEvent { return ledger(ctx, ns, "edited", symbol)[adopted].Events },
				30*time.Second).Should(ContainElement(And(HaveField("Kind", domain.EventEdited),
				HaveField("After", HaveValue(HaveField("PriceTakeProfit", takeProfit))))),
				"the ledger records the adopted edit, before and after")
			Expect(ledger(ctx, ns, "edited", symbol)[adopted].Signal).To(HaveValue(HaveField("PriceTakeProfit", takeProfit)),
				"the ledger's row is the signal as adopted")

			By("the signal removed with kubectl is cancelled, in the ledger too")
			Eventually(func() error { // the signal may close first: then the next one is removed
				if cur := kubectl(ctx, "get", "strategystate", state, "-n", ns, "-o", "jsonpath={.spec.signal.id}"); cur != "" {
					id = cur
				}
				_, err := cluster.Kubectl(ctx, "patch", "strategystate", state, "-n", ns, "--type=json", "-p",
					fmt.Sprintf(`[{"op":"test","path":"/spec/signal/id","value":%q},{"op":"remove","path":"/spec/signal"},`+
						`{"op":"replace","path":"/spec/phase","value":"Idle"}]`, id))
				return err
			}, 2*time.Minute, 500*time.Millisecond).Should(Succeed())
			Eventually(warnings, 30*time.Second, time.Second).Should(
				ContainSubstring(runner.NoticeCancelledByUser + ": open signal " + id))
			Eventually(func() []domain.HistoryEvent { return ledger(ctx, ns, "edited", symbol)[id].Events }, 30*time.Second).
				Should(ContainElement(And(HaveField("Kind", runner.KindCancel), HaveField("Reason", runner.ReasonUser))))
			Expect(eventKinds(ledger(ctx, ns, "edited", symbol)[id])).NotTo(ContainElement(runner.KindClose))
		})

	It("refuses a runner the state of another strategy (403), with the token its pod got", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		applyStrategy(ctx, ns, "alpha", "StrategyState", "Delete", []string{"BTCUSDT"})
		applyStrategy(ctx, ns, "beta", "StrategyState", "Delete", []string{"BTCUSDT"})
		waitRunning(ctx, ns, "alpha")
		waitRunning(ctx, ns, "beta")
		asAlpha := "--kubeconfig=" + kubelet.Kubeconfig(ns, "alpha-runner")

		By("alpha's runner reads its own state")
		Expect(kubectl(ctx, asAlpha, "get", "strategystate", stateName("alpha", "BTCUSDT"), "-n", ns, "-o", "name")).
			To(Equal("strategystate.trading.strategyops.dev/alpha-simulated-btcusdt\n"))

		By("and is refused beta's: its StrategyState, its ledger, and any write to them")
		forbidden := SatisfyAll(ContainSubstring("Forbidden"),
			ContainSubstring(fmt.Sprintf(`"system:serviceaccount:%s:alpha-runner"`, ns)))
		_, err := cluster.Kubectl(ctx, asAlpha, "get", "strategystate", stateName("beta", "BTCUSDT"), "-n", ns)
		Expect(err).To(MatchError(forbidden))
		_, err = cluster.Kubectl(ctx, asAlpha, "get", "configmap",
			domain.ConfigMapName(domain.History, domain.StrategyKey("BTCUSDT", "beta", "simulated")), "-n", ns)
		Expect(err).To(MatchError(forbidden))
		_, err = cluster.Kubectl(ctx, asAlpha, "label", "strategystate", stateName("beta", "BTCUSDT"), "-n", ns, "taken=yes")
		Expect(err).To(MatchError(forbidden))
	})

	It("keeps the state of a deleted strategy with retention Retain and removes it with Delete", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		applyStrategy(ctx, ns, "keep", "StrategyState", "Retain", []string{"BTCUSDT"})
		applyStrategy(ctx, ns, "drop", "ConfigMap", "Delete", []string{"BTCUSDT"})
		keepPid, dropPid := waitRunning(ctx, ns, "keep"), waitRunning(ctx, ns, "drop")
		keepHistory := domain.ConfigMapName(domain.History, domain.StrategyKey("BTCUSDT", "keep", "simulated"))

		kubectl(ctx, "delete", "strategy", "keep", "drop", "-n", ns, "--timeout=60s")

		By("both pods go, and with them the runners' processes")
		Eventually(func() string { return kubectl(ctx, "get", "pods", "-n", ns, "-o", "name") }, 60*time.Second).
			Should(BeEmpty())
		Eventually(func() bool { return alive(keepPid) || alive(dropPid) }, 30*time.Second).Should(BeFalse())

		By("keep's StrategyState and ledger stay; nothing of drop's does")
		Expect(kubectl(ctx, "get", "strategystates", "-n", ns, "-o", "name")).
			To(Equal("strategystate.trading.strategyops.dev/keep-simulated-btcusdt\n"))
		Expect(strings.Fields(kubectl(ctx, "get", "configmaps", "-n", ns, "-o", "name",
			"-l", "trading.strategyops.dev/strategy"))).To(ConsistOf("configmap/" + keepHistory))
		Expect(kubectl(ctx, "get", "configmaps", "-n", ns, "-o", "name", "-l", "trading.strategyops.dev/risk=drop")).
			To(BeEmpty())
	})

	It("keeps an open signal when a running strategy moves from ConfigMap to StrategyState", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		symbols := []string{"BTCUSDT", "ETHUSDT", "SOLUSDT"}
		// Signals that stay open for hours of candles: the switch takes seconds.
		applyStrategy(ctx, ns, "mover", "ConfigMap", "Delete", symbols, "take-profit=10", "stop-loss=8", "minutes=600")
		waitRunning(ctx, ns, "mover")

		signalOf := func(sym string) string {
			name := domain.ConfigMapName(domain.Signal, domain.StrategyKey(sym, "mover", "simulated"))
			for _, v := range configMapData(ctx, ns, name) {
				var s struct {
					ID string `json:"id"`
				}
				if json.Unmarshal([]byte(v), &s) == nil && s.ID != "" {
					return s.ID
				}
			}
			return ""
		}
		By("waiting for an open signal in the ConfigMap backend")
		var symbol string
		Eventually(func() bool {
			for _, sym := range symbols {
				if signalOf(sym) != "" {
					symbol = sym
					return true
				}
			}
			return false
		}, 3*time.Minute, 250*time.Millisecond).Should(BeTrue())

		id := signalOf(symbol) // open when the switch is asked for
		kubectl(ctx, "patch", "strategy", "mover", "-n", ns, "--type=merge",
			"-p", `{"spec":{"persistence":{"backend":"StrategyState"}}}`)

		By("the operator stops the runner, moves the state, and starts a runner on StrategyState")
		Eventually(func() string {
			return kubectl(ctx, "get", "strategy", "mover", "-n", ns, "-o", "jsonpath={.status.activeBackend}")
		}, 60*time.Second).Should(Equal("StrategyState"))
		waitRunning(ctx, ns, "mover")
		Expect(kubectl(ctx, "get", "strategystate", stateName("mover", symbol), "-n", ns,
			"-o", "jsonpath={.spec.phase} {.spec.signal.id}")).To(Equal("Open "+id),
			"the moved state does not hold the signal open at the switch "+
				"(did it close in the seconds before the old runner stopped?)")
		By("the old copy on ConfigMap is removed")
		Eventually(func() error {
			_, err := cluster.Kubectl(ctx, "get", "configmap", "-n", ns,
				domain.ConfigMapName(domain.Signal, domain.StrategyKey(symbol, "mover", "simulated")))
			return err
		}, 30*time.Second).Should(MatchError(ContainSubstring("NotFound")))
		Eventually(func() int { return logLines(ns, "mover", "Resuming an open signal", id) }, 30*time.Second).
			Should(BeNumerically(">=", 1))
		Expect(eventKinds(ledger(ctx, ns, "mover", symbol)[id])).To(Equal([]string{runner.KindOpen}))
	})
})
