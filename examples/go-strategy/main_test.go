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

package main

import (
	"testing"

	"github.com/strategyops/strategy-operator/pkg/sdk"
)

// flat is n candles closing at 100, ranging from 99 to 101.
func flat(n int) []sdk.Candle {
	out := make([]sdk.Candle, n)
	for i := range out {
		out[i] = sdk.Candle{Open: 100, High: 101, Low: 99, Close: 100}
	}
	return out
}

// TestBreakout: a close above the range goes long, below it short, inside it nothing; the
// prices follow the options.
func TestBreakout(t *testing.T) {
	s, err := newBreakout(map[string]string{"lookback": "5", "take-profit": "2", "stop-loss": "1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	inside := append(flat(5), sdk.Candle{Close: 100.5, High: 100.5, Low: 100})
	if p, err := s.Propose(ctx, "BTCUSDT", inside); err != nil || p != nil {
		t.Fatalf("inside the range: %+v, %v", p, err)
	}
	up := append(flat(5), sdk.Candle{Close: 110, High: 110, Low: 100})
	p, err := s.Propose(ctx, "BTCUSDT", up)
	if err != nil || p == nil || p.Position != sdk.Long || p.TakeProfit != 110*1.02 || p.StopLoss != 110*0.99 {
		t.Fatalf("above the range: %+v, %v", p, err)
	}
	down := append(flat(5), sdk.Candle{Close: 90, High: 100, Low: 90})
	if p, err := s.Propose(ctx, "BTCUSDT", down); err != nil || p == nil || p.Position != sdk.Short {
		t.Fatalf("below the range: %+v, %v", p, err)
	}
	if p, err := s.Propose(ctx, "BTCUSDT", flat(3)); err != nil || p != nil {
		t.Fatalf("too little history: %+v, %v", p, err)
	}
	if _, err := newBreakout(map[string]string{"lookback": "x"}); err == nil {
		t.Fatal("a lookback that is not a number was accepted")
	}
}
