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

package market_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strategyops/strategy-operator/internal/market"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestSimulatedIsAPureFunctionOfTime(t *testing.T) {
	ctx := context.Background()
	m := market.Simulated{Seed: 42}
	a, _ := m.Candle(ctx, "BTCUSDT", t0.Add(37*time.Minute+12*time.Second))
	// asked again, later, in another order, by another value: the same candle
	for i := 100; i > 0; i-- {
		_, _ = m.Candle(ctx, "BTCUSDT", t0.Add(time.Duration(i)*time.Minute))
	}
	b, _ := market.Simulated{Seed: 42}.Candle(ctx, "BTCUSDT", t0.Add(37*time.Minute))
	if a != b {
		t.Fatalf("same minute, different candles:\n%+v\n%+v", a, b)
	}
	if !a.Time.Equal(t0.Add(37 * time.Minute)) {
		t.Fatalf("candle time %s is not the start of the minute", a.Time)
	}
	other, _ := market.Simulated{Seed: 43}.Candle(ctx, "BTCUSDT", t0.Add(37*time.Minute))
	eth, _ := m.Candle(ctx, "ETHUSDT", t0.Add(37*time.Minute))
	if other.Close == a.Close || eth.Close == a.Close {
		t.Fatal("another seed or symbol gives the same prices")
	}
}

func TestSimulatedCandlesAreConsistentAndMove(t *testing.T) {
	ctx := context.Background()
	m := market.Simulated{Seed: 7}
	lo, hi := 1e18, 0.0
	prev, _ := m.Candle(ctx, "BTCUSDT", t0)
	for i := 1; i < 24*60; i++ {
		c, err := m.Candle(ctx, "BTCUSDT", t0.Add(time.Duration(i)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if c.Low > min(c.Open, c.Close) || c.High < max(c.Open, c.Close) || c.Low <= 0 {
			t.Fatalf("minute %d: inconsistent candle %+v", i, c)
		}
		if c.Open != prev.Close {
			t.Fatalf("minute %d opens at %v, the last closed at %v", i, c.Open, prev.Close)
		}
		lo, hi = min(lo, c.Low), max(hi, c.High)
		prev = c
	}
	if (hi-lo)/lo < 0.02 {
		t.Fatalf("a day moved only %.2f%%: too flat to trigger anything", (hi-lo)/lo*100)
	}
}

const sample = `timestamp,open,high,low,close,volume
1795643580000,100,101,99.5,100.5,10
2026-11-25T12:01:00Z,100.5,102,100,101.8,
`

func TestCSV(t *testing.T) {
	ctx := context.Background()
	src, err := market.ReadCSV(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	c, err := src.Candle(ctx, "BTCUSDT", time.UnixMilli(1795643580000).Add(30*time.Second))
	if err != nil || c.Close != 100.5 || c.Volume != 10 || c.Symbol != "BTCUSDT" {
		t.Fatalf("got %+v, %v", c, err)
	}
	c, err = src.Candle(ctx, "ETHUSDT", t0.Add(time.Minute))
	if err != nil || c.High != 102 {
		t.Fatalf("got %+v, %v", c, err)
	}
	_, err = src.Candle(ctx, "BTCUSDT", t0.Add(time.Hour))
	if !errors.Is(err, market.ErrNoData) {
		t.Fatalf("a missing minute: %v, want ErrNoData", err)
	}
}

func TestCSVErrorsNameLineAndColumn(t *testing.T) {
	for in, want := range map[string]string{
		"time,open,high,low,close\n":                            `no "timestamp" column`,
		"timestamp,open,high,low,close\n1,2,3,1,x\n":            "line 2: column close",
		"timestamp,open,high,low,close\nyesterday,1,1,1,1\n":    "line 2: column timestamp",
		"timestamp,open,high,low,close\n1,1,1,1,1\n2,5,3,1,2\n": "line 3: open 5 and close 2 must lie between",
	} {
		_, err := market.ReadCSV(strings.NewReader(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want it to say %q", in, err, want)
		}
	}
}
