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

package clock_test

import (
	"testing"
	"time"

	"github.com/strategyops/strategy-operator/internal/clock"
)

func TestScaledRunsFasterAndAgreesAcrossInstances(t *testing.T) {
	origin := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	start := time.Now().Add(-2 * time.Second)
	a := clock.Scaled{Start: start, Origin: origin, Factor: 600}
	b := clock.Scaled{Start: start, Origin: origin, Factor: 600}
	elapsed := a.Now().Sub(origin)
	if elapsed < 20*time.Minute || elapsed > 30*time.Minute {
		t.Fatalf("2 s of wall time at 600x read as %s, want about 20 min", elapsed)
	}
	if d := b.Now().Sub(a.Now()).Abs(); d > time.Minute {
		t.Fatalf("two clocks with the same start disagree by %s", d)
	}
	wall := time.Now()
	if !a.Sleep(10*time.Minute, nil) {
		t.Fatal("sleep did not complete")
	}
	if w := time.Since(wall); w < 900*time.Millisecond || w > 3*time.Second {
		t.Fatalf("10 simulated minutes at 600x took %s of wall time, want about 1 s", w)
	}
}

func TestSleepStopsWhenDone(t *testing.T) {
	done := make(chan struct{})
	close(done)
	if (clock.Real{}).Sleep(time.Hour, done) {
		t.Fatal("a closed done must end the sleep at once")
	}
	m := clock.NewManual(time.Unix(0, 0))
	if m.Sleep(time.Minute, done) || !m.Now().Equal(time.Unix(0, 0)) {
		t.Fatal("a stopped manual sleep must not move the clock")
	}
	if !m.Sleep(time.Minute, nil) || !m.Now().Equal(time.Unix(60, 0)) {
		t.Fatalf("manual clock reads %s after sleeping a minute", m.Now())
	}
}
