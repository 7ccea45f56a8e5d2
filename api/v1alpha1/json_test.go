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
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "test", "fixtures", "backtest-kit", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// roundTrip decodes data into a fresh T, encodes it again and returns the encoding.
func roundTrip[T any](t *testing.T, data []byte) []byte {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decoding: %v", err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encoding: %v", err)
	}
	return out
}

func TestFixturesRoundTrip(t *testing.T) {
	cases := map[string]func(*testing.T, []byte) []byte{
		"signal-opened.json":                  roundTrip[v1.Signal],
		"signal-activated-from-schedule.json": roundTrip[v1.Signal],
		"schedule-scheduled.json":             roundTrip[v1.Signal],
		"strategy-snapshot.json":              roundTrip[v1.StrategySnapshot],
		"partial.json":                        roundTrip[v1.PartialData],
		"breakeven.json":                      roundTrip[v1.BreakevenData],
		"risk-positions.json":                 roundTrip[v1.RiskPositions],
	}
	for name, rt := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			in := fixture(t, name)
			g.Expect(rt(t, in)).To(MatchJSON(in))
		})
	}
}

func TestUnknownAndUnderscoreFieldsSurvive(t *testing.T) {
	g := NewWithT(t)
	in := `{"id":"a","position":"short","priceOpen":10,"priceTakeProfit":9,"priceStopLoss":11,
		"minuteEstimatedTime":null,"symbol":"X","exchangeName":"e","strategyName":"s","frameName":"",
		"scheduledAt":1,"pendingAt":2,"timestamp":3,"_isScheduled":false,
		"_partial":[{"type":"profit","percent":25,"price":9.5}],"_trailingPriceStopLoss":10.5,
		"_trailingPriceTakeProfit":8.9,"_futureField":{"nested":[1,2]},"newTopLevel":"kept"}`
	var s v1.Signal
	g.Expect(json.Unmarshal([]byte(in), &s)).To(Succeed())
	g.Expect(s.MinuteEstimatedTime).To(BeNil(), "null means unbounded")
	g.Expect(s.Extra).To(HaveKey("_futureField"))
	g.Expect(s.Extra).To(HaveKey("newTopLevel"))
	out, err := json.Marshal(s)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(MatchJSON(in))
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
