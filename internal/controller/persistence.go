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

package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// ensureStateObjects creates the store objects the runner of s will use on b, so that the
// runner needs no create permission.
func (r *StrategyReconciler) ensureStateObjects(ctx context.Context, s *v1.Strategy, b v1.PersistenceBackend) error {
	backend, closeState, err := r.openState(ctx, s, place{backend: b}, true)
	if err != nil {
		return err
	}
	defer closeState()
	for _, o := range storeObjects(s, b) {
		if err := domain.CreateObject(ctx, backend, o.Context.Domain, o.Context.Key); err != nil {
			return err
		}
	}
	return nil
}

// signalSummary is what the symbols of a strategy hold on a backend.
type signalSummary struct {
	// open counts the symbols with an open signal; missing those whose store object does
	// not exist (deleted by hand, made again later): what they hold is unknown.
	open, missing int32
	// lastClosed is the signal closed last, when the ledgers were read; closes each
	// symbol's last close.
	lastClosed *v1.ClosedSignal
	closes     map[string]*domain.HistoryEntry
}

// readSignals reports what the symbols of s hold on b, and with ledger the signal closed
// last (draining symbols included).
func (r *StrategyReconciler) readSignals(ctx context.Context, s *v1.Strategy, at place,
	ledger bool) (signalSummary, error) {
	var sum signalSummary
	symbols := slices.Clone(s.Spec.Symbols)
	if a := s.Status.Applied; a != nil && ledger {
		for _, d := range a.Draining {
			if !slices.Contains(symbols, d) {
				symbols = append(symbols, d)
			}
		}
	}
	states, err := r.readStates(ctx, s, at, s.EffectiveStrategyName(), s.Spec.ExchangeName, symbols, ledger)
	if err != nil {
		return sum, err
	}
	for _, st := range states {
		switch {
		case st.Missing:
			sum.missing++
		case st.Signal != nil && slices.Contains(s.Spec.Symbols, st.Symbol):
			sum.open++
		}
		sum.lastClosed = later(sum.lastClosed, closedSignal(st.LastClosed))
		if st.LastClosed != nil {
			if sum.closes == nil {
				sum.closes = map[string]*domain.HistoryEntry{}
			}
			sum.closes[st.Symbol] = st.LastClosed
		}
	}
	return sum, nil
}

// readStates reads what symbols of the state identity name/exchange hold, at s's place at,
// and with ledger each one's last close.
func (r *StrategyReconciler) readStates(ctx context.Context, s *v1.Strategy, at place, name, exchange string,
	symbols []string, ledger bool) ([]domain.SymbolState, error) {
	ctx, cancel := withDeadline(ctx, at)
	defer cancel()
	backend, closeState, err := r.openState(ctx, s, at, false)
	if err != nil {
		return nil, err
	}
	defer closeState()
	p := domain.New(backend)
	defer func() { _ = p.Close() }()
	return p.ReadSymbols(ctx, name, exchange, symbols, ledger)
}

// closedSignal is the close of a ledger entry as the Strategy shows it (nil for nil).
func closedSignal(h *domain.HistoryEntry) *v1.ClosedSignal {
	if h == nil {
		return nil
	}
	c := h.Close()
	return &v1.ClosedSignal{ID: h.ID, Symbol: h.Symbol, Reason: c.Reason,
		ClosedAt: metav1.NewTime(time.UnixMilli(c.At).Add(time.Minute).UTC()), PnL: c.PnL}
}

// later is the later of two closes; either may be nil.
func later(a, b *v1.ClosedSignal) *v1.ClosedSignal {
	if a == nil || b != nil && a.ClosedAt.Before(&b.ClosedAt) {
		return b
	}
	return a
}

// migrate copies the state of s from one place to another: signal, schedule, snapshot,
// partial, breakeven and ledger of every symbol, and the risk positions (which live in the
// same ConfigMap on both Kubernetes backends, so only a move to or from a database copies
// them). It runs only while no runner of s exists, and is idempotent, so an interrupted
// migration is simply run again.
func (r *StrategyReconciler) migrate(ctx context.Context, s *v1.Strategy, from, to place) error {
	if domain.HomeOf(from.backend) == domain.InDatabase || domain.HomeOf(to.backend) == domain.InDatabase {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 4*databaseTimeout)
		defer cancel()
	}
	src, closeSrc, err := r.openState(ctx, s, from, false)
	if err != nil {
		return err
	}
	defer closeSrc()
	dst, closeDst, err := r.openState(ctx, s, to, true)
	if err != nil {
		return err
	}
	defer closeDst()
	if domain.HomeOf(to.backend) == domain.InDatabase {
		var closeFenced func()
		if dst, closeFenced, err = r.carryFencing(ctx, s, src, to); err != nil {
			return err
		}
		defer closeFenced()
	}
	in, out := domain.New(src), domain.New(dst)
	defer func() { _ = errors.Join(in.Close(), out.Close()) }()
	for _, sym := range s.Spec.Symbols {
		k := strategyKey(s, sym)
		if err := copySymbol(ctx, in, out, k); err != nil {
			return fmt.Errorf("moving the state of %s from %s to %s: %w", sym, from, to, err)
		}
	}
	if domain.HomeOf(from.backend) == domain.InDatabase && domain.HomeOf(to.backend) == domain.InDatabase {
		if err := r.moveOldArchives(ctx, s, from); err != nil {
			return err
		}
		for _, c := range archiveContexts(s) {
			if _, err := domain.CopyStore(ctx, src, dst, c, false); err != nil {
				return fmt.Errorf("moving the history archive of %s from %s to %s: %w", c.Key.Symbol, from, to, err)
			}
		}
	}
	if domain.HomeOf(from.backend) == domain.InDatabase || domain.HomeOf(to.backend) == domain.InDatabase {
		for _, profile := range s.EffectiveRiskProfiles() {
			rk := domain.RiskKey(profile, s.Spec.ExchangeName)
			positions, err := in.ReadRisk(ctx, rk)
			if err == nil {
				err = out.WriteRisk(ctx, rk, positions)
			}
			if err != nil {
				return fmt.Errorf("moving the positions of risk profile %s from %s to %s: %w", profile, from, to, err)
			}
		}
	}
	return nil
}

// carryFencing opens the database at to for the move, fenced one above the newest token
// either place recorded in the stores of s: the state arrives with its fencing floor, so a
// runner that once held a higher token cannot write there, and replicas, which record the
// tokens of the changes copied to them, are not ahead of the state's new home.
func (r *StrategyReconciler) carryFencing(ctx context.Context, s *v1.Strategy, from domain.Backend, to place) (
	domain.Backend, func(), error) {
	contexts := strategyContexts(s)
	theirs, err := domain.HighestToken(ctx, from, contexts)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the fencing tokens of the state to move: %w", err)
	}
	db, err := r.openDatabase(ctx, s, to)
	if err != nil {
		return nil, nil, err
	}
	ours, err := domain.HighestToken(ctx, db.Backend(domain.NoFencing), contexts)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("reading the fencing tokens in %s: %w", to, err)
	}
	return db.Backend(driver.Fencing{Writer: "strategy-operator/move", Token: max(theirs, ours) + 1}), db.Close, nil
}

func copySymbol(ctx context.Context, in, out *domain.Persistence, k domain.Key) error {
	sig, err := in.ReadSignal(ctx, k)
	if err == nil {
		err = out.WriteSignal(ctx, k, sig)
	}
	if err != nil {
		return err
	}
	sched, err := in.ReadSchedule(ctx, k)
	if err == nil {
		err = out.WriteSchedule(ctx, k, sched)
	}
	if err != nil {
		return err
	}
	snap, err := in.ReadSnapshot(ctx, k)
	if err == nil && snap != nil {
		err = out.WriteSnapshot(ctx, k, snap)
	}
	if err != nil {
		return err
	}
	if err := copyAll(ctx, in.Partial, out.Partial, k); err != nil {
		return err
	}
	if err := copyAll(ctx, in.Breakeven, out.Breakeven, k); err != nil {
		return err
	}
	return copyAll(ctx, in.History, out.History, k)
}

// copyAll copies every entity of one domain store.
func copyAll[T any](ctx context.Context, in, out *domain.Adapter[T], k domain.Key) error {
	src, err := in.Store(ctx, k)
	if err != nil {
		return err
	}
	dst, err := out.Store(ctx, k)
	if err != nil {
		return err
	}
	for v, err := range src.Keys(ctx) {
		if err != nil {
			return err
		}
		val, err := src.Read(ctx, v)
		if err != nil {
			return err
		}
		if _, err := dst.Write(ctx, v, val); err != nil {
			return err
		}
	}
	return nil
}

// removeStale deletes the objects of the backend a switch moved the state away from, once
// the switch is recorded in the status as read (so a crash before that leaves the source
// whole for the move to run again). Risk positions and the history ledger are shared by
// both Kubernetes backends and stay.
func (r *StrategyReconciler) removeStale(ctx context.Context, sc *scope) error {
	s, stale := sc.strategy, sc.before.StaleBackend
	old := place{backend: stale, db: sc.before.StaleDatabase}
	before := place{backend: sc.before.ActiveBackend, db: sc.before.ActiveDatabase}
	if stale == "" || !before.same(sc.activePlace()) || old.same(sc.activePlace()) {
		return nil
	}
	if domain.HomeOf(stale) == domain.InDatabase {
		if stale == sc.active {
			// Two Secrets of one kind of database may name one server: deleting the old
			// copy could delete the state itself. It stays.
			r.event(s, corev1.EventTypeNormal, ReasonStaleRemoved, fmt.Sprintf("kept the old copy in %s: it may be "+
				"the same database as %s; remove it by hand if it is not", old, sc.activePlace()))
		} else {
			// The history archive moved only to another database; otherwise it stays
			// where it is, whole (the Kubernetes backends seal their own archives).
			contexts := strategyContexts(s)
			if domain.HomeOf(sc.active) == domain.InDatabase {
				contexts = append(contexts, archiveContexts(s)...)
			}
			if err := r.deleteDatabaseState(ctx, s, old, contexts); err != nil {
				// Best effort: the old copy's database may be gone for good. The state
				// lives on where it is now; the removal is tried again on the next pass.
				r.event(s, corev1.EventTypeWarning, ReasonStaleRemoved, fmt.Sprintf("could not remove the old "+
					"copy in %s yet: %v", old, err))
				return nil
			}
			r.event(s, corev1.EventTypeNormal, ReasonStaleRemoved, "removed the old copy in "+old.String())
		}
		s.Status.StaleBackend, s.Status.StaleDatabase = "", nil
		return nil
	}
	// The objects of the old backend that the new one does not use too (the risk and
	// history ConfigMaps are the same on both).
	inUse := map[string]bool{}
	for _, o := range storeObjects(s, sc.active) {
		inUse[o.Kind+"/"+o.Name] = true
	}
	var objs []client.Object
	for _, o := range storeObjects(s, stale) {
		if !inUse[o.Kind+"/"+o.Name] {
			objs = append(objs, emptyObject(o, s.Namespace))
		}
	}
	for _, obj := range objs {
		if err := client.IgnoreNotFound(r.StateClient.Delete(ctx, obj)); err != nil {
			return fmt.Errorf("removing %T %s, the old copy on %s: %w", obj, obj.GetName(), stale, err)
		}
	}
	r.event(s, corev1.EventTypeNormal, ReasonStaleRemoved,
		fmt.Sprintf("removed the %d objects of the old copy on %s", len(objs), stale))
	s.Status.StaleBackend, s.Status.StaleDatabase = "", nil
	return nil
}

// emptyObject is a typed object of o's kind and name, to read or delete.
func emptyObject(o domain.StoreObject, namespace string) client.Object {
	om := metav1.ObjectMeta{Namespace: namespace, Name: o.Name}
	if o.Kind == domain.KindStrategyState {
		return &v1.StrategyState{ObjectMeta: om}
	}
	return &corev1.ConfigMap{ObjectMeta: om}
}

// switchBackend moves a strategy's state to its newly chosen backend. done is false while
// the move waits (for the old pod to go); the state only moves with no runner alive.
func (r *StrategyReconciler) switchBackend(ctx context.Context, sc *scope) (ctrl.Result, bool, error) {
	s := sc.strategy
	from, to := sc.activePlace(), sc.desiredPlace()
	refuse := func(why string) (ctrl.Result, bool, error) {
		msg := fmt.Sprintf("staying on %s: %s", from, why)
		setCondition(s, v1.ConditionDegraded, true, ReasonBackendSwitchRefus, msg)
		return ctrl.Result{}, true, nil // keep running on the active backend
	}
	if domain.HomeOf(sc.active) == domain.OnVolume {
		return refuse(fmt.Sprintf("the File backend's state is on the strategy's volume, which the operator "+
			"cannot read, so it cannot move open signals to %s; switch back to File", sc.desired))
	}
	if domain.HomeOf(sc.desired) == domain.OnVolume {
		sum, err := r.readSignals(ctx, s, from, false)
		if err != nil {
			return ctrl.Result{}, false, err
		}
		if sum.open+sum.missing > 0 {
			return refuse(fmt.Sprintf("%d signals are open (or their store objects missing) and the operator "+
				"cannot write them to the File backend's volume; switch when none is open", sum.open+sum.missing))
		}
	}
	// Before anything is recorded in the new place: a refused promotion leaves no trace there.
	promote, refusal, err := r.promotion(ctx, s, from, to)
	switch {
	case err != nil:
		return ctrl.Result{}, false, err
	case refusal != "":
		return refuse(refusal)
	}
	if domain.HomeOf(to.backend) == domain.InDatabase {
		// Before the runner stops: a database the operator cannot reach (or a Secret it may
		// not use) keeps the strategy trading where it is, and is tried again.
		if err := r.checkDatabase(ctx, s, to); err != nil {
			sc.retryAfter = databaseRetry
			return refuse(fmt.Sprintf("cannot use %s: %v", to, err))
		}
	}
	if err := r.stopPod(ctx, s); err != nil {
		return ctrl.Result{}, false, err
	}
	if gone, err := r.podGone(ctx, s); err != nil || !gone {
		setCondition(s, v1.ConditionReady, false, ReasonPodReplacing, "waiting for the old pod to stop before moving the state")
		return ctrl.Result{RequeueAfter: time.Second}, false, err
	}
	switch {
	case promote:
		r.event(s, corev1.EventTypeWarning, ReasonBackendSwitched, fmt.Sprintf("promoted %s to the backend in place "+
			"of %s, which the annotation %s names as lost: the state is what the replica holds, and what the lost "+
			"database held is left there", to, from, AnnotationPrimaryLost))
	case domain.HomeOf(sc.desired) != domain.OnVolume:
		if err := r.migrate(ctx, s, from, to); err != nil {
			return ctrl.Result{}, false, err
		}
		fallthrough
	default:
		r.event(s, corev1.EventTypeNormal, ReasonBackendSwitched, fmt.Sprintf("moved the state from %s to %s", from, to))
	}
	if domain.HomeOf(sc.active) != domain.OnVolume && !promote { // nothing to remove from a lost database
		s.Status.StaleBackend, s.Status.StaleDatabase = from.backend, from.db // removed once this switch is recorded
	}
	sc.active, sc.activeDB = to.backend, to.db
	meta.RemoveStatusCondition(&s.Status.Conditions, v1.ConditionDegraded)
	return ctrl.Result{}, true, nil
}
