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

package domain_test

import (
	"context"
	"encoding/json"
	"testing"

	. "github.com/onsi/gomega"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
	"github.com/strategyops/strategy-operator/internal/testenv"
	persist "github.com/strategyops/strategy-operator/pkg/store"
)

var env *testenv.Environment

func TestMain(m *testing.M) { testenv.RunMain(m, &env) }

// backends are every backend a strategy can select, each in a fresh place.
func backends(t *testing.T) map[string]func() domain.Backend {
	ns := env.Namespace(t.Context(), t)
	dir := t.TempDir()
	mem := domain.MemoryBackend()
	kube := domain.KubeOptions{Namespace: ns, Create: true}
	return map[string]func() domain.Backend{
		"File":          func() domain.Backend { return domain.FileBackend(dir) },
		"Memory":        func() domain.Backend { return mem },
		"ConfigMap":     func() domain.Backend { return domain.ConfigMapBackend(env.Client, kube) },
		"StrategyState": func() domain.Backend { return domain.StrategyStateBackend(env.Client, kube) },
	}
}

// TestDomainsOnEveryBackend writes every fixture through its domain and reads it back from
// a second Persistence (as a restarted process would), on every backend.
func TestDomainsOnEveryBackend(t *testing.T) {
	for name, backend := range backends(t) {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			opened := decode[*v1.Signal](t, "signal-opened.json")
			scheduled := decode[*v1.Signal](t, "schedule-scheduled.json")
			k := domain.StrategyKey(opened.Symbol, opened.StrategyName, opened.ExchangeName)
			ks := domain.StrategyKey(scheduled.Symbol, scheduled.StrategyName, scheduled.ExchangeName)
			rk := domain.RiskKey("default", "trace-exchange")

			p := domain.New(backend())
			g.Expect(p.WriteSignal(ctx, k, opened)).To(Succeed())
			g.Expect(p.WriteSchedule(ctx, ks, scheduled)).To(Succeed())
			g.Expect(p.WriteSnapshot(ctx, k, decode[*v1.StrategySnapshot](t, "strategy-snapshot.json"))).To(Succeed())
			g.Expect(p.WriteRisk(ctx, rk, decode[v1.RiskPositions](t, "risk-positions.json"))).To(Succeed())
			g.Expect(p.WritePartial(ctx, k, opened.ID, decode[v1.PartialData](t, "partial.json"))).To(Succeed())
			g.Expect(p.WriteBreakeven(ctx, k, opened.ID, decode[v1.BreakevenData](t, "breakeven.json"))).To(Succeed())
			g.Expect(p.Close()).To(Succeed())

			again := domain.New(backend())
			defer func() { _ = again.Close() }()
			same := func(v any, err error, file string) {
				g.Expect(err).NotTo(HaveOccurred(), file)
				g.Expect(json.Marshal(v)).To(MatchJSON(fixture(t, file)), file)
			}
			sig, err := again.ReadSignal(ctx, k)
			same(sig, err, "signal-opened.json")
			sched, err := again.ReadSchedule(ctx, ks)
			same(sched, err, "schedule-scheduled.json")
			snap, err := again.ReadSnapshot(ctx, k)
			same(snap, err, "strategy-snapshot.json")
			risk, err := again.ReadRisk(ctx, rk)
			same(risk, err, "risk-positions.json")
			partial, err := again.ReadPartial(ctx, k, opened.ID)
			same(partial, err, "partial.json")
			be, err := again.ReadBreakeven(ctx, k, opened.ID)
			same(be, err, "breakeven.json")

			// closing: null clears, levels become {}, risk []
			g.Expect(again.WriteSignal(ctx, k, nil)).To(Succeed())
			g.Expect(again.WritePartial(ctx, k, opened.ID, nil)).To(Succeed())
			g.Expect(again.WriteRisk(ctx, rk, nil)).To(Succeed())
			sig, err = again.ReadSignal(ctx, k)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(sig).To(BeNil())
			partial, err = again.ReadPartial(ctx, k, opened.ID)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(partial).To(BeEmpty())
			risk, err = again.ReadRisk(ctx, rk)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(risk).To(BeEmpty())
		})
	}
}

// TestKubeBackendsFenceOldWriters: a runner that lost its lease (older token) can no
// longer write any domain once the new runner wrote.
func TestKubeBackendsFenceOldWriters(t *testing.T) {
	ns := env.Namespace(t.Context(), t)
	for name, mk := range map[string]func(kubestore.Fencing) domain.Backend{
		"ConfigMap": func(f kubestore.Fencing) domain.Backend {
			return domain.ConfigMapBackend(env.Client, domain.KubeOptions{Namespace: ns, Create: true, Fencing: f})
		},
		"StrategyState": func(f kubestore.Fencing) domain.Backend {
			return domain.StrategyStateBackend(env.Client, domain.KubeOptions{Namespace: ns, Create: true, Fencing: f})
		},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			sig := decode[*v1.Signal](t, "signal-opened.json")
			sig.StrategyName = "fenced-" + name
			k := domain.StrategyKey(sig.Symbol, sig.StrategyName, sig.ExchangeName)
			old := domain.New(mk(kubestore.Fencing{Writer: "runner-1", Token: 1}))
			g.Expect(old.WriteSignal(ctx, k, sig)).To(Succeed())
			newer := domain.New(mk(kubestore.Fencing{Writer: "runner-2", Token: 2}))
			g.Expect(newer.WriteSignal(ctx, k, nil)).To(Succeed())
			g.Expect(old.WriteSignal(ctx, k, sig)).To(MatchError(persist.ErrFenced))
			got, err := newer.ReadSignal(ctx, k)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(BeNil(), "the deposed writer's write did not land")
		})
	}
}

// TestStoreObjects: the one list of objects each Kubernetes backend keeps a strategy in,
// written out by hand.
func TestStoreObjects(t *testing.T) {
	g := NewWithT(t)
	names := func(b v1.PersistenceBackend) []string {
		objs := domain.StoreObjects(b, "s", "e", []string{"BTCUSDT"})
		out := make([]string, 0, len(objs))
		for _, o := range objs {
			out = append(out, o.Kind+"/"+o.Name)
		}
		return out
	}
	g.Expect(names(v1.BackendConfigMap)).To(Equal([]string{"ConfigMap/risk-s-e", "ConfigMap/signal-s-e-btcusdt",
		"ConfigMap/schedule-s-e-btcusdt", "ConfigMap/strategy-s-e-btcusdt", "ConfigMap/partial-s-e-btcusdt",
		"ConfigMap/breakeven-s-e-btcusdt", "ConfigMap/history-s-e-btcusdt"}))
	g.Expect(names(v1.BackendStrategyState)).To(Equal([]string{"ConfigMap/risk-s-e", "StrategyState/s-e-btcusdt",
		"ConfigMap/history-s-e-btcusdt"}))
	_, err := domain.KubeBackend(v1.BackendFile, nil, domain.KubeOptions{})
	g.Expect(err).To(MatchError(ContainSubstring(`"File" is not one of ConfigMap or StrategyState`)))
}
