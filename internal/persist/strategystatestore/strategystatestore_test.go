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

package strategystatestore_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/names"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
	sss "github.com/strategyops/strategy-operator/internal/persist/strategystatestore"
	"github.com/strategyops/strategy-operator/internal/testenv"
	persist "github.com/strategyops/strategy-operator/pkg/store"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

func fixtureSignal(t *testing.T, name string) *v1.Signal {
	t.Helper()
	return testenv.FixtureValue[*v1.Signal](t, name)
}

func keyOf(s *v1.Signal) sss.Key {
	return sss.Key{StrategyName: s.StrategyName, ExchangeName: s.ExchangeName, Symbol: s.Symbol}
}

func signalStore(t *testing.T, ns string, k sss.Key, f sss.Field, opts sss.Options) *persist.Store[*v1.Signal] {
	t.Helper()
	opts.Create = true
	s := persist.NewStore[*v1.Signal](string(f), sss.New(env.Client, ns, k, f, opts))
	if _, err := s.Init(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	return s
}

func object(t *testing.T, ns string, k sss.Key) *v1.StrategyState {
	t.Helper()
	var st v1.StrategyState
	if err := env.Client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: sss.ObjectName(k)}, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

// TestLifecycleSetsPhaseInTheSameWrite follows a scheduled signal to activation and close:
// after every write the object shows the phase, as a field and as a label (what the
// operator's metadata watch sees), and the display (readable prices) that match it, and
// each write was one update of the object.
func TestLifecycleSetsPhaseInTheSameWrite(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	ns := env.Namespace(ctx, t)
	scheduled := fixtureSignal(t, "schedule-scheduled.json")
	active := fixtureSignal(t, "signal-activated-from-schedule.json")
	k := keyOf(scheduled)
	signals := signalStore(t, ns, k, sss.FieldSignal, sss.Options{})
	schedule := signalStore(t, ns, k, sss.FieldSchedule, sss.Options{})

	steps := []struct {
		name  string
		write func() error
		phase v1.StatePhase
		shown *v1.Signal
	}{
		{"schedule", func() error { _, err := schedule.Write(ctx, k.Symbol, scheduled); return err }, v1.PhaseScheduled,
			scheduled},
		{"activate", func() error { _, err := signals.Write(ctx, k.Symbol, active); return err }, v1.PhaseOpen, active},
		{"drop the schedule", func() error { _, err := schedule.Write(ctx, k.Symbol, nil); return err }, v1.PhaseOpen,
			active},
		{"close", func() error { _, err := signals.Write(ctx, k.Symbol, nil); return err }, v1.PhaseIdle, nil},
	}
	for _, step := range steps {
		before := object(t, ns, k).Generation
		g.Expect(step.write()).To(Succeed(), step.name)
		st := object(t, ns, k)
		g.Expect(st.Spec.Phase).To(Equal(step.phase), step.name)
		g.Expect(st.Labels).To(HaveKeyWithValue(names.LabelPhase, string(step.phase)), step.name)
		g.Expect(st.Generation).To(Equal(before+1), "%s: one write, one update", step.name)
		if step.shown == nil {
			g.Expect(st.Spec.Display).To(BeNil(), step.name)
			continue
		}
		g.Expect(st.Spec.Display).To(Equal(&v1.StateDisplay{Position: step.shown.Position,
			PriceOpen:  v1.ReadablePrice(step.shown.PriceOpen),
			TakeProfit: v1.ReadablePrice(step.shown.PriceTakeProfit),
			StopLoss:   v1.ReadablePrice(step.shown.PriceStopLoss)}), step.name)
	}

	// what was stored is the row backtest-kit wrote
	g.Expect(signals.Write(ctx, k.Symbol, active)).Error().NotTo(HaveOccurred())
	got, err := signals.Read(ctx, k.Symbol)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(json.Marshal(got)).To(MatchJSON(mustJSON(t, active)))
	g.Expect(object(t, ns, k).Labels).To(HaveKeyWithValue(names.LabelSymbol, "ETHUSDT"))
}

func mustJSON(t *testing.T, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestInvalidSignalRefusedInGoBeforeSending(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	ns := env.Namespace(ctx, t)
	sig := fixtureSignal(t, "signal-opened.json")
	k := keyOf(sig)
	s := signalStore(t, ns, k, sss.FieldSignal, sss.Options{})
	before := object(t, ns, k).ResourceVersion

	sig.PriceTakeProfit, sig.PriceStopLoss = 99, 101
	_, err := s.Write(ctx, k.Symbol, sig)
	g.Expect(errors.Is(err, v1.ErrInvalidSignal)).To(BeTrue(), "got %v", err)
	g.Expect(errors.Is(err, driver.ErrInvalidValue)).To(BeTrue(), "got %v", err)
	g.Expect(err.Error()).To(And(
		ContainSubstring("Long: priceTakeProfit must be > priceOpen"),
		ContainSubstring("Long: priceStopLoss must be < priceOpen")))
	g.Expect(object(t, ns, k).ResourceVersion).To(Equal(before), "nothing was sent")

	other := fixtureSignal(t, "signal-opened.json")
	other.Symbol = "ETHUSDT"
	_, err = s.Write(ctx, k.Symbol, other)
	g.Expect(errors.Is(err, v1.ErrInvalidSignal)).To(BeTrue(), "got %v", err)
	// An invalid value, as every driver calls one: the state API answers 400, not 503.
	g.Expect(errors.Is(err, driver.ErrInvalidValue)).To(BeTrue(), "got %v", err)
	g.Expect(err.Error()).To(ContainSubstring("belongs to trace-immediate/trace-exchange/ETHUSDT"))

	_, err = s.Write(ctx, "ETHUSDT", fixtureSignal(t, "signal-opened.json"))
	g.Expect(errors.Is(err, persist.ErrInvalidKey)).To(BeTrue(), "got %v", err)
	g.Expect(err.Error()).To(ContainSubstring(`holds only key "BTCUSDT"`))
}

func TestAPIServerRefusesAnInvalidSignalSentAnyway(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	ns := env.Namespace(ctx, t)
	sig := fixtureSignal(t, "signal-opened.json")
	k := keyOf(sig)
	s := signalStore(t, ns, k, sss.FieldSignal, sss.Options{SkipValidation: true})

	sig.Position = v1.PositionShort
	_, err := s.Write(ctx, k.Symbol, sig)
	g.Expect(errors.Is(err, persist.ErrInvalidValue)).To(BeTrue(), "got %v", err)
	g.Expect(err.Error()).To(ContainSubstring("Short: priceTakeProfit must be < priceOpen"))
	g.Expect(object(t, ns, k).Spec.Signal).To(BeNil())
}

func TestObjectNames(t *testing.T) {
	g := NewWithT(t)
	g.Expect(sss.ObjectName(sss.Key{StrategyName: "breakout", ExchangeName: "simulated", Symbol: "BTCUSDT"})).
		To(Equal("breakout-simulated-btcusdt"))
	a := sss.ObjectName(sss.Key{StrategyName: "s", ExchangeName: "e", Symbol: "BTC/USDT"})
	b := sss.ObjectName(sss.Key{StrategyName: "s", ExchangeName: "e", Symbol: "BTC-USDT"})
	g.Expect(a).NotTo(Equal(b), "symbols that clean up alike keep apart")
	g.Expect(a).To(MatchRegexp(`^s-e-btc-usdt--[0-9a-f]{16}$`))
	long := sss.ObjectName(sss.Key{StrategyName: "a-very-long-strategy-name-that-goes-on-and-on",
		ExchangeName: "exchange-with-a-long-name", Symbol: "SOMECOINUSDT"})
	g.Expect(len(long)).To(BeNumerically("<=", 63))
	g.Expect(names.LabelValue("BTC/USDT")).To(Equal("BTC_USDT"))

}

// TestNameCollisionIsRefused: symbols that differ only in case share an object name; the
// second store must refuse the first's object rather than write into it.
func TestNameCollisionIsRefused(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	ns := env.Namespace(ctx, t)
	upper := sss.Key{StrategyName: "s", ExchangeName: "e", Symbol: "BTCUSDT"}
	lower := sss.Key{StrategyName: "s", ExchangeName: "e", Symbol: "btcusdt"}
	g.Expect(sss.ObjectName(lower)).To(Equal(sss.ObjectName(upper)))
	signalStore(t, ns, upper, sss.FieldSignal, sss.Options{})

	s := persist.NewStore[*v1.Signal]("lower", sss.New(env.Client, ns, lower, sss.FieldSignal,
		sss.Options{Options: kubestore.Options{Create: true}}))
	_, err := s.Init(ctx, true)
	g.Expect(errors.Is(err, persist.ErrNotOwned)).To(BeTrue(), "got %v", err)
	g.Expect(err.Error()).To(ContainSubstring("it holds s/e/BTCUSDT, this store is for s/e/btcusdt"))
}

// TestKubectlGetShowsReadablePrices: the table the API server prints for `kubectl get
// strategystates` shows the signal's prices at a trader's precision, while the signal
// keeps every digit.
func TestKubectlGetShowsReadablePrices(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	ns := env.Namespace(ctx, t)
	active := fixtureSignal(t, "signal-opened.json")
	active.PriceOpen, active.PriceTakeProfit, active.PriceStopLoss = 128.33527530592582, 130.60000000000002, 126.1
	for i := range active.Entry {
		active.Entry[i].Price = active.PriceOpen
	}
	k := keyOf(active)
	signals := signalStore(t, ns, k, sss.FieldSignal, sss.Options{})
	g.Expect(signals.Write(ctx, k.Symbol, active)).Error().NotTo(HaveOccurred())
	g.Expect(object(t, ns, k).Spec.Signal.PriceOpen).To(Equal(128.33527530592582))

	hc, err := rest.HTTPClientFor(env.Config)
	g.Expect(err).NotTo(HaveOccurred())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		strings.TrimSuffix(env.Config.Host, "/")+"/apis/"+v1.GroupVersion.String()+"/namespaces/"+ns+"/strategystates", nil)
	g.Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := hc.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%s", body)
	var table metav1.Table
	g.Expect(json.Unmarshal(body, &table)).To(Succeed(), "%s", body)
	g.Expect(table.Rows).To(HaveLen(1))
	cells := map[string]any{}
	for i, c := range table.ColumnDefinitions {
		cells[c.Name] = table.Rows[0].Cells[i]
	}
	g.Expect(cells).To(And(HaveKeyWithValue("Open", "128.3353"), HaveKeyWithValue("Take Profit", "130.6"),
		HaveKeyWithValue("Stop Loss", "126.1"), HaveKeyWithValue("Position", string(active.Position)),
		HaveKeyWithValue("Phase", string(v1.PhaseOpen))))
}

// TestStatusIsNotTheWritersToChange: a StrategyState's status is a subresource: an update of
// the object (as the runner's store makes) leaves it as it is; only the operator's write to
// the status subresource changes it.
func TestStatusIsNotTheWritersToChange(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	ns := env.Namespace(ctx, t)
	active := fixtureSignal(t, "signal-opened.json")
	k := keyOf(active)
	signals := signalStore(t, ns, k, sss.FieldSignal, sss.Options{})
	g.Expect(signals.Write(ctx, k.Symbol, active)).Error().NotTo(HaveOccurred())

	st := object(t, ns, k)
	at := metav1.NewTime(time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC))
	st.Status.LastClose = &v1.StateClose{ID: "from-the-writer", Reason: "take_profit", ClosedAt: at, PnL: "+9.99 %"}
	g.Expect(env.Client.Update(ctx, st)).To(Succeed())
	g.Expect(object(t, ns, k).Status.LastClose).To(BeNil(), "an update of the object changed its status")

	st = object(t, ns, k)
	st.Status.LastClose = &v1.StateClose{ID: "from-the-operator", Reason: "stop_loss", ClosedAt: at, PnL: "-1.00 %"}
	g.Expect(env.Client.Status().Update(ctx, st)).To(Succeed())
	g.Expect(object(t, ns, k).Status.LastClose).To(HaveField("ID", "from-the-operator"))
	g.Expect(signals.Write(ctx, k.Symbol, nil)).Error().NotTo(HaveOccurred())
	g.Expect(object(t, ns, k).Status.LastClose).To(HaveField("ID", "from-the-operator"),
		"the writer's next write kept the status")
}
