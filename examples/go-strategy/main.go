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

// Command go-strategy is a complete, small strategy of a user's own, written against the Go
// SDK (pkg/sdk): a breakout strategy that goes long when the close clears the highest high
// of the last N candles and short when it breaks the lowest low. It runs on
// strategy-operator as a Strategy whose image is this program's (see the Dockerfile):
//
//	spec:
//	  image: registry.example.com/go-strategy:v1
//	  args: [--strategy=breakout, --option=lookback=30]
package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/strategyops/strategy-operator/pkg/sdk"
)

// breakout proposes a signal when the current close leaves the range of the candles before.
type breakout struct {
	lookback     int
	takeProfit   float64 // percent from the entry
	stopLoss     float64 // percent from the entry
	minutesAlive int64
}

func (b breakout) Lookback() int { return b.lookback }

func (b breakout) Propose(_ context.Context, _ string, candles []sdk.Candle) (*sdk.Proposal, error) {
	if len(candles) <= b.lookback {
		return nil, nil // not enough history yet
	}
	before, now := candles[len(candles)-1-b.lookback:len(candles)-1], candles[len(candles)-1]
	high, low := before[0].High, before[0].Low
	for _, c := range before {
		high, low = max(high, c.High), min(low, c.Low)
	}
	minutes := b.minutesAlive
	switch {
	case now.Close > high:
		return &sdk.Proposal{Position: sdk.Long, TakeProfit: now.Close * (1 + b.takeProfit/100),
			StopLoss: now.Close * (1 - b.stopLoss/100), Minutes: &minutes,
			Note: fmt.Sprintf("close %.2f above the %d-minute high %.2f", now.Close, b.lookback, high)}, nil
	case now.Close < low:
		return &sdk.Proposal{Position: sdk.Short, TakeProfit: now.Close * (1 - b.takeProfit/100),
			StopLoss: now.Close * (1 + b.stopLoss/100), Minutes: &minutes,
			Note: fmt.Sprintf("close %.2f below the %d-minute low %.2f", now.Close, b.lookback, low)}, nil
	}
	return nil, nil
}

// newBreakout reads the options: lookback (candles), take-profit and stop-loss (percent).
func newBreakout(opts map[string]string) (sdk.Strategy, error) {
	b := breakout{lookback: 20, takeProfit: 2, stopLoss: 1, minutesAlive: 240}
	for key, v := range opts {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("option %s=%q is not a number", key, v)
		}
		switch key {
		case "lookback":
			b.lookback = int(f)
		case "take-profit":
			b.takeProfit = f
		case "stop-loss":
			b.stopLoss = f
		default:
			return nil, fmt.Errorf("unknown option %q (lookback, take-profit, stop-loss)", key)
		}
	}
	if b.lookback < 1 || b.takeProfit <= 0 || b.stopLoss <= 0 {
		return nil, fmt.Errorf("want lookback ≥ 1 and positive take-profit and stop-loss, got %+v", b)
	}
	return b, nil
}

func main() {
	sdk.Register("breakout", newBreakout)
	sdk.Main()
}
