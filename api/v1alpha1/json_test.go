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
	"bytes"
	"encoding/json"
	"testing"

	. "github.com/onsi/gomega"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/jsonx"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

func fixture(t *testing.T, name string) []byte { return testenv.Fixture(t, name) }

// TestFixturesAreWrittenBackByteForByte: every value round-trips, and as backtest-kit
// writes JSON.stringify(value), compact, a file the project reads and writes back
// unchanged is the same bytes, key order included (the fixtures were indented after they were captured; compacting them
// gives what the library wrote).
func TestFixturesAreWrittenBackByteForByte(t *testing.T) {
	cases := map[string]func(*testing.T, []byte) []byte{
		"signal-opened.json":                  writeBack[v1.Signal],
		"signal-activated-from-schedule.json": writeBack[v1.Signal],
		"schedule-scheduled.json":             writeBack[v1.Signal],
		"strategy-snapshot.json":              writeBack[v1.StrategySnapshot],
		"partial.json":                        writeBack[v1.PartialData],
		"breakeven.json":                      writeBack[v1.BreakevenData],
		"risk-positions.json":                 writeBack[v1.RiskPositions],
	}
	for name, wb := range cases {
		t.Run(name, func(t *testing.T) {
			var written bytes.Buffer
			if err := json.Compact(&written, fixture(t, name)); err != nil {
				t.Fatal(err)
			}
			if got := wb(t, written.Bytes()); !bytes.Equal(got, written.Bytes()) {
				t.Errorf("written back:\n%s\nbacktest-kit wrote:\n%s", got, written.Bytes())
			}
		})
	}
}

func writeBack[T any](t *testing.T, data []byte) []byte {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decoding: %v", err)
	}
	out, err := jsonx.Marshal(v)
	if err != nil {
		t.Fatalf("encoding: %v", err)
	}
	return out
}

// TestUnknownAndUnderscoreFieldsSurvive: a row with fields this version does not know,
// keys in an order of its own and the two shapes of 19.5.0's _partial items is written
// back byte for byte.
func TestUnknownAndUnderscoreFieldsSurvive(t *testing.T) {
	g := NewWithT(t)
	in := `{"newTopLevel":"kept","id":"a","position":"short","priceOpen":10,"priceTakeProfit":9,"priceStopLoss":11,` +
		`"minuteEstimatedTime":null,"symbol":"X","exchangeName":"e","strategyName":"s","frameName":"",` +
		`"scheduledAt":1,"pendingAt":2,"timestamp":3,"_isScheduled":false,` +
		`"_partial":[{"type":"profit","percent":25,"entryCountAtClose":1,"currentPrice":9.5,"costBasisAtClose":100,` +
		`"timestamp":4},{"type":"loss","percent":10,"currentPrice":10.4,"entryCountAtClose":1,"costBasisAtClose":75,` +
		`"timestamp":5,"later":true}],"_trailingPriceStopLoss":10.5,` +
		`"_trailingPriceTakeProfit":8.9,"_futureField":{"nested":[1,2]},"note":"a < b & c"}`
	var s v1.Signal
	g.Expect(json.Unmarshal([]byte(in), &s)).To(Succeed())
	g.Expect(s.MinuteEstimatedTime).To(BeNil(), "null means unbounded")
	g.Expect(s.Extra).To(HaveKey("_futureField"))
	g.Expect(s.Extra).To(HaveKey("newTopLevel"))
	g.Expect(s.Partial).To(HaveLen(2))
	g.Expect(s.Partial[1].CostBasisAtClose).To(HaveValue(Equal(75.0)))
	out, err := jsonx.Marshal(s)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(out)).To(Equal(in))
}

// TestNewRowsInBacktestKitOrder: a row made here (no order read) is written in the order
// backtest-kit makes one of its kind.
func TestNewRowsInBacktestKitOrder(t *testing.T) {
	g := NewWithT(t)
	for _, c := range []struct {
		name string
		row  v1.Signal
		want []string
	}{
		{"market", v1.Signal{ScheduledAt: 5, PendingAt: 5}, v1.MarketRowKeys},
		{"scheduled", v1.Signal{ScheduledAt: 5, IsScheduled: true}, v1.LimitRowKeys},
		{"activated", v1.Signal{ScheduledAt: 5, PendingAt: 8}, v1.LimitRowKeys},
	} {
		c.row.Entry = []v1.EntryFill{{}}
		c.row.Peak, c.row.Fall = &v1.PriceExtreme{}, &v1.PriceExtreme{}
		c.row.Note, c.row.Cost, c.row.Multiplier, c.row.Isolated = new(""), new(100.0), new(1.0), new(true)
		out, err := jsonx.Marshal(c.row)
		g.Expect(err).NotTo(HaveOccurred())
		keys, err := jsonx.Keys(out)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(keys).To(Equal(c.want), c.name)
	}
}

func TestTypedFieldWinsOverExtra(t *testing.T) {
	g := NewWithT(t)
	var s v1.Signal
	g.Expect(json.Unmarshal(fixture(t, "signal-opened.json"), &s)).To(Succeed())
	s.Extra = map[string]apiextensionsv1.JSON{"priceOpen": {Raw: []byte("1")}}
	out, err := json.Marshal(s)
	g.Expect(err).NotTo(HaveOccurred())
	var back map[string]any
	g.Expect(json.Unmarshal(out, &back)).To(Succeed())
	g.Expect(back["priceOpen"]).To(BeNumerically("==", 100))
}
