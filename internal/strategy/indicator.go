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

package strategy

import (
	"context"
	"fmt"
	"strconv"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/market"
)

// Crossover is a moving-average crossover: when the fast average of closes crosses above
// the slow one it proposes a long, when it crosses below a short, with take profit and
// stop loss a fixed percentage from the close.
type Crossover struct {
	Fast, Slow           int
	TakeProfit, StopLoss float64 // percent
	Minutes              int64
}

func init() {
	Register("indicator", func(opts map[string]string) (Strategy, error) {
		c := Crossover{Fast: 5, Slow: 20, TakeProfit: 1.5, StopLoss: 1, Minutes: 120}
		for k, v := range opts {
			var err error
			switch k {
			case "fast":
				c.Fast, err = strconv.Atoi(v)
			case "slow":
				c.Slow, err = strconv.Atoi(v)
			case "take-profit":
				c.TakeProfit, err = strconv.ParseFloat(v, 64)
			case "stop-loss":
				c.StopLoss, err = strconv.ParseFloat(v, 64)
			case "minutes":
				c.Minutes, err = strconv.ParseInt(v, 10, 64)
			default:
				return nil, fmt.Errorf("indicator: unknown option %q (fast, slow, take-profit, stop-loss, minutes)", k)
			}
			if err != nil {
				return nil, fmt.Errorf("indicator: option %s=%q: %w", k, v, err)
			}
		}
		if c.Fast < 1 || c.Slow <= c.Fast || c.TakeProfit <= 0 || c.StopLoss <= 0 || c.Minutes < 1 {
			return nil, fmt.Errorf("indicator: want 1 <= fast < slow and positive take-profit, stop-loss and minutes, got %+v", c)
		}
		return c, nil
	})
}

// Lookback implements Strategy.
func (c Crossover) Lookback() int { return c.Slow }

func mean(cs []market.Candle) float64 {
	sum := 0.0
	for _, c := range cs {
		sum += c.Close
	}
	return sum / float64(len(cs))
}

// Propose implements Strategy.
func (c Crossover) Propose(_ context.Context, _ string, candles []market.Candle) (*Proposal, error) {
	n := len(candles)
	if n < c.Slow+1 {
		return nil, nil
	}
	now, before := candles[n-c.Slow:], candles[n-1-c.Slow:n-1]
	fastNow, slowNow := mean(now[len(now)-c.Fast:]), mean(now)
	fastBefore, slowBefore := mean(before[len(before)-c.Fast:]), mean(before)
	price := candles[n-1].Close
	minutes := c.Minutes
	switch {
	case fastBefore <= slowBefore && fastNow > slowNow:
		return &Proposal{Position: v1.PositionLong, TakeProfit: price * (1 + c.TakeProfit/100),
			StopLoss: price * (1 - c.StopLoss/100), Minutes: &minutes, Note: "fast average crossed above slow"}, nil
	case fastBefore >= slowBefore && fastNow < slowNow:
		return &Proposal{Position: v1.PositionShort, TakeProfit: price * (1 - c.TakeProfit/100),
			StopLoss: price * (1 + c.StopLoss/100), Minutes: &minutes, Note: "fast average crossed below slow"}, nil
	}
	return nil, nil
}
