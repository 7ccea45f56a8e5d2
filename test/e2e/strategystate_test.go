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
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

var nsCount atomic.Int32

// newNamespace creates a namespace with kubectl and deletes it after the spec.
func newNamespace(ctx context.Context) string {
	ns := fmt.Sprintf("e2e-%d", nsCount.Add(1))
	_, err := cluster.Kubectl(ctx, "create", "namespace", ns)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx context.Context) {
		_, _ = cluster.Kubectl(ctx, "delete", "namespace", ns, "--wait=false")
	})
	return ns
}

// table splits kubectl's column output into a header and rows of cells. Columns are
// found from the header, so a cell holding a space (none here) would not split.
func table(out string) (header []string, rows []map[string]string) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	Expect(lines).NotTo(BeEmpty())
	head := lines[0]
	var starts []int
	for i := range len(head) {
		if head[i] != ' ' && (i == 0 || (head[i-1] == ' ' && i > 1 && head[i-2] == ' ')) {
			starts = append(starts, i)
		}
	}
	cell := func(line string, k int) string {
		from := starts[k]
		to := len(line)
		if k+1 < len(starts) && starts[k+1] < len(line) {
			to = starts[k+1]
		}
		if from >= len(line) {
			return ""
		}
		return strings.TrimSpace(line[from:to])
	}
	for k := range starts {
		header = append(header, cell(head, k))
	}
	for _, line := range lines[1:] {
		row := map[string]string{}
		for k, name := range header {
			row[name] = cell(line, k)
		}
		rows = append(rows, row)
	}
	return header, rows
}

func column(rows []map[string]string, name string) []string {
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, r[name])
	}
	return out
}

func rowNamed(rows []map[string]string, name string) map[string]string {
	for _, r := range rows {
		if r["NAME"] == name {
			return r
		}
	}
	return nil
}

var _ = Describe("kubectl on the API", func() {
	samples := filepath.Join(testenv.RepoRoot(), "config", "samples")

	It("shows a StrategyState with its columns", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		sample := filepath.Join(samples, "trading_v1alpha1_strategystate.yaml")
		out, err := cluster.Kubectl(ctx, "apply", "-n", ns, "-f", sample)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("strategystate.trading.strategyops.dev/example-simulated-btcusdt created"))

		out, err = cluster.Kubectl(ctx, "get", "strategystates", "-n", ns)
		Expect(err).NotTo(HaveOccurred())
		header, rows := table(out)
		Expect(header).To(Equal([]string{"NAME", "STRATEGY", "SYMBOL", "PHASE", "POSITION", "OPEN",
			"TAKE PROFIT", "STOP LOSS", "LAST PNL", "AGE"}))
		Expect(rows).To(ConsistOf(SatisfyAll(
			HaveKeyWithValue("NAME", "example-simulated-btcusdt"),
			HaveKeyWithValue("STRATEGY", "example"),
			HaveKeyWithValue("SYMBOL", "BTCUSDT"),
			HaveKeyWithValue("PHASE", "Open"),
			HaveKeyWithValue("POSITION", "long"),
			HaveKeyWithValue("OPEN", "100"),
			HaveKeyWithValue("TAKE PROFIT", "101.5"),
			HaveKeyWithValue("STOP LOSS", "98.5"),
		)))

		By("the wide view adds the exchange and the signal id")
		out, err = cluster.Kubectl(ctx, "get", "sstates", "-n", ns, "-o", "wide")
		Expect(err).NotTo(HaveOccurred())
		_, rows = table(out)
		Expect(rowNamed(rows, "example-simulated-btcusdt")).To(SatisfyAll(
			HaveKeyWithValue("EXCHANGE", "simulated"),
			HaveKeyWithValue("SIGNAL", "1af31ee8-c897-4000-a4dc-55369e459000"),
		))
	})

	It("applies the samples: each runner runs in its pod and its signals show in kubectl", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		// The database samples name these Secrets (make run-local makes them the same way).
		connectionSecret(ctx, ns, "strategy-redis", v1.BackendRedis)
		connectionSecret(ctx, ns, "strategy-postgresql", v1.BackendPostgreSQL)
		connectionSecret(ctx, ns, "strategy-mongodb", v1.BackendMongoDB)
		_, err := cluster.ApplyKustomization(ctx, ns, samples)
		Expect(err).NotTo(HaveOccurred())

		By("the operator runs one pod per strategy, and the kubelet runs each")
		Eventually(func() []string {
			out, err := cluster.Kubectl(ctx, "get", "pods", "-n", ns, "-o", "name")
			Expect(err).NotTo(HaveOccurred())
			return strings.Fields(out)
		}, 30*time.Second).Should(ConsistOf("pod/breakout-runner", "pod/momentum-configmap-runner",
			"pod/momentum-file-runner", "pod/momentum-redis-runner", "pod/momentum-postgresql-runner",
			"pod/momentum-mongodb-runner", "pod/breakout-go-sdk-runner",
			"pod/node-bot-runner"))
		_, err = cluster.Kubectl(ctx, "wait", "-n", ns, "--for=condition=Ready", "pods", "--all", "--timeout=60s")
		Expect(err).NotTo(HaveOccurred())

		By("kubectl get strategies shows backend, symbols, ready and open signals")
		Eventually(func() []string {
			out, err := cluster.Kubectl(ctx, "get", "strategies", "-n", ns)
			Expect(err).NotTo(HaveOccurred())
			header, rows := table(out)
			Expect(header).To(Equal([]string{"NAME", "BACKEND", "SYMBOLS", "READY", "TRADING", "OPEN SIGNALS", "AGE"}))
			backends := map[string]string{}
			for _, r := range rows {
				backends[r["NAME"]] = r["BACKEND"]
			}
			Expect(backends).To(Equal(map[string]string{
				"breakout":            "StrategyState",
				"momentum-configmap":  "ConfigMap",
				"momentum-file":       "File",
				"momentum-redis":      "Redis",
				"momentum-postgresql": "PostgreSQL",
				"momentum-mongodb":    "MongoDB",
				"breakout-go-sdk":     "StrategyState",
				"node-bot":            "StrategyState",
			}))
			// The operator cannot read the File backend's volume: no count rather than 0.
			Expect(rowNamed(rows, "momentum-file")).To(HaveKeyWithValue("OPEN SIGNALS", ""))
			Expect(rowNamed(rows, "breakout")).To(HaveKeyWithValue("OPEN SIGNALS", MatchRegexp(`^\d+$`)))
			return column(rows, "READY")
		}, 30*time.Second).Should(HaveEach("True"))
		// Told by each runner on its Lease, a File runner's too though it holds none (not by
		// a runner exec process).
		Eventually(func(g Gomega) {
			out, err := cluster.Kubectl(ctx, "get", "strategies", "-n", ns)
			g.Expect(err).NotTo(HaveOccurred())
			_, rows := table(out)
			g.Expect(rowNamed(rows, "breakout")).To(HaveKeyWithValue("TRADING", "Trading"))
			g.Expect(rowNamed(rows, "momentum-redis")).To(HaveKeyWithValue("TRADING", "Trading"))
			g.Expect(rowNamed(rows, "momentum-file")).To(HaveKeyWithValue("TRADING", "Trading"))
		}, 30*time.Second).Should(Succeed())

		By("a StrategyState for each of breakout's symbols, and a signal its runner opened")
		Eventually(func(g Gomega) {
			out, err := cluster.Kubectl(ctx, "get", "strategystates", "-n", ns, "-o", "wide")
			g.Expect(err).NotTo(HaveOccurred())
			_, rows := table(out)
			g.Expect(column(rows, "NAME")).To(ConsistOf("breakout-simulated-btcusdt", "breakout-simulated-ethusdt",
				"breakout-simulated-solusdt", stateName("breakout-go-sdk", "ADAUSDT"), stateName("node-bot", "DOGEUSDT")))
			g.Expect(rowNamed(rows, stateName("node-bot", "DOGEUSDT"))).To(SatisfyAll(HaveKeyWithValue("PHASE", "Open"),
				HaveKeyWithValue("SIGNAL", HavePrefix("node-bot-DOGEUSDT-"))), "the Node process's signal")
			g.Expect(rows).To(ContainElement(SatisfyAll(
				HaveKeyWithValue("PHASE", BeElementOf("Open", "Scheduled")),
				HaveKeyWithValue("SIGNAL", HavePrefix("breakout-")), // opened by the breakout runner
				HaveKeyWithValue("POSITION", BeElementOf("long", "short")),
			)))
		}, 90*time.Second, time.Second).Should(Succeed())

		By("the trading category lists both kinds")
		out, err := cluster.Kubectl(ctx, "get", "trading", "-n", ns, "-o", "name")
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.Fields(out)).To(ContainElements(
			"strategy.trading.strategyops.dev/breakout",
			"strategy.trading.strategyops.dev/momentum-configmap",
			"strategy.trading.strategyops.dev/momentum-file",
			"strategystate.trading.strategyops.dev/breakout-simulated-btcusdt",
		))
	})

	It("refuses an invalid signal with the rule's message", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		bad := `apiVersion: trading.strategyops.dev/v1alpha1
kind: StrategyState
metadata: {name: bad}
spec:
  strategyName: s
  exchangeName: e
  symbol: BTCUSDT
  phase: Open
  signal: {id: x, position: long, priceOpen: 100, priceTakeProfit: 99, priceStopLoss: 98,
    minuteEstimatedTime: 60, symbol: BTCUSDT, exchangeName: e, strategyName: s, frameName: "",
    scheduledAt: 1, pendingAt: 1, timestamp: 1, _isScheduled: false}
`
		cmd := cluster.KubectlCommand(ctx, "apply", "-n", ns, "-f", "-")
		cmd.Stdin = strings.NewReader(bad)
		out, err := cmd.CombinedOutput()
		Expect(err).To(HaveOccurred())
		Expect(string(out)).To(ContainSubstring("Long: priceTakeProfit must be > priceOpen"))

		_, err = cluster.Kubectl(ctx, "get", "strategystate", "bad", "-n", ns)
		Expect(err).To(MatchError(ContainSubstring("NotFound")))
	})

	It("refuses a strategy with duplicate symbols, naming the field", func(ctx SpecContext) {
		ns := newNamespace(ctx)
		cmd := cluster.KubectlCommand(ctx, "apply", "-n", ns, "-f", "-")
		cmd.Stdin = strings.NewReader(`apiVersion: trading.strategyops.dev/v1alpha1
kind: Strategy
metadata: {name: dup}
spec: {exchangeName: simulated, symbols: [BTCUSDT, BTCUSDT]}
`)
		out, err := cmd.CombinedOutput()
		Expect(err).To(HaveOccurred())
		Expect(string(out)).To(ContainSubstring(`spec.symbols[1]: Duplicate value: "BTCUSDT"`))
	})
})
