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

package runnermetrics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/market"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	storemetrics "github.com/strategyops/strategy-operator/internal/persist/metrics"
	"github.com/strategyops/strategy-operator/internal/runner"
	"github.com/strategyops/strategy-operator/internal/strategy"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

var _ runner.Observer = (*Engine)(nil)

// value is the value of the series name{labels} in g, and whether it is there.
func value(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue series
				}
			}
			switch {
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			}
		}
	}
	return 0, false
}

// must is value, failing the test when the series is absent.
func must(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := value(t, g, name, labels)
	if !ok {
		t.Fatalf("no series %s%v", name, labels)
	}
	return v
}

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// script proposes, per symbol, its signals at the candles (by index) they are keyed by.
type script map[string]map[int]strategy.Proposal

func (script) Lookback() int { return 0 }

func (s script) Propose(_ context.Context, symbol string, candles []market.Candle) (*strategy.Proposal, error) {
	i := int(candles[len(candles)-1].Time.Sub(t0) / time.Minute)
	if p, ok := s[symbol][i]; ok {
		return &p, nil
	}
	return nil, nil
}

// candles is a feed of every symbol: 100 for five minutes, then 102, traded heavily at
// minute 5 (the average price jumps past 101.5).
func candles(t *testing.T) market.Source {
	t.Helper()
	var csv strings.Builder
	csv.WriteString("timestamp,open,high,low,close,volume\n")
	for i := range 20 {
		price, volume := 100.0, 1
		if i >= 5 {
			price = 102
		}
		if i == 5 {
			volume = 100
		}
		fmt.Fprintf(&csv, "%d,%v,%v,%v,%v,%v\n", t0.Add(time.Duration(i)*time.Minute).UnixMilli(), price, price, price,
			price, volume)
	}
	src, err := market.ReadCSV(strings.NewReader(csv.String()))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// TestEngineMetrics runs an engine on two symbols under the metrics, candle by candle,
// and checks that each metric moves as the signals do: X opens a signal that closes at take
// profit, then finds a signal written by hand where it opens its next one; Y schedules a
// limit entry that is never reached.
func TestEngineMetrics(t *testing.T) {
	ctx := context.Background()
	minutes := int64(60)
	long := func(tp, sl float64) strategy.Proposal {
		return strategy.Proposal{Position: v1.PositionLong, TakeProfit: tp, StopLoss: sl, Minutes: &minutes}
	}
	limit := strategy.Proposal{Position: v1.PositionLong, PriceOpen: 99, TakeProfit: 101, StopLoss: 97, Minutes: &minutes}
	strat := script{"X": {4: long(101.5, 98.5), 8: long(103.5, 100.5)}, "Y": {4: limit}}

	now := t0.Add(time.Hour) // the wall clock
	m := New("s")
	m.now = func() time.Time { return now }
	obs := m.Engine([]string{"X", "Y"})
	reg := m.Registry()
	x, y := map[string]string{labelSymbol: "X"}, map[string]string{labelSymbol: "Y"}
	p := domain.New(domain.MemoryBackend())
	e := runner.New(runner.Config{StrategyName: "s", ExchangeName: "e", Symbols: []string{"X", "Y"},
		Source: candles(t), Strategy: strat, Persist: p, Limits: v1.DefaultSignalLimits, Start: t0,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Observer: obs})
	step := func(through int) {
		t.Helper()
		if _, err := e.Step(ctx, t0.Add(time.Duration(through+1)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}

	// Before the first candle: the time since the start.
	now = now.Add(42 * time.Second)
	if got := must(t, reg, MetricSecondsSinceLastCandle, x); got != 42 {
		t.Errorf("before any candle: %v s since the last candle, want 42 (since the start)", got)
	}
	if _, ok := value(t, reg, MetricLastCandle, x); ok {
		t.Error("a last candle's time before any candle was processed")
	}
	if err := e.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	step(4)
	if got := must(t, reg, MetricSecondsSinceLastCandle, x); got != 0 {
		t.Errorf("just after a candle: %v s since the last candle, want 0", got)
	}
	if got := must(t, reg, MetricLastCandle, y); got != float64(t0.Add(4*time.Minute).Unix()) {
		t.Errorf("last candle %v, want minute 4 (%d)", got, t0.Add(4*time.Minute).Unix())
	}
	now = now.Add(7 * time.Second)
	if got := must(t, reg, MetricSecondsSinceLastCandle, y); got != 7 {
		t.Errorf("7 s after a candle: %v s since the last candle", got)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{MetricOpenSignals, x, 1}, {MetricScheduledSignals, x, 0},
		{MetricOpenSignals, y, 0}, {MetricScheduledSignals, y, 1},
		{MetricSignalEvents, map[string]string{labelSymbol: "X", labelEvent: runner.KindOpen}, 1},
		{MetricSignalEvents, map[string]string{labelSymbol: "Y", labelEvent: runner.KindSchedule}, 1},
		{MetricRealizedPnLPercent, x, 0},
	} {
		if got := must(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("after the open: %s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	step(5) // X's take profit
	if got := must(t, reg, MetricOpenSignals, x); got != 0 {
		t.Errorf("after the close: %v open signals", got)
	}
	closes := map[string]string{labelSymbol: "X", labelEvent: runner.KindClose, labelReason: "take_profit"}
	if got := must(t, reg, MetricSignalEvents, closes); got != 1 {
		t.Errorf("closes at take profit: %v, want 1", got)
	}
	var pnl *v1.ProfitLoss
	for _, h := range history(t, p, domain.StrategyKey("X", "s", "e")) {
		for _, ev := range h.Events {
			if ev.Kind == runner.KindClose {
				pnl = ev.PnL
			}
		}
	}
	if pnl == nil || pnl.PnlPercentage <= 0 {
		t.Fatalf("the ledger's close has PnL %+v, want a profit", pnl)
	}
	if got := must(t, reg, MetricRealizedPnLPercent, x); got != pnl.PnlPercentage {
		t.Errorf("realised PnL %v %%, the ledger's close %v %%", got, pnl.PnlPercentage)
	}
	if got := must(t, reg, MetricRealizedPnLQuote, x); got != pnl.PnlCost || got == 0 {
		t.Errorf("realised PnL %v in quote currency, the ledger's close %v", got, pnl.PnlCost)
	}

	// A signal written by hand where X holds none: X's open at minute 8 finds it.
	step(7)
	if got := must(t, reg, MetricWriteConflicts, x); got != 0 {
		t.Fatalf("%v write conflicts before any", got)
	}
	foreign := &v1.Signal{ID: "by-hand", Position: v1.PositionLong, PriceOpen: 102, PriceTakeProfit: 104,
		PriceStopLoss: 100, StrategyName: "s", ExchangeName: "e", Symbol: "X"}
	if err := p.WriteSignal(ctx, domain.StrategyKey("X", "s", "e"), foreign); err != nil {
		t.Fatal(err)
	}
	step(8)
	if got := must(t, reg, MetricWriteConflicts, x); got != 1 {
		t.Errorf("%v write conflicts after a hand-written signal, want 1", got)
	}
	if got := must(t, reg, MetricOpenSignals, x); got != 1 {
		t.Errorf("after the second open: %v open signals", got)
	}
	if got := must(t, reg, MetricSignalEvents, map[string]string{labelSymbol: "X", labelEvent: runner.KindOpen}); got != 2 {
		t.Errorf("%v opens of X, want 2", got)
	}
	if got := must(t, reg, MetricScheduledSignals, y); got != 1 {
		t.Errorf("Y's limit entry, never reached: %v scheduled", got)
	}
}

func history(t *testing.T, p *domain.Persistence, k domain.Key) []*domain.HistoryEntry {
	t.Helper()
	s, err := p.History.Store(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	var out []*domain.HistoryEntry
	for v, err := range s.Values(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// TestLeaseAndPhase: the fencing token appears with the first holding, and only trading is
// ready, on /readyz and in strategyops_runner_ready; /healthz answers in every phase.
func TestLeaseAndPhase(t *testing.T) {
	m := New("s")
	reg := m.Registry()
	if _, ok := value(t, reg, MetricFencingToken, nil); ok {
		t.Error("a fencing token before the Lease is held")
	}
	m.Leading(true, 7)
	if got := must(t, reg, MetricFencingToken, map[string]string{labelStrategy: "s"}); got != 7 {
		t.Errorf("fencing token %v, want 7", got)
	}
	if got := must(t, reg, MetricLeaseHeld, nil); got != 1 {
		t.Errorf("lease held %v while held", got)
	}
	m.Leading(false, 0)
	if got := must(t, reg, MetricLeaseHeld, nil); got != 0 {
		t.Errorf("lease held %v once lost", got)
	}

	mux := http.NewServeMux()
	mux.HandleFunc(PathReadyz, m.readyz)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, c := range []struct {
		phase Phase
		code  int
	}{{PhaseStarting, 503}, {PhaseStandby, 503}, {PhaseRestoring, 503}, {PhaseTrading, 200}, {PhaseStopping, 503}} {
		m.SetPhase(c.phase)
		resp, err := http.Get(srv.URL + PathReadyz)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != c.code || !strings.Contains(string(body), string(c.phase)) {
			t.Errorf("%s: /readyz %d %q, want %d naming the phase", c.phase, resp.StatusCode, body, c.code)
		}
		want := 0.0
		if c.code == 200 {
			want = 1
		}
		if got := must(t, reg, MetricReady, nil); got != want {
			t.Errorf("%s: %s %v, want %v", c.phase, MetricReady, got, want)
		}
	}
}

// TestServe serves metrics and probes on two ports, and both on one, and refuses a taken
// address.
func TestServe(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := New("served")
	m.Leading(true, 3)
	m.SetPhase(PhaseStandby)
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	storemetrics.Observe("served-test", "get", time.Now(), nil) // a store's operation
	metricsAddr, healthAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	stop, err := m.Serve(metricsAddr, healthAddr, log)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := get("http://" + metricsAddr + PathMetrics); code != 200 ||
		!strings.Contains(body, MetricFencingToken+`{strategy="served"} 3`) ||
		!strings.Contains(body, `strategyops_store_operations_total{backend="served-test",operation="get",result="ok"} 1`) {
		t.Errorf("/metrics: %d, want the runner's and the stores' metrics:\n%s", code, body)
	}
	if code, _ := get("http://" + healthAddr + PathHealthz); code != 200 {
		t.Errorf("/healthz of a standby runner: %d, want 200 (alive)", code)
	}
	if code, _ := get("http://" + healthAddr + PathReadyz); code != 503 {
		t.Errorf("/readyz of a standby runner: %d, want 503", code)
	}
	if code, _ := get("http://" + metricsAddr + PathHealthz); code != 404 {
		t.Errorf("/healthz on the metrics address: %d, want 404", code)
	}
	if _, err := m.Serve(metricsAddr, Off, log); err == nil {
		t.Error("serving on a taken address did not fail")
	}
	stop()
	if _, err := http.Get("http://" + healthAddr + PathHealthz); err == nil {
		t.Error("still serving after stop")
	}

	both := testenv.FreeAddr(t)
	stop, err = New("both").Serve(both, both, log)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, path := range []string{PathMetrics, PathHealthz} {
		if code, _ := get("http://" + both + path); code != 200 {
			t.Errorf("%s on the shared address: %d", path, code)
		}
	}
}
