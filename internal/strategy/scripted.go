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
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/market"
)

// ScriptLine is one line of a script file (JSON lines): at minute At, on Symbol (every
// symbol when empty), propose this signal. Prices are percentages of the close at that
// minute; PriceOpen zero opens at once, otherwise it is a limit entry that far from it.
type ScriptLine struct {
	At                  time.Time `json:"at"`
	Symbol              string    `json:"symbol,omitempty"`
	Position            string    `json:"position"`
	OpenPercent         float64   `json:"openPercent,omitempty"`
	TakeProfitPercent   float64   `json:"takeProfitPercent"`
	StopLossPercent     float64   `json:"stopLossPercent"`
	MinuteEstimatedTime *int64    `json:"minuteEstimatedTime,omitempty"`
	Note                string    `json:"note,omitempty"`
}

// Script emits the signals a file lists, at their minutes.
type Script struct {
	lines map[int64][]ScriptLine // minute (Unix seconds) -> lines
}

func init() {
	Register("scripted", func(opts map[string]string) (Strategy, error) {
		path := opts["file"]
		if path == "" {
			return nil, fmt.Errorf("scripted: option file=PATH is required")
		}
		return LoadScript(path)
	})
}

// LoadScript reads a script file; an error names the line.
func LoadScript(path string) (*Script, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("scripted: %w", err)
	}
	defer func() { _ = f.Close() }()
	s := &Script{lines: map[int64][]ScriptLine{}}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var l ScriptLine
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			return nil, fmt.Errorf("scripted: %s line %d: %w", path, n, err)
		}
		if l.Position != string(v1.PositionLong) && l.Position != string(v1.PositionShort) {
			return nil, fmt.Errorf("scripted: %s line %d: position must be \"long\" or \"short\", got %q", path, n, l.Position)
		}
		if l.TakeProfitPercent <= 0 || l.StopLossPercent <= 0 {
			return nil, fmt.Errorf("scripted: %s line %d: takeProfitPercent and stopLossPercent must be positive", path, n)
		}
		minute := l.At.Truncate(time.Minute).Unix()
		s.lines[minute] = append(s.lines[minute], l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scripted: %s: %w", path, err)
	}
	return s, nil
}

// Lookback implements Strategy.
func (*Script) Lookback() int { return 0 }

// Propose implements Strategy.
func (s *Script) Propose(_ context.Context, symbol string, candles []market.Candle) (*Proposal, error) {
	if len(candles) == 0 {
		return nil, nil
	}
	cur := candles[len(candles)-1]
	for _, l := range s.lines[cur.Time.Unix()] {
		if l.Symbol != "" && l.Symbol != symbol {
			continue
		}
		ref := cur.Close
		p := &Proposal{Position: v1.Position(l.Position), Minutes: l.MinuteEstimatedTime, Note: l.Note}
		sign := 1.0
		if p.Position == v1.PositionShort {
			sign = -1
		}
		if l.OpenPercent != 0 {
			ref *= 1 - sign*l.OpenPercent/100 // a limit entry below (long) or above (short) the close
			p.PriceOpen = ref
		}
		p.TakeProfit = ref * (1 + sign*l.TakeProfitPercent/100)
		p.StopLoss = ref * (1 - sign*l.StopLossPercent/100)
		return p, nil
	}
	return nil, nil
}
