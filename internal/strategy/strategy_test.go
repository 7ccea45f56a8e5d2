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

package strategy_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/market"
	"github.com/strategyops/strategy-operator/internal/strategy"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func candles(closes ...float64) []market.Candle {
	out := make([]market.Candle, len(closes))
	for i, c := range closes {
		out[i] = market.Candle{Symbol: "BTCUSDT", Time: t0.Add(time.Duration(i) * time.Minute),
			Open: c, High: c, Low: c, Close: c}
	}
	return out
}

func TestCrossoverProposesOnTheCross(t *testing.T) {
	s, err := strategy.New("indicator", map[string]string{"fast": "2", "slow": "4"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	flat := candles(100, 100, 100, 100, 100)
	if p, _ := s.Propose(ctx, "BTCUSDT", flat); p != nil {
		t.Fatalf("no cross, yet %+v", p)
	}
	up := candles(100, 100, 100, 100, 100, 104)
	p, err := s.Propose(ctx, "BTCUSDT", up)
	if err != nil || p == nil || p.Position != v1.PositionLong {
		t.Fatalf("a rise through the slow average: %+v, %v", p, err)
	}
	if p.TakeProfit <= 104 || p.StopLoss >= 104 || p.PriceOpen != 0 {
		t.Fatalf("long around close 104: %+v", p)
	}
	down := candles(100, 100, 100, 100, 100, 96)
	p, _ = s.Propose(ctx, "BTCUSDT", down)
	if p == nil || p.Position != v1.PositionShort || p.TakeProfit >= 96 || p.StopLoss <= 96 {
		t.Fatalf("a fall: %+v", p)
	}
	if s.Lookback() != 4 {
		t.Fatalf("lookback %d", s.Lookback())
	}
}

func TestCrossoverOptionsAreChecked(t *testing.T) {
	for opts, want := range map[string]string{
		"fast=5,slow=3": "fast < slow",
		"speed=1":       `unknown option "speed"`,
		"fast=x":        `option fast="x"`,
	} {
		m := map[string]string{}
		for kv := range strings.SplitSeq(opts, ",") {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		if _, err := strategy.New("indicator", m); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", opts, err, want)
		}
	}
	if _, err := strategy.New("astrology", nil); err == nil || !strings.Contains(err.Error(), "known: indicator, scripted") {
		t.Errorf("an unknown strategy must list the known ones: %v", err)
	}
}

func TestScriptedEmitsAtItsMinutes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "script.jsonl")
	script := `{"at":"2026-11-25T12:02:30Z","symbol":"BTCUSDT","position":"long","takeProfitPercent":1,"stopLossPercent":2,"note":"now"}

{"at":"2026-11-25T12:03:00Z","position":"short","openPercent":1,"takeProfitPercent":1,"stopLossPercent":1}
`
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := strategy.New("scripted", map[string]string{"file": path})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cs := candles(100, 100, 100, 200)
	if p, _ := s.Propose(ctx, "BTCUSDT", cs[:2]); p != nil {
		t.Fatalf("nothing is scripted at minute 1, got %+v", p)
	}
	p, _ := s.Propose(ctx, "BTCUSDT", cs[:3])
	if p == nil || p.Position != v1.PositionLong || p.TakeProfit != 101 || p.StopLoss != 98 || p.Note != "now" {
		t.Fatalf("minute 2: %+v", p)
	}
	if p, _ := s.Propose(ctx, "ETHUSDT", cs[:3]); p != nil {
		t.Fatalf("minute 2 is for BTCUSDT only, got %+v for ETHUSDT", p)
	}
	p, _ = s.Propose(ctx, "ETHUSDT", cs)
	if p == nil || p.Position != v1.PositionShort || p.PriceOpen != 202 || p.TakeProfit >= 202 || p.StopLoss <= 202 {
		t.Fatalf("minute 3, a short limit entry 1%% above the close: %+v", p)
	}
}

func TestScriptErrorsNameTheLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.jsonl")
	bad := "{\"at\":\"2026-11-25T12:00:00Z\",\"position\":\"long\",\"takeProfitPercent\":1,\"stopLossPercent\":1}\n" +
		"{\"at\":\"2026-11-25T12:01:00Z\",\"position\":\"flat\",\"takeProfitPercent\":1,\"stopLossPercent\":1}\n"
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := strategy.New("scripted", map[string]string{"file": path})
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), `"flat"`) {
		t.Fatalf("got %v", err)
	}
	if _, err := strategy.New("scripted", nil); err == nil || !strings.Contains(err.Error(), "file=PATH") {
		t.Fatalf("a missing file option: %v", err)
	}
}
