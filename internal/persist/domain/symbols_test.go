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
	"testing"

	. "github.com/onsi/gomega"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
)

// TestReadSymbols: what each symbol of a strategy holds, on every backend: its open and
// scheduled signals, and the close of its ledger's last closed signal; on a Kubernetes
// backend that may not make objects, a symbol whose objects do not exist is Missing (its
// state unknown), not flat.
func TestReadSymbols(t *testing.T) {
	for name, backend := range backends(t) {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			p := domain.New(backend())
			defer func() { _ = p.Close() }()
			opened := decode[*v1.Signal](t, "signal-opened.json")
			scheduled := decode[*v1.Signal](t, "schedule-scheduled.json")
			strat, exch := opened.StrategyName, opened.ExchangeName
			scheduled.StrategyName = strat
			k := domain.StrategyKey("BTCUSDT", strat, exch)
			g.Expect(p.WriteSignal(ctx, k, opened)).To(Succeed())
			g.Expect(p.WriteSchedule(ctx, domain.StrategyKey("ETHUSDT", strat, exch), scheduled)).To(Succeed())
			pnl := &v1.ProfitLoss{PnlPercentage: 1.5}
			for i, id := range []string{"first", "second", "open"} {
				kind := domain.EventClosed
				if id == "open" {
					kind = "opened"
				}
				g.Expect(p.RecordHistory(ctx, k, nil, id, domain.HistoryEvent{Kind: kind, At: int64(1000 * (2 - i)),
					Reason: "take_profit", PnL: pnl})).To(Succeed())
			}
			g.Expect(p.WriteSignal(ctx, domain.StrategyKey("SOLUSDT", strat, exch), nil)).To(Succeed())

			got, err := p.ReadSymbols(ctx, strat, exch, []string{"BTCUSDT", "ETHUSDT", "SOLUSDT"}, true)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(HaveLen(3))
			g.Expect(got[0].Signal).NotTo(BeNil())
			g.Expect(got[0].LastClosed).NotTo(BeNil())
			g.Expect(got[0].LastClosed.ID).To(Equal("first"), "the close at the latest candle, not the last written")
			g.Expect(got[0].LastClosed.Close().PnL).To(Equal(pnl))
			g.Expect(got[1].Schedule).NotTo(BeNil())
			g.Expect(got[1].Live()).To(BeTrue())
			g.Expect(got[2].Live()).To(BeFalse())
			g.Expect(got[2].LastClosed).To(BeNil())
		})
	}
	t.Run("ConfigMap, objects not made", func(t *testing.T) {
		g := NewWithT(t)
		p := domain.New(domain.ConfigMapBackend(env.Client, domain.KubeOptions{Namespace: env.Namespace(t.Context(), t)}))
		defer func() { _ = p.Close() }()
		got, err := p.ReadSymbols(context.Background(), "s", "e", []string{"BTCUSDT"}, true)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got).To(ConsistOf(HaveField("Missing", true)))
		g.Expect(got[0].Live()).To(BeTrue())
	})
}
