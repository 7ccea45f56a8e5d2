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
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// CSV is a candle file: a header line, then one line per minute with the columns
// timestamp (Unix milliseconds or RFC 3339), open, high, low, close and, optionally,
// volume and symbol. A file without a symbol column serves every symbol.
type CSV struct {
	candles map[string]map[int64]Candle // symbol ("" for any) -> minute -> candle
}

var _ Source = (*CSV)(nil)

// LoadCSV reads path. An error names the line and the column at fault.
func LoadCSV(path string) (*CSV, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	c, err := ReadCSV(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ReadCSV reads candles from r (see CSV).
func ReadCSV(r io.Reader) (*CSV, error) {
	rd := csv.NewReader(r)
	rd.TrimLeadingSpace = true
	header, err := rd.Read()
	if err != nil {
		return nil, fmt.Errorf("reading the header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	for _, need := range []string{"timestamp", "open", "high", "low", "close"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("header %v has no %q column", header, need)
		}
	}
	out := &CSV{candles: map[string]map[int64]Candle{}}
	for line := 2; ; line++ {
		rec, err := rd.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		c, err := parseRecord(rec, col)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if out.candles[c.Symbol] == nil {
			out.candles[c.Symbol] = map[int64]Candle{}
		}
		out.candles[c.Symbol][c.Time.Unix()] = c
	}
}

func parseRecord(rec []string, col map[string]int) (Candle, error) {
	field := func(name string) (string, bool) {
		i, ok := col[name]
		if !ok || i >= len(rec) {
			return "", false
		}
		return strings.TrimSpace(rec[i]), true
	}
	var c Candle
	ts, _ := field("timestamp")
	t, err := parseTime(ts)
	if err != nil {
		return c, fmt.Errorf("column timestamp: %w", err)
	}
	c.Time = t.Truncate(time.Minute)
	c.Symbol, _ = field("symbol")
	for _, f := range []struct {
		name string
		dst  *float64
		need bool
	}{{"open", &c.Open, true}, {"high", &c.High, true}, {"low", &c.Low, true}, {"close", &c.Close, true},
		{"volume", &c.Volume, false}} {
		s, ok := field(f.name)
		if !ok || s == "" {
			if f.need {
				return c, fmt.Errorf("column %s is empty", f.name)
			}
			continue
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v < 0 || v != v {
			return c, fmt.Errorf("column %s: %q is not a price", f.name, s)
		}
		*f.dst = v
	}
	if c.Low > c.High || c.Open > c.High || c.Close > c.High || c.Open < c.Low || c.Close < c.Low {
		return c, fmt.Errorf("open %v and close %v must lie between low %v and high %v", c.Open, c.Close, c.Low, c.High)
	}
	return c, nil
}

func parseTime(s string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, fmt.Errorf("%q is neither Unix milliseconds nor RFC 3339", s)
	}
	return t.UTC(), nil
}

// Candle implements Source.
func (c *CSV) Candle(_ context.Context, symbol string, minute time.Time) (Candle, error) {
	key := minute.Truncate(time.Minute).Unix()
	for _, s := range []string{symbol, ""} {
		if cd, ok := c.candles[s][key]; ok {
			cd.Symbol = symbol
			return cd, nil
		}
	}
	return Candle{}, fmt.Errorf("%w for %s at %s", ErrNoData, symbol, minute.Truncate(time.Minute).Format(time.RFC3339))
}
