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

// Package strategyview is what `kubectl strategy status NAME` prints (cmd/kubectl-strategy):
// a Strategy as a trader reads it — its conditions, the Lease's holder and fencing token,
// each symbol's signal with prices at a readable precision, the last close with its PnL,
// and the latest events.
package strategyview

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/names"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
)

// Events is how many of the Strategy's latest events Show prints.
const Events = 5

// ago is how long before now t was, as kubectl prints ages; "-" for no time.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return duration.HumanDuration(now.Sub(t))
}

// Show writes Strategy name of namespace ns as of now: c reads the Strategy, its Lease,
// its store objects (on the ConfigMap and StrategyState backends; the others are where
// the operator's rights reach, not a user's) and its events.
func Show(ctx context.Context, c client.Client, ns, name string, now time.Time, w io.Writer) error {
	var s v1.Strategy
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
		return fmt.Errorf("strategy %s/%s: %w", ns, name, err)
	}
	out := newTable(w)
	backend := cmp.Or(s.Status.ActiveBackend, s.Spec.Persistence.Backend, v1.DefaultBackend)
	id := applied(&s)
	out.f("Strategy:\t%s/%s\t%s\n", ns, name, cmp.Or(string(s.Status.Phase), "-"))
	out.f("State:\t%s on %s, backend %s\n", id.StrategyName, id.ExchangeName, backend)
	for _, t := range []string{v1.ConditionReady, v1.ConditionTrading, v1.ConditionDegraded} {
		for _, cond := range s.Status.Conditions {
			if cond.Type == t {
				out.f("%s:\t%s (%s)\t%s\n", cond.Type, cond.Status, cond.Reason, cond.Message)
			}
		}
	}
	if err := showLease(ctx, c, ns, &s, id, now, out); err != nil {
		return err
	}
	out.f("\n")
	if err := out.flush(); err != nil {
		return err
	}
	if err := showSignals(ctx, c, ns, &s, id, backend, now, w); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return err
	}
	return showEvents(ctx, c, ns, &s, now, w)
}

// table writes aligned columns (tab-separated cells), remembering the first error.
type table struct {
	tw  *tabwriter.Writer
	err error
}

func newTable(w io.Writer) *table { return &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)} }

func (t *table) f(format string, a ...any) {
	if t.err == nil {
		_, t.err = fmt.Fprintf(t.tw, format, a...)
	}
}

func (t *table) flush() error {
	if t.err != nil {
		return t.err
	}
	return t.tw.Flush()
}

// applied is the state the runner works on: the Strategy's applied state (during a change
// of identity or symbols, the spec's is not yet the runner's), else the spec's.
func applied(s *v1.Strategy) v1.AppliedState {
	if a := s.Status.Applied; a != nil {
		return *a
	}
	return v1.AppliedState{StrategyName: s.EffectiveStrategyName(), ExchangeName: s.Spec.ExchangeName,
		Symbols: s.Spec.Symbols}
}

// showLease writes who holds the strategy's Lease, with the fencing token its writes carry
// (the Lease's transitions plus one: see the runner's fencingToken).
func showLease(ctx context.Context, c client.Client, ns string, s *v1.Strategy, id v1.AppliedState, now time.Time,
	out *table) error {
	var lease coordinationv1.Lease
	err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: names.LeaseName(id.StrategyName, id.ExchangeName)}, &lease)
	switch {
	case apierrors.IsNotFound(err):
		out.f("Lease:\tnone yet\n")
		return nil
	case err != nil:
		return fmt.Errorf("the Lease of strategy %s/%s: %w", ns, s.Name, err)
	}
	holder := ptr.Deref(lease.Spec.HolderIdentity, "")
	if holder == "" {
		out.f("Lease:\t%s, held by nobody\n", lease.Name)
		return nil
	}
	var renewed time.Time
	if lease.Spec.RenewTime != nil {
		renewed = lease.Spec.RenewTime.Time
	}
	out.f("Lease:\t%s, held by %s, fencing token %d, renewed %s ago\n", lease.Name, holder,
		ptr.Deref(lease.Spec.LeaseTransitions, 0)+1, ago(now, renewed))
	return nil
}

// showSignals writes each symbol's signal and its last close, read from the store.
func showSignals(ctx context.Context, c client.Client, ns string, s *v1.Strategy, id v1.AppliedState,
	b v1.PersistenceBackend, now time.Time, w io.Writer) error {
	if domain.HomeOf(b) != domain.InObjects {
		open := "unknown"
		if s.Status.OpenSignals != nil {
			open = strconv.Itoa(int(*s.Status.OpenSignals))
		}
		_, err := fmt.Fprintf(w, "Signals: kept in %s, where only the runner (and, on a database, the operator) "+
			"reads them; open signals: %s\n", b, open)
		return err
	}
	backend, err := domain.KubeBackend(b, c, domain.KubeOptions{Namespace: ns})
	if err != nil {
		return err
	}
	p := domain.New(backend)
	defer func() { _ = p.Close() }()
	symbols := append(slices.Clone(id.Symbols), id.Draining...) // a drained symbol's signal still trades
	states, err := p.ReadSymbols(ctx, id.StrategyName, id.ExchangeName, symbols, true)
	if err != nil {
		return fmt.Errorf("reading the signals of strategy %s/%s: %w", ns, s.Name, err)
	}
	out := newTable(w)
	out.f("SYMBOL\tPHASE\tPOSITION\tOPEN\tTAKE PROFIT\tSTOP LOSS\tAGE\tSIGNAL\tLAST CLOSE\n")
	for _, st := range states {
		phase, sig := "Idle", st.Signal
		switch {
		case st.Missing:
			phase = "Missing"
		case sig != nil:
			phase = "Open"
		case st.Schedule != nil:
			phase, sig = "Scheduled", st.Schedule
		}
		if slices.Contains(id.Draining, st.Symbol) {
			phase += " (draining)"
		}
		last := lastClose(st.LastClosed, now)
		cells := []any{st.Symbol, phase, "-", "-", "-", "-", "-", "-", last}
		if sig != nil {
			since := sig.PendingAt
			if phase == "Scheduled" {
				since = sig.ScheduledAt
			}
			cells = []any{st.Symbol, phase, sig.Position, v1.ReadablePrice(sig.PriceOpen),
				v1.ReadablePrice(ptr.Deref(sig.TrailingPriceTakeProfit, sig.PriceTakeProfit)),
				v1.ReadablePrice(ptr.Deref(sig.TrailingPriceStopLoss, sig.PriceStopLoss)), ago(now, time.UnixMilli(since)), sig.ID,
				last}
		}
		out.f("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cells...)
	}
	return out.flush()
}

// lastClose is a ledger entry's close as one cell: reason, price, PnL, age.
func lastClose(h *domain.HistoryEntry, now time.Time) string {
	if h == nil || h.Close() == nil {
		return "-"
	}
	c := h.Close()
	s := fmt.Sprintf("%s at %s", c.Reason, v1.ReadablePrice(c.Price))
	if c.PnL != nil {
		s += ", " + v1.ReadablePercent(c.PnL.PnlPercentage)
	}
	// A close is recorded on its candle; it happened as that minute ended.
	return s + ", " + ago(now, time.UnixMilli(c.At).Add(time.Minute)) + " ago"
}

// showEvents writes the Strategy's latest events, oldest first.
func showEvents(ctx context.Context, c client.Client, ns string, s *v1.Strategy, now time.Time, w io.Writer) error {
	var list corev1.EventList
	err := c.List(ctx, &list, client.InNamespace(ns), client.MatchingFieldsSelector{
		Selector: fields.SelectorFromSet(fields.Set{"involvedObject.kind": "Strategy", "involvedObject.name": s.Name}),
	})
	if err != nil {
		return fmt.Errorf("the events of strategy %s/%s: %w", ns, s.Name, err)
	}
	if len(list.Items) == 0 {
		_, err = fmt.Fprintln(w, "Events: none")
		return err
	}
	slices.SortFunc(list.Items, func(a, b corev1.Event) int { return lastSeen(a).Compare(lastSeen(b)) })
	out := newTable(w)
	out.f("LAST SEEN\tTYPE\tREASON\tMESSAGE\n")
	for _, e := range list.Items[max(0, len(list.Items)-Events):] {
		out.f("%s\t%s\t%s\t%s\n", ago(now, lastSeen(e)), e.Type, e.Reason, e.Message)
	}
	return out.flush()
}

// lastSeen is when an event last happened, whichever API recorded it: events.k8s.io keeps
// it in the series or the event time, core/v1 in the last timestamp.
func lastSeen(e corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}
