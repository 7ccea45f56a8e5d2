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

package strategyview_test

import (
	"context"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/names"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/strategyview"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

var env *testenv.Environment

func TestMain(m *testing.M) { testenv.RunMain(m, &env) }

// TestShowReadsTheStrategyAsATraderDoes: against a real API server, Show prints the
// Strategy's conditions, its Lease's holder and fencing token, each symbol's signal at a
// readable precision, the last close with its PnL, and the latest event.
func TestShowReadsTheStrategyAsATraderDoes(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(ctx, t)
	c := env.Client
	now := time.Now() // every time below is read against this one
	s := &v1.Strategy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "alpha"},
		Spec: v1.StrategySpec{ExchangeName: "binance", Symbols: []string{"BTCUSDT", "ETHUSDT"},
			Persistence: v1.PersistenceSpec{Backend: v1.BackendStrategyState}}}
	if err := c.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	s.Status = v1.StrategyStatus{Phase: v1.StrategyRunning, ActiveBackend: v1.BackendStrategyState,
		Applied: &v1.AppliedState{StrategyName: "alpha", ExchangeName: "binance", Symbols: s.Spec.Symbols,
			Draining: []string{"SOLUSDT"}, Generation: 1},
		Conditions: []metav1.Condition{{Type: v1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Running",
			Message: "pod alpha-runner is running", LastTransitionTime: metav1.Now()}}}
	if err := c.Status().Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	holder := "alpha-runner-1765000000"
	if err := c.Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: names.LeaseName(s.EffectiveStrategyName(), "binance")},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseTransitions: new(int32(3)),
			RenewTime: &metav1.MicroTime{Time: now}}}); err != nil {
		t.Fatal(err)
	}

	backend := domain.StrategyStateBackend(c, domain.KubeOptions{Namespace: ns, Create: true})
	for _, sc := range domain.StrategyContexts(s.EffectiveStrategyName(), "binance", append(s.Spec.Symbols, "SOLUSDT")) {
		if err := domain.CreateObject(ctx, backend, sc.Domain, sc.Key); err != nil {
			t.Fatal(err)
		}
	}
	p := domain.New(backend)
	defer func() { _ = p.Close() }()
	sig := testenv.FixtureValue[v1.Signal](t, "signal-opened.json")
	sig.Symbol, sig.StrategyName, sig.ExchangeName = "BTCUSDT", s.EffectiveStrategyName(), "binance"
	sig.PriceOpen, sig.PriceTakeProfit, sig.PriceStopLoss = 128.33527530592582, 130.60000000000002, 126.1
	sig.Entry[0].Price = sig.PriceOpen
	btc := domain.StrategyKey("BTCUSDT", s.EffectiveStrategyName(), "binance")
	if err := p.WriteSignal(ctx, btc, &sig); err != nil {
		t.Fatal(err)
	}
	pnl := v1.ProfitLoss{PnlPercentage: 1.2345678, PnlCost: 1.2345678, PnlEntries: 100, PriceOpen: 100,
		PriceClose: 101.5}
	closed := sig
	closed.ID = "closed-1"
	eth := domain.StrategyKey("ETHUSDT", s.EffectiveStrategyName(), "binance")
	closed.Symbol = "ETHUSDT"
	if err := p.RecordHistory(ctx, eth, &closed, closed.ID, domain.HistoryEvent{Kind: domain.EventClosed,
		At: now.Add(-10 * time.Minute).UnixMilli(), Price: 101.50000000000001, Reason: "take_profit",
		PnL: &pnl}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "alpha.1"},
		InvolvedObject: corev1.ObjectReference{Kind: "Strategy", Namespace: ns, Name: "alpha", UID: s.UID},
		Type:           corev1.EventTypeNormal, Reason: "CreatedPod", Message: "created pod alpha-runner",
		LastTimestamp: metav1.Now()}); err != nil {
		t.Fatal(err)
	}

	var out strings.Builder
	if err := strategyview.Show(ctx, c, ns, "alpha", now, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Strategy:  " + ns + "/alpha  Running",
		"Ready:     True (Running)  pod alpha-runner is running",
		"held by " + holder + ", fencing token 4, renewed 0s ago",
		"BTCUSDT  Open", "128.3353", "130.6", "126.1", sig.ID,
		"take_profit at 101.5, +1.23 %, 9m ago",
		"SOLUSDT  Idle (draining)",
		"CreatedPod", "created pod alpha-runner",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("Show does not print %q; it printed:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "128.33527") {
		t.Errorf("Show prints a price at full precision:\n%s", out.String())
	}
	if err := strategyview.Show(ctx, c, ns, "nobody", now, &out); err == nil ||
		!strings.Contains(err.Error(), "strategy "+ns+"/nobody") {
		t.Errorf("Show of a Strategy that does not exist: %v, want an error naming it", err)
	}
}
