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

// Package runnermetrics is what a runner tells about itself over HTTP: Prometheus metrics
// (strategyops_runner_*, beside the stores' strategyops_store_*) on /metrics, and whether it
// is alive (/healthz) and ready (/readyz: restored and trading under the Lease).
//
// Whether a strategy is actually trading shows in strategyops_runner_seconds_since_last_candle
// (computed at scrape time), its open and scheduled signals, the ledger events and realised
// PnL of the signals it closed, and its Lease's fencing token.
package runnermetrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strategyops/strategy-operator/internal/persist/domain"
)

// The runner's metrics.
const (
	MetricSecondsSinceLastCandle = "strategyops_runner_seconds_since_last_candle"
	MetricLastCandle             = "strategyops_runner_last_candle_timestamp_seconds"
	MetricOpenSignals            = "strategyops_runner_open_signals"
	MetricScheduledSignals       = "strategyops_runner_scheduled_signals"
	MetricSignalEvents           = "strategyops_runner_signal_events_total"
	MetricRealizedPnLPercent     = "strategyops_runner_realized_pnl_percent"
	MetricRealizedPnLQuote       = "strategyops_runner_realized_pnl_quote"
	MetricWriteConflicts         = "strategyops_runner_write_conflicts_total"
	MetricFencingToken           = "strategyops_runner_fencing_token"
	MetricLeaseHeld              = "strategyops_runner_lease_held"
	MetricReady                  = "strategyops_runner_ready"
	MetricProposals              = "strategyops_runner_proposals_total"
	MetricTrading                = "strategyops_runner_trading"
)

// Label names.
const (
	labelStrategy = "strategy"
	labelSymbol   = "symbol"
	labelEvent    = "event"
	labelReason   = "reason"
	labelOutcome  = "outcome"
)

// Phase is where a runner is in its life; only PhaseTrading is ready.
type Phase string

// A runner's phases, in order.
const (
	PhaseStarting  Phase = "starting"
	PhaseStandby   Phase = "waiting for the Lease"
	PhaseRestoring Phase = "restoring the state"
	PhaseTrading   Phase = "trading"
	PhaseStopping  Phase = "stopping"
)

// Metrics are one runner's metrics and phase. Its methods are safe for concurrent use.
type Metrics struct {
	strategy string
	reg      *prometheus.Registry
	phase    atomic.Pointer[Phase]
	token    prometheus.Gauge
	held     prometheus.Gauge
	ready    prometheus.Gauge
	trading  *prometheus.GaugeVec
	now      func() time.Time // time.Now; tests set it
}

// New returns the metrics of a runner of strategy (its strategyName), in PhaseStarting.
func New(strategy string) *Metrics {
	m := &Metrics{strategy: strategy, reg: prometheus.NewRegistry(), now: time.Now}
	labels := prometheus.Labels{labelStrategy: strategy}
	m.token = prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricFencingToken, ConstLabels: labels,
		Help: "The fencing token this runner writes with, bound to its holding of the strategy's Lease " +
			"(absent until it holds it, and on the File backend, whose folder lock has none)."})
	m.held = prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricLeaseHeld, ConstLabels: labels,
		Help: "1 while this runner holds the strategy's Lease (on File: its folder's lock), else 0."})
	m.ready = prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricReady, ConstLabels: labels,
		Help: "1 while the runner is ready (restored and trading under the Lease, as /readyz), else 0."})
	m.trading = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricTrading, ConstLabels: labels,
		Help: "1 for the reason the runner trades or does not (Trading, ProposalsRefused, NoCandles, " +
			"NoProposals, DrainingAll, LeaseNotRenewed), 0 for the others; absent until its engine runs."}, []string{labelReason})
	m.reg.MustRegister(m.held, m.ready)
	m.SetPhase(PhaseStarting)
	return m
}

// Trading records why the runner trades or does not: reason (one of reasons) is 1, the
// others 0.
func (m *Metrics) Trading(reason string, reasons []string) {
	_ = m.reg.Register(m.trading) // once; already registered is fine
	for _, r := range reasons {
		v := 0.0
		if r == reason {
			v = 1
		}
		m.trading.WithLabelValues(r).Set(v)
	}
}

// Registry is where the runner's own metrics are registered.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// SetPhase records where the runner is.
func (m *Metrics) SetPhase(p Phase) {
	m.phase.Store(&p)
	if p == PhaseTrading {
		m.ready.Set(1)
	} else {
		m.ready.Set(0)
	}
}

// Phase is where the runner is.
func (m *Metrics) Phase() Phase { return *m.phase.Load() }

// Leading records that the runner holds the Lease with fencing token (0: none, the File
// backend's folder lock), or (held false) that it no longer does. The token's series
// appears at the first holding with a token.
func (m *Metrics) Leading(held bool, token int64) {
	if !held {
		m.held.Set(0)
		return
	}
	if token > 0 {
		_ = m.reg.Register(m.token) // once; already registered is fine
		m.token.Set(float64(token))
	}
	m.held.Set(1)
}

// Engine registers the metrics of a runner that trades symbols itself and returns what
// hears its engine (a runner.Observer). Until a symbol's first candle, its time since the
// last candle counts from this call.
func (m *Metrics) Engine(symbols []string) *Engine {
	e := &Engine{m: m, since: map[string]time.Time{}, candle: map[string]time.Time{}}
	labels := prometheus.Labels{labelStrategy: m.strategy}
	vec := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels},
			[]string{labelSymbol})
	}
	e.open = vec(MetricOpenSignals, "Open (pending) signals of the symbol, 0 or 1.")
	e.scheduled = vec(MetricScheduledSignals, "Scheduled signals of the symbol (waiting for their entry price), 0 or 1.")
	e.pnlPercent = vec(MetricRealizedPnLPercent, "Sum of pnlPercentage (percent of the money invested, as "+
		"backtest-kit's toProfitLossDto computes it) of the signals this runner process closed since it started.")
	e.pnlQuote = vec(MetricRealizedPnLQuote, "Sum of pnlCost (profit in the quote currency) of the signals "+
		"this runner process closed since it started.")
	e.events = prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricSignalEvents, ConstLabels: labels,
		Help: "Ledger events of the symbol's signals this runner process recorded: scheduled, opened, closed, " +
			"cancelled, with the close's or cancel's reason."}, []string{labelSymbol, labelEvent, labelReason})
	e.conflicts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricWriteConflicts, ConstLabels: labels,
		Help: "Writes of the symbol's signal or scheduled signal that found it changed in the store by another " +
			"writer (a hand edit), after which the candle was decided again. The stores' own compare-and-swap " +
			"retries and fenced writes are strategyops_store_conflicts_retried_total and " +
			"strategyops_store_fenced_writes_total."}, []string{labelSymbol})
	e.proposals = prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricProposals, ConstLabels: labels,
		Help: "Signals the strategy proposed on the symbol, by outcome: accepted, or refused by the signal " +
			"rules (the runner's log and the Strategy's Trading condition say why)."}, []string{labelSymbol, labelOutcome})
	e.freshness = candleCollector{e: e,
		since: prometheus.NewDesc(MetricSecondsSinceLastCandle, "Seconds since the runner last processed a candle "+
			"of the symbol (wall clock; before its first candle, since the runner started trading).",
			[]string{labelSymbol}, labels),
		last: prometheus.NewDesc(MetricLastCandle, "Start of the symbol's last processed candle (market time), "+
			"Unix seconds.", []string{labelSymbol}, labels)}
	start := m.now()
	for _, sym := range symbols {
		e.since[sym] = start
		e.open.WithLabelValues(sym).Set(0)
		e.scheduled.WithLabelValues(sym).Set(0)
		e.pnlPercent.WithLabelValues(sym).Set(0)
		e.pnlQuote.WithLabelValues(sym).Set(0)
		e.conflicts.WithLabelValues(sym)
		e.proposals.WithLabelValues(sym, outcomeAccepted)
		e.proposals.WithLabelValues(sym, outcomeRefused)
	}
	m.reg.MustRegister(e.open, e.scheduled, e.pnlPercent, e.pnlQuote, e.events, e.conflicts, e.proposals,
		e.freshness)
	return e
}

// Engine hears a runner's engine: it implements runner.Observer.
type Engine struct {
	m                                     *Metrics
	open, scheduled, pnlPercent, pnlQuote *prometheus.GaugeVec
	events, conflicts, proposals          *prometheus.CounterVec
	freshness                             candleCollector

	mu     sync.Mutex
	since  map[string]time.Time // wall time of the symbol's last processed candle, or the start
	candle map[string]time.Time // the symbol's last processed candle
}

// Signals sets the symbol's open and scheduled signals.
func (e *Engine) Signals(symbol string, open, scheduled int) {
	e.open.WithLabelValues(symbol).Set(float64(open))
	e.scheduled.WithLabelValues(symbol).Set(float64(scheduled))
}

// Processed records that the symbol's candle was processed now.
func (e *Engine) Processed(symbol string, candle time.Time) {
	now := e.m.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.since[symbol], e.candle[symbol] = now, candle
}

// Recorded counts a ledger event, and adds a close's PnL to the realised PnL.
func (e *Engine) Recorded(symbol string, ev domain.HistoryEvent) {
	e.events.WithLabelValues(symbol, ev.Kind, ev.Reason).Inc()
	if ev.Kind == domain.EventClosed && ev.PnL != nil {
		e.pnlPercent.WithLabelValues(symbol).Add(ev.PnL.PnlPercentage)
		e.pnlQuote.WithLabelValues(symbol).Add(ev.PnL.PnlCost)
	}
}

// StoreChanged counts a write that found the symbol's signal changed by another writer.
func (e *Engine) StoreChanged(symbol string) { e.conflicts.WithLabelValues(symbol).Inc() }

// The outcomes of a proposal.
const (
	outcomeAccepted = "accepted"
	outcomeRefused  = "refused"
)

// Proposed counts a proposal of the strategy by its outcome.
func (e *Engine) Proposed(symbol string, _ time.Time, refused error) {
	outcome := outcomeAccepted
	if refused != nil {
		outcome = outcomeRefused
	}
	e.proposals.WithLabelValues(symbol, outcome).Inc()
}

// candleCollector computes the time since each symbol's last candle when scraped.
type candleCollector struct {
	e           *Engine
	since, last *prometheus.Desc
}

func (c candleCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.since; ch <- c.last }

func (c candleCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.e.m.now()
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	for sym, at := range c.e.since {
		ch <- prometheus.MustNewConstMetric(c.since, prometheus.GaugeValue, now.Sub(at).Seconds(), sym)
	}
	for sym, t := range c.e.candle {
		ch <- prometheus.MustNewConstMetric(c.last, prometheus.GaugeValue, float64(t.UnixMilli())/1000, sym)
	}
}
