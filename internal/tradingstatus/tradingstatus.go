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

// Package tradingstatus tells whether a runner's strategy is trading and, when it is not,
// why: its proposals are refused, its market feed stopped, or it has proposed nothing for
// a while. The runner publishes the status on its Lease (Annotation); the operator shows it
// as the Strategy's Trading condition, with an event for each new cause.
package tradingstatus

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"

	"github.com/strategyops/strategy-operator/internal/handshake"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
)

// Annotation holds the Status on the Lease of the runner that trades.
const Annotation = "trading.strategyops.dev/trading"

// The reasons of a Status.
const (
	// ReasonTrading: every symbol gets candles, and its proposals open signals.
	ReasonTrading = "Trading"
	// ReasonProposalsRefused: the strategy's last proposals on a symbol broke the signal
	// rules (a stop loss too far, a take profit on the wrong side…): nothing opens.
	ReasonProposalsRefused = "ProposalsRefused"
	// ReasonNoCandles: no candle of a symbol was processed for several candles' time: the
	// market feed stopped, or the state store does not answer.
	ReasonNoCandles = "NoCandles"
	// ReasonNoProposals: the strategy proposed nothing on a symbol for Config.Quiet of
	// market time while it held no signal there.
	ReasonNoProposals = "NoProposals"
	// ReasonDrainingAll: every symbol is drained (an identity change, or none left): the
	// runner watches their signals to their close and opens none.
	ReasonDrainingAll = "DrainingAll"
	// ReasonLeaseNotRenewed: the API server did not answer the runner's Lease renewals (a
	// control-plane outage); it stopped trading and stands by to take the Lease again.
	ReasonLeaseNotRenewed = "LeaseNotRenewed"
)

// Reasons are all the reasons, Trading first.
var Reasons = []string{ReasonTrading, ReasonProposalsRefused, ReasonNoCandles, ReasonNoProposals,
	ReasonDrainingAll, ReasonLeaseNotRenewed}

// Status is whether a runner trades, and why not when it does not.
type Status struct {
	// Pod is the UID of the runner's pod: the operator takes the status of the pod it
	// runs now only.
	Pod     string `json:"pod,omitempty"`
	Trading bool   `json:"trading"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// Read is the status recorded on l by the runner of pod pod (its UID); false when l holds
// none, or one of another pod.
func Read(l *coordinationv1.Lease, pod string) (Status, bool, error) {
	var s Status
	if ok, err := handshake.Decode(l, Annotation, &s); !ok || pod == "" {
		return Status{}, false, err
	}
	return s, s.Pod == pod, nil
}

// Config is what a Watch judges by.
type Config struct {
	// Symbols the runner trades (drained ones excluded: they propose nothing by design).
	Symbols []string
	// Refusals is how many refused proposals in a row, with none accepted, stop a symbol
	// trading (DefaultRefusals when 0).
	Refusals int
	// FeedStale is how long a symbol may go without a candle (wall clock) before its feed
	// counts as stopped.
	FeedStale time.Duration
	// Quiet is how much market time a flat symbol may go without a proposal (0: no limit).
	Quiet time.Duration
}

// DefaultRefusals is Config.Refusals when unset: one refusal can be the market moving
// between a proposal and its check; three in a row are the strategy's settings.
const DefaultRefusals = 3

// Watch hears a runner's engine (it implements runner.Observer) and tells its Status. Its
// methods are safe for concurrent use.
type Watch struct {
	cfg Config
	now func() time.Time
	mu  sync.Mutex
	sym map[string]*symbolWatch
}

type symbolWatch struct {
	refused     int       // refused proposals in a row
	refusal     string    // the last refusal's words
	wall        time.Time // wall time of the last candle, or of the watch's start
	candle      time.Time // the last candle (market time)
	active      time.Time // market time of the last proposal, or of the last candle with a signal
	holding     bool      // an open or scheduled signal now
	everCandled bool
}

// New watches symbols (every symbol the runner's engine steps, traded and drained) from
// now on; now is the wall clock (time.Now when nil).
func New(cfg Config, symbols []string, now func() time.Time) *Watch {
	if cfg.Refusals <= 0 {
		cfg.Refusals = DefaultRefusals
	}
	if now == nil {
		now = time.Now
	}
	w := &Watch{cfg: cfg, now: now, sym: map[string]*symbolWatch{}}
	start := now()
	for _, s := range symbols {
		w.sym[s] = &symbolWatch{wall: start}
	}
	return w
}

func (w *Watch) of(symbol string) *symbolWatch {
	s := w.sym[symbol]
	if s == nil {
		s = &symbolWatch{}
		w.sym[symbol] = s
	}
	return s
}

// Signals records whether symbol holds a signal.
func (w *Watch) Signals(symbol string, open, scheduled int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.of(symbol).holding = open+scheduled > 0
}

// Processed records that symbol's candle was processed now.
func (w *Watch) Processed(symbol string, candle time.Time) {
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.of(symbol)
	s.wall, s.candle = now, candle
	if s.holding || !s.everCandled {
		s.active = candle
	}
	s.everCandled = true
}

// Proposed records a proposal of the strategy on symbol at candle, and its refusal (nil
// when it was accepted).
func (w *Watch) Proposed(symbol string, candle time.Time, refused error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.of(symbol)
	s.active = candle
	if refused == nil {
		s.refused, s.refusal = 0, ""
		return
	}
	s.refused++
	s.refusal = refused.Error()
}

// Recorded implements runner.Observer: a ledger event tells nothing more.
func (w *Watch) Recorded(string, domain.HistoryEvent) {}

// StoreChanged implements runner.Observer: a hand edit tells nothing of trading.
func (w *Watch) StoreChanged(string) {}

// Status is the runner's status now: the first of a stopped feed, refused proposals, no
// proposals and every symbol drained that holds, else trading.
func (w *Watch) Status() Status {
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	symbols := make([]string, 0, len(w.sym))
	for s := range w.sym {
		symbols = append(symbols, s)
	}
	slices.Sort(symbols)
	for _, sym := range symbols {
		if s := w.sym[sym]; w.cfg.FeedStale > 0 && now.Sub(s.wall) > w.cfg.FeedStale {
			last := "none yet"
			if s.everCandled {
				last = "the last started at " + s.candle.UTC().Format(time.RFC3339)
			}
			return Status{Reason: ReasonNoCandles, Message: fmt.Sprintf(
				"no candle of %s processed for more than %s (%s): the market feed stopped, or the state store "+
					"does not answer (the runner's log says which)", sym, w.cfg.FeedStale, last)}
		}
	}
	for _, sym := range w.cfg.Symbols {
		if s := w.of(sym); s.refused >= w.cfg.Refusals {
			return Status{Reason: ReasonProposalsRefused, Message: fmt.Sprintf(
				"the strategy's proposals on %s are refused (%d or more in a row, none accepted); the last: %s",
				sym, w.cfg.Refusals, s.refusal)}
		}
	}
	for _, sym := range w.cfg.Symbols {
		s := w.of(sym)
		if w.cfg.Quiet > 0 && s.everCandled && !s.holding && s.candle.Sub(s.active) >= w.cfg.Quiet {
			return Status{Reason: ReasonNoProposals, Message: fmt.Sprintf(
				"the strategy proposed nothing on %s since %s (market time), %s or more", sym,
				s.active.UTC().Format(time.RFC3339), w.cfg.Quiet)}
		}
	}
	if len(w.cfg.Symbols) == 0 {
		return Status{Reason: ReasonDrainingAll, Message: "every symbol is drained: the runner watches their " +
			"signals to their close and opens none"}
	}
	return Status{Trading: true, Reason: ReasonTrading, Message: "trading " + strings.Join(w.cfg.Symbols, ", ")}
}
