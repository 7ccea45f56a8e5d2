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
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"

	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/runner"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

// podArgs are the arguments of the strategy's runner pod now, or nil when it has none.
func podArgs(ctx context.Context, ns, strategy string) []string {
	out, err := cluster.Kubectl(ctx, "get", "pod", strategy+"-runner", "-n", ns,
		"-o", "jsonpath={.spec.containers[0].args}")
	var args []string
	if err != nil || json.Unmarshal([]byte(out), &args) != nil {
		return nil
	}
	return args
}

// renamerState is the Strategy renamer's state as the test reads it, on backend b: on a
// database, in a server of the spec's own, named by a labelled Secret.
func renamerState(ctx context.Context, ns string, b v1.PersistenceBackend) (persistence string,
	state *domain.Persistence) {
	var backend domain.Backend
	persistence = fmt.Sprintf("{backend: %s}", b)
	if domain.HomeOf(b) == domain.InDatabase {
		url := connectionSecret(ctx, ns, "db", b)
		spec := v1.PersistenceSpec{Backend: b}
		spec.SetDatabase(b, &v1.DatabasePersistence{URLSecretRef: v1.SecretKeyRef{Name: "db", Key: "url"}})
		out, err := json.Marshal(spec)
		Expect(err).NotTo(HaveOccurred())
		persistence = string(out)
		db, err := domain.OpenDatabase(ctx, b, url)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(db.Close)
		backend = db.Backend(domain.NoFencing)
	} else {
		c, err := client.New(cluster.Config, client.Options{Scheme: testenv.Scheme()})
		Expect(err).NotTo(HaveOccurred())
		backend, err = domain.KubeBackend(b, c, domain.KubeOptions{Namespace: ns})
		Expect(err).NotTo(HaveOccurred())
	}
	state = domain.New(backend)
	DeferCleanup(state.Close)
	return persistence, state
}

// ledgerOf is every entry of the ledger of strategy on symbol: each signal's event kinds,
// by its id.
func ledgerOf(ctx context.Context, state *domain.Persistence, strategy, symbol string) (map[string][]string, error) {
	store, err := state.History.Store(ctx, domain.StrategyKey(symbol, strategy, "simulated"))
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for e, err := range store.Values(ctx) {
		if err != nil {
			return nil, err
		}
		out[e.ID] = eventKinds(*e)
	}
	return out, nil
}

// eventsOf are the event kinds of signal id in the ledger of strategy on symbol.
func eventsOf(ctx context.Context, state *domain.Persistence, strategy, symbol, id string) func(Gomega) []string {
	return func(g Gomega) []string {
		l, err := ledgerOf(ctx, state, strategy, symbol)
		g.Expect(err).NotTo(HaveOccurred())
		return l[id]
	}
}

var _ = Describe("spec changes on a running strategy", func() {
	DescribeTable("renames a strategy only after its live runner watched every signal of the old name to its close",
		func(ctx SpecContext, b v1.PersistenceBackend) {
			ns := newNamespace(ctx)
			persistence, state := renamerState(ctx, ns, b)
			symbols := []string{"BTCUSDT", "ETHUSDT"}
			// Signals far from their take profit and stop loss, which expire 20 candles (20 s)
			// after they open: the change lands while one is open, and it closes in seconds.
			cmd := cluster.KubectlCommand(ctx, "apply", "-n", ns, "-f", "-")
			cmd.Stdin = strings.NewReader(fmt.Sprintf(`apiVersion: trading.strategyops.dev/v1alpha1
kind: Strategy
metadata: {name: renamer}
spec:
  exchangeName: simulated
  symbols: [%s]
  args: [--strategy=indicator, --speed=60, %s, --option=take-profit=10, --option=stop-loss=8, --option=minutes=20]
  persistence: %s
  retention: Delete
`, strings.Join(symbols, ", "), fastLease, persistence))
			out, err := cmd.CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), string(out))
			waitRunning(ctx, ns, "renamer")

			By("waiting for an open signal, then renaming the strategy")
			var symbol, id string
			Eventually(func() string {
				for _, sym := range symbols {
					sig, err := state.ReadSignal(ctx, domain.StrategyKey(sym, "renamer", "simulated"))
					Expect(err).NotTo(HaveOccurred())
					if sig != nil {
						symbol, id = sym, sig.ID
						return id
					}
				}
				return ""
			}, 2*time.Minute, 100*time.Millisecond).ShouldNot(BeEmpty())
			kubectl(ctx, "patch", "strategy", "renamer", "-n", ns, "--type=merge",
				"-p", `{"spec":{"strategyName":"renamed"}}`)

			By("the operator keeps the old name and drains every symbol; a live runner watches the signal")
			// A flat symbol may be released at once: between the old pod's end and the new
			// one's start no runner holds the Lease, so none can open a signal there.
			Eventually(func() []string { return podArgs(ctx, ns, "renamer") }, 30*time.Second, 100*time.Millisecond).
				Should(And(ContainElements("--strategy-name=renamer", "--symbols="),
					ContainElement(MatchRegexp(`^--drain=(\w+,)*`+symbol+`(,\w+)*$`))))
			Expect(kubectl(ctx, "get", "strategy", "renamer", "-n", ns, "-o",
				`jsonpath={.status.conditions[?(@.type=="UpToDate")].reason}`)).To(Equal("IdentityChangeRefused"))
			// Its event, in columns of one's own as docs/observability.md writes them: the time
			// is eventTime (events.k8s.io), and .lastTimestamp is unset.
			Eventually(func() string {
				return kubectl(ctx, "get", "events", "-n", ns, "--no-headers", "--field-selector",
					"involvedObject.kind=Strategy,involvedObject.name=renamer,reason=IdentityChangeRefused",
					"-o", "custom-columns=TIME:.eventTime,LAST:.lastTimestamp,REASON:.reason")
			}, 30*time.Second, time.Second).Should(MatchRegexp(`^\d{4}-\d\d-\d\dT[\d:.]+Z\s+<nil>\s+IdentityChangeRefused`))
			Expect(eventsOf(ctx, state, "renamer", symbol, id)(Default)).NotTo(ContainElement(runner.KindClose),
				"the signal closed before the change was drained")

			By("the signal closes under the old name, the ledger telling of the drain; then the new name applies")
			Eventually(eventsOf(ctx, state, "renamer", symbol, id), 2*time.Minute, time.Second).
				Should(Equal([]string{runner.KindOpen, domain.EventDraining, runner.KindClose}))
			Eventually(func() []string { return podArgs(ctx, ns, "renamer") }, time.Minute, 250*time.Millisecond).
				Should(ContainElements("--strategy-name=renamed", "--symbols=BTCUSDT,ETHUSDT"))
			Expect(podArgs(ctx, ns, "renamer")).NotTo(ContainElement(HavePrefix("--drain")))
			waitRunning(ctx, ns, "renamer")
			Eventually(func() string {
				return kubectl(ctx, "get", "strategy", "renamer", "-n", ns, "-o",
					`jsonpath={.status.conditions[?(@.type=="UpToDate")].reason}`)
			}, 30*time.Second).Should(Equal("Applied"))

			By("nothing of the old name is left open, and every signal it opened was closed once")
			for _, sym := range symbols {
				Expect(state.ReadSignal(ctx, domain.StrategyKey(sym, "renamer", "simulated"))).To(BeNil(), sym)
				ledger, err := ledgerOf(ctx, state, "renamer", sym)
				Expect(err).NotTo(HaveOccurred())
				for sid, kinds := range ledger {
					// A signal open when its symbol began draining also records that, between.
					kinds = slices.DeleteFunc(kinds, func(k string) bool { return k == domain.EventDraining })
					Expect(kinds).To(HaveLen(2), "%s signal %s", sym, sid)
					Expect(kinds[0]).To(Equal(runner.KindOpen), "%s signal %s", sym, sid)
					Expect([]string{runner.KindClose, runner.KindCancel}).To(ContainElement(kinds[1]),
						"%s signal %s", sym, sid)
				}
			}

			By("the runner trades under the new name")
			Eventually(func(g Gomega) int {
				opened := 0
				for _, sym := range symbols {
					l, err := ledgerOf(ctx, state, "renamed", sym)
					g.Expect(err).NotTo(HaveOccurred())
					opened += len(l)
				}
				return opened
			}, 3*time.Minute, time.Second).Should(BeNumerically(">", 0), "no signal opened under the new name")
		},
		Entry("on StrategyState", v1.BackendStrategyState),
		Entry("on PostgreSQL", v1.BackendPostgreSQL),
	)
})
