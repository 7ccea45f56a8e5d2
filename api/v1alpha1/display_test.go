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
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

func TestReadablePrice(t *testing.T) {
	for in, want := range map[float64]string{128.33527530592582: "128.3353", 0.000123456789: "0.0001234568",
		65432.123456: "65432.12", 12345678.9: "12345679", 101.5: "101.5", 100: "100", -2.5: "-2.5", 0: "0"} {
		if got := v1.ReadablePrice(in); got != want {
			t.Errorf("ReadablePrice(%v) = %q, want %q", in, got, want)
		}
	}
}

// TestDisplayFor: the display shows the active signal, else the scheduled one, with its
// trailing levels when it has them, and nothing when neither is set.
func TestDisplayFor(t *testing.T) {
	active := &v1.Signal{Position: v1.PositionLong, PriceOpen: 128.33527530592582, PriceTakeProfit: 130.60000000000002,
		PriceStopLoss: 126.1, TrailingPriceStopLoss: new(127.12345678)}
	scheduled := &v1.Signal{Position: v1.PositionShort, PriceOpen: 99.5, PriceTakeProfit: 98, PriceStopLoss: 101}
	want := v1.StateDisplay{Position: v1.PositionLong, PriceOpen: "128.3353", TakeProfit: "130.6", StopLoss: "127.1235"}
	if got := v1.DisplayFor(active, scheduled); got == nil || *got != want {
		t.Errorf("DisplayFor(active, scheduled) = %+v, want %+v", got, want)
	}
	want = v1.StateDisplay{Position: v1.PositionShort, PriceOpen: "99.5", TakeProfit: "98", StopLoss: "101"}
	if got := v1.DisplayFor(nil, scheduled); got == nil || *got != want {
		t.Errorf("DisplayFor(nil, scheduled) = %+v, want %+v", got, want)
	}
	if got := v1.DisplayFor(nil, nil); got != nil {
		t.Errorf("DisplayFor(nil, nil) = %+v, want nil", got)
	}
}

// TestTheSampleStateShowsItsSignal: the sample StrategyState carries the display its runner
// would write for its signal.
func TestTheSampleStateShowsItsSignal(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "samples",
		"trading_v1alpha1_strategystate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var st v1.StrategyState
	if err := yaml.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	want := v1.DisplayFor(st.Spec.Signal, st.Spec.ScheduledSignal)
	if want == nil || st.Spec.Display == nil || *st.Spec.Display != *want {
		t.Errorf("the sample's display is %+v, its runner would write %+v", st.Spec.Display, want)
	}
}
