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

package tradingstatus_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strategyops/strategy-operator/internal/tradingstatus"
)

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// clock is a wall clock the test moves.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func watch(cfg tradingstatus.Config, symbols ...string) (*tradingstatus.Watch, *clock) {
	c := &clock{now: t0}
	return tradingstatus.New(cfg, symbols, c.Now), c
}

func want(t *testing.T, w *tradingstatus.Watch, reason, words string) {
	t.Helper()
	st := w.Status()
	if st.Reason != reason || st.Trading != (reason == tradingstatus.ReasonTrading) || !strings.Contains(st.Message, words) {
		t.Fatalf("status %+v, want reason %s with %q", st, reason, words)
	}
}

func TestRefusedProposalsInARowStopTrading(t *testing.T) {
	w, _ := watch(tradingstatus.Config{Symbols: []string{"BTCUSDT", "ETHUSDT"}}, "BTCUSDT", "ETHUSDT")
	tooFar := errors.New("stop loss too far: the maximum distance is 20%")
	for i := range tradingstatus.DefaultRefusals - 1 {
		w.Proposed("ETHUSDT", t0.Add(time.Duration(i)*time.Minute), tooFar)
	}
	want(t, w, tradingstatus.ReasonTrading, "trading BTCUSDT, ETHUSDT") // the market can move between proposal and check
	w.Proposed("ETHUSDT", t0.Add(time.Hour), tooFar)
	want(t, w, tradingstatus.ReasonProposalsRefused, "on ETHUSDT are refused (3 or more in a row, none accepted); "+
		"the last: stop loss too far")
	w.Proposed("BTCUSDT", t0.Add(time.Hour), nil)
	want(t, w, tradingstatus.ReasonProposalsRefused, "ETHUSDT") // another symbol's success changes nothing
	w.Proposed("ETHUSDT", t0.Add(2*time.Hour), nil)
	want(t, w, tradingstatus.ReasonTrading, "trading")
}

func TestNoCandleForLongIsAStoppedFeed(t *testing.T) {
	w, c := watch(tradingstatus.Config{Symbols: []string{"BTCUSDT"}, FeedStale: 2 * time.Minute}, "BTCUSDT")
	c.now = t0.Add(2 * time.Minute)
	want(t, w, tradingstatus.ReasonTrading, "trading") // not more than FeedStale yet
	c.now = t0.Add(2*time.Minute + time.Second)
	want(t, w, tradingstatus.ReasonNoCandles, "no candle of BTCUSDT processed for more than 2m0s (none yet)")
	w.Processed("BTCUSDT", t0)
	want(t, w, tradingstatus.ReasonTrading, "trading")
	c.now = c.now.Add(5 * time.Minute)
	want(t, w, tradingstatus.ReasonNoCandles, "the last started at 2026-11-01T00:00:00Z")
}

func TestNothingProposedForQuietAfter(t *testing.T) {
	w, _ := watch(tradingstatus.Config{Symbols: []string{"BTCUSDT"}, Quiet: time.Hour}, "BTCUSDT")
	candle := func(m int) { w.Processed("BTCUSDT", t0.Add(time.Duration(m)*time.Minute)) }
	candle(0)
	candle(59)
	want(t, w, tradingstatus.ReasonTrading, "trading")
	candle(60)
	want(t, w, tradingstatus.ReasonNoProposals, "proposed nothing on BTCUSDT since 2026-11-01T00:00:00Z")
	w.Proposed("BTCUSDT", t0.Add(60*time.Minute), nil)
	want(t, w, tradingstatus.ReasonTrading, "trading")

	// A symbol holding a signal proposes nothing by design: its quiet time starts at its close.
	w.Signals("BTCUSDT", 1, 0)
	for m := 61; m <= 300; m++ {
		candle(m)
	}
	want(t, w, tradingstatus.ReasonTrading, "trading")
	w.Signals("BTCUSDT", 0, 0)
	candle(359)
	want(t, w, tradingstatus.ReasonTrading, "trading")
	candle(360)
	want(t, w, tradingstatus.ReasonNoProposals, "since 2026-11-01T05:00:00Z")

	off, _ := watch(tradingstatus.Config{Symbols: []string{"BTCUSDT"}}, "BTCUSDT")
	off.Processed("BTCUSDT", t0)
	off.Processed("BTCUSDT", t0.Add(30*24*time.Hour))
	want(t, off, tradingstatus.ReasonTrading, "trading") // Quiet 0: never
}

func TestDrainedSymbolsAreNotJudgedForProposals(t *testing.T) {
	w, _ := watch(tradingstatus.Config{Symbols: []string{"BTCUSDT"}, Quiet: time.Hour}, "BTCUSDT", "ETHUSDT")
	w.Processed("ETHUSDT", t0)
	w.Processed("ETHUSDT", t0.Add(48*time.Hour))
	w.Processed("BTCUSDT", t0.Add(48*time.Hour))
	want(t, w, tradingstatus.ReasonTrading, "trading BTCUSDT")

	all, _ := watch(tradingstatus.Config{}, "BTCUSDT")
	want(t, all, tradingstatus.ReasonDrainingAll, "every symbol is drained")
}

func TestReadTakesOnlyThePodsOwnStatus(t *testing.T) {
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "l", Annotations: map[string]string{
		tradingstatus.Annotation: `{"pod":"new","trading":false,"reason":"NoCandles","message":"m"}`}}}
	if st, ok, err := tradingstatus.Read(l, "new"); err != nil || !ok || st.Reason != tradingstatus.ReasonNoCandles {
		t.Errorf("Read of the pod's own status: %+v %v %v", st, ok, err)
	}
	if _, ok, err := tradingstatus.Read(l, "old"); err != nil || ok {
		t.Errorf("Read for another pod: %v %v, want nothing", ok, err)
	}
	l.Annotations[tradingstatus.Annotation] = "{"
	if _, _, err := tradingstatus.Read(l, "new"); err == nil || !strings.Contains(err.Error(), tradingstatus.Annotation) {
		t.Errorf("a broken annotation: %v, want an error naming it", err)
	}
}
