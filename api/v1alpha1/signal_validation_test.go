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

package v1alpha1_test

import (
	"errors"
	"math"
	"testing"

	. "github.com/onsi/gomega"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
)

func TestValidateSignal(t *testing.T) {
	num := func(v float64) *float64 { return &v }
	mins := func(v int64) *int64 { return &v }
	cases := []struct {
		name   string
		mutate func(*v1.Signal)
		price  *float64
		want   []string
	}{
		{"valid", func(*v1.Signal) {}, num(100.2), nil},
		{"position", func(s *v1.Signal) { s.Position = "flat" }, nil, []string{`position must be "long" or "short", got "flat"`}},
		{"NaN", func(s *v1.Signal) { s.PriceOpen = math.NaN() }, nil, []string{"priceOpen must be a finite number, got NaN"}},
		{"infinite", func(s *v1.Signal) { s.PriceStopLoss = math.Inf(1) }, nil, []string{"priceStopLoss must be a finite number"}},
		{"zero", func(s *v1.Signal) { s.PriceTakeProfit = 0 }, nil, []string{"priceTakeProfit must be positive, got 0"}},
		{"long order", func(s *v1.Signal) { s.PriceTakeProfit, s.PriceStopLoss = 99, 101 }, nil, []string{
			"Long: priceTakeProfit must be > priceOpen (99 <= 100)", "Long: priceStopLoss must be < priceOpen (101 >= 100)"}},
		{"short order", func(s *v1.Signal) { s.Position = v1.PositionShort }, nil, []string{
			"Short: priceTakeProfit must be < priceOpen", "Short: priceStopLoss must be > priceOpen"}},
		{"tp too close", func(s *v1.Signal) { s.PriceTakeProfit = 100.1 }, nil, []string{"take profit too close to priceOpen (0.100%)"}},
		{"sl too far", func(s *v1.Signal) { s.PriceStopLoss = 70 }, nil, []string{"stop loss too far from priceOpen (30.000%)"}},
		{"lifetime", func(s *v1.Signal) { s.MinuteEstimatedTime = mins(0) }, nil, []string{"minuteEstimatedTime must be a positive integer"}},
		{"lifetime max", func(s *v1.Signal) { s.MinuteEstimatedTime = mins(2000) }, nil, []string{"exceeds the maximum of 1440 minutes"}},
		{"unbounded ok", func(s *v1.Signal) { s.MinuteEstimatedTime = nil }, nil, nil},
		{"multiplier", func(s *v1.Signal) { s.Multiplier = num(-1) }, nil, []string{"multiplier must be positive, got -1"}},
		{"past stop loss", func(*v1.Signal) {}, num(98), []string{"Long: currentPrice (98) <= priceStopLoss (98.5)"}},
		{"past take profit", func(*v1.Signal) {}, num(102), []string{"Long: currentPrice (102) >= priceTakeProfit (101.5)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			s := decodeSignal(t, "signal-opened.json")
			tc.mutate(s)
			err := v1.ValidateSignal(s, v1.DefaultSignalLimits, tc.price)
			if tc.want == nil {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(errors.Is(err, v1.ErrInvalidSignal)).To(BeTrue())
			var se *v1.SignalError
			g.Expect(errors.As(err, &se)).To(BeTrue())
			g.Expect(se.Problems).To(HaveLen(len(tc.want)), "all problems reported together: %v", se.Problems)
			for _, w := range tc.want {
				g.Expect(err.Error()).To(ContainSubstring(w))
			}
			g.Expect(err.Error()).To(ContainSubstring(s.ID))
		})
	}
}
