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

package market

import (
	"context"
	"hash/fnv"
	"math"
	"time"
)

// Simulated is a deterministic market: every symbol's price is a pure function of the
// seed, the symbol and the time — a base price moved by slow and fast waves and by noise
// hashed from the minute. Nothing is random at run time, so any minute can be asked for in
// any order and always gives the same candle.
type Simulated struct {
	Seed uint64
	// Base is the price around which symbols move; 100 when zero.
	Base float64
	// Volatility scales the moves; 0.02 (2 %) when zero.
	Volatility float64
}

var _ Source = Simulated{}

func (m Simulated) base() float64 {
	if m.Base == 0 {
		return 100
	}
	return m.Base
}

func (m Simulated) vol() float64 {
	if m.Volatility == 0 {
		return 0.02
	}
	return m.Volatility
}

// hash01 maps its inputs to [0, 1).
func hash01(seed uint64, symbol string, n int64, salt byte) float64 {
	h := fnv.New64a()
	var b [17]byte
	for i := range 8 {
		b[i] = byte(seed >> (8 * i))
		b[8+i] = byte(uint64(n) >> (8 * i))
	}
	b[16] = salt
	_, _ = h.Write(b[:])
	_, _ = h.Write([]byte(symbol))
	return float64(h.Sum64()>>11) / float64(1<<53)
}

// Price is the price of symbol at t (to the second).
func (m Simulated) Price(symbol string, t time.Time) float64 {
	sec := t.Unix()
	phase := hash01(m.Seed, symbol, 0, 'p') * 2 * math.Pi
	scale := m.base() * (0.5 + hash01(m.Seed, symbol, 0, 'b')) // each symbol its own level
	minutes := float64(sec) / 60
	slow := math.Sin(2*math.Pi*minutes/(24*60) + phase)
	fast := math.Sin(2*math.Pi*minutes/90 + 2*phase)
	noise := hash01(m.Seed, symbol, sec/10, 'n')*2 - 1 // changes every 10 s
	return scale * math.Exp(m.vol()*(2*slow+fast+0.5*noise))
}

// Candle implements Source: open, close, high and low of the prices sampled every 10 s.
func (m Simulated) Candle(_ context.Context, symbol string, minute time.Time) (Candle, error) {
	start := minute.Truncate(time.Minute)
	c := Candle{Symbol: symbol, Time: start, Open: m.Price(symbol, start), Low: math.Inf(1), High: math.Inf(-1)}
	for s := time.Duration(0); s <= time.Minute; s += 10 * time.Second {
		p := m.Price(symbol, start.Add(s))
		c.High, c.Low = max(c.High, p), min(c.Low, p)
	}
	c.Close = m.Price(symbol, start.Add(time.Minute))
	c.Volume = 1000 * (1 + hash01(m.Seed, symbol, start.Unix(), 'v'))
	return c, nil
}
