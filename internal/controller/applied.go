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
	"fmt"
	"slices"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/handshake"
	"github.com/strategyops/strategy-operator/internal/names"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
)

// Reasons of the UpToDate and Draining conditions.
const (
	ReasonApplied               = "Applied"
	ReasonIdentityChangeRefused = "IdentityChangeRefused"
	ReasonWaitingUntilFlat      = "WaitingUntilFlat"
	ReasonDraining              = "SymbolsDraining"
)

// applySpec decides what the runner works on (status.applied) and sets the in-memory spec
// of sc.strategy to it, so that everything after (claim, Role, store objects, pod) follows
// the applied state, never a spec that would strand a signal: a removed symbol drains, and
// leaves the runner only once the runner confirms it drains it and it is flat; a new state
// identity first drains every symbol of the current one the same way; and with
// updatePolicy WhenFlat every change waits until flat. The status patch carries no spec.
func (r *StrategyReconciler) applySpec(ctx context.Context, sc *scope) error {
	s := sc.strategy
	want := v1.AppliedState{StrategyName: s.EffectiveStrategyName(), ExchangeName: s.Spec.ExchangeName,
		Symbols: slices.Clone(s.Spec.Symbols), RiskProfiles: slices.Clone(s.EffectiveRiskProfiles()),
		Generation: s.Generation}
	prev := withRiskProfiles(s, s.Status.Applied)
	applied := want
	switch {
	case prev == nil || domain.HomeOf(sc.active) == domain.OnVolume:
		// Nothing applied yet, or a state the operator cannot read (File): as the spec says.
	case !s.DeletionTimestamp.IsZero():
		applied = *prev
	case sameState(prev, &want) && len(prev.Draining) == 0 && (prev.Generation == want.Generation ||
		s.EffectiveUpdatePolicy() == v1.UpdateImmediate):
		// Nothing that could strand a signal changed.
	default:
		quiet, err := r.quietSymbols(ctx, s, prev)
		if err != nil {
			return err
		}
		// After: see quietSymbols. Read where the state is, or is about to be (a replica a
		// person promotes in place of a lost database: statePlace).
		live, err := r.liveSymbols(ctx, s, statePlace(sc), prev)
		if err != nil {
			return err
		}
		applied = r.decide(sc, prev, &want, live, quiet)
	}
	if rel := releasedBy(prev, &applied); rel != nil && domain.HomeOf(sc.active) != domain.OnVolume {
		// The last closes of what leaves count before it leaves: a read that fails keeps it.
		states, err := r.readStates(ctx, s, statePlace(sc), rel.StrategyName, rel.ExchangeName, rel.Symbols, true)
		if err != nil {
			return fmt.Errorf("reading the ledgers of %s of %s/%s before releasing them: %w",
				strings.Join(rel.Symbols, ", "), rel.StrategyName, rel.ExchangeName, err)
		}
		for _, st := range states {
			s.Status.LastClosedSignal = later(s.Status.LastClosedSignal, closedSignal(st.LastClosed))
		}
	}
	s.Status.Applied = &applied
	if len(applied.Draining) > 0 {
		setCondition(s, v1.ConditionDraining, true, ReasonDraining, fmt.Sprintf("watching %s until their signals close; "+
			"no new signal opens on them", strings.Join(applied.Draining, ", ")))
	} else {
		meta.RemoveStatusCondition(&s.Status.Conditions, v1.ConditionDraining)
	}
	if applied.Generation == s.Generation {
		setCondition(s, v1.ConditionUpToDate, true, ReasonApplied, fmt.Sprintf("generation %d is applied", s.Generation))
	}
	s.Spec.StrategyName, s.Spec.ExchangeName = applied.StrategyName, applied.ExchangeName
	s.Spec.RiskProfiles = applied.RiskProfiles
	if slices.Equal(applied.RiskProfiles, []string{applied.StrategyName}) {
		s.Spec.RiskProfiles = nil // the default one: the runner's flags say nothing of it
	}
	s.Spec.Symbols = append(slices.Clone(applied.Symbols), applied.Draining...)
	sc.draining = applied.Draining
	return nil
}

// decide applies want over prev given the symbols of prev's state with a signal (live)
// and those on which no runner opens a signal now (quiet): a symbol leaves the runner only
// once it is quiet and, read after, flat.
func (r *StrategyReconciler) decide(sc *scope, prev, want *v1.AppliedState, live, quiet []string) v1.AppliedState {
	s := sc.strategy
	released := func(sym string) bool { return slices.Contains(quiet, sym) && !slices.Contains(live, sym) }
	held := *prev
	held.Draining = slices.DeleteFunc(slices.Clone(prev.Draining), released)
	switch {
	case prev.StrategyName != want.StrategyName || prev.ExchangeName != want.ExchangeName ||
		!slices.Equal(prev.RiskProfiles, want.RiskProfiles):
		// The current identity's symbols all drain first; the new one applies once every
		// one of them is released. So do new risk profiles: an open signal's position stays
		// in the profile it was recorded under until it closes.
		draining := slices.DeleteFunc(append(slices.Clone(prev.Symbols), prev.Draining...), released)
		if len(draining) == 0 {
			return *want
		}
		setCondition(s, v1.ConditionUpToDate, false, ReasonIdentityChangeRefused, fmt.Sprintf(
			"kept strategyName %q, exchangeName %q and riskProfiles [%s], draining %s: a new identity or new "+
				"risk profiles would leave a signal of the current ones unwatched or its position recorded where "+
				"no runner clears it, so no new signal opens and the change applies once the runner confirms "+
				"that and its signals are closed. Set them back, or let the signals close",
			prev.StrategyName, prev.ExchangeName, strings.Join(prev.RiskProfiles, ", "), strings.Join(draining, ", ")))
		held.Symbols, held.Draining = []string{}, draining
		return held
	case s.EffectiveUpdatePolicy() == v1.UpdateWhenFlat && prev.Generation != want.Generation && len(live) > 0:
		setCondition(s, v1.ConditionUpToDate, false, ReasonWaitingUntilFlat, fmt.Sprintf(
			"generation %d waits until no signal is open or scheduled (updatePolicy WhenFlat); now on %s",
			want.Generation, strings.Join(live, ", ")))
		sc.holdPod = true
		return held
	}
	out := *want
	for _, sym := range append(slices.Clone(prev.Symbols), held.Draining...) {
		if !slices.Contains(want.Symbols, sym) && !released(sym) && !slices.Contains(out.Draining, sym) {
			out.Draining = append(out.Draining, sym)
		}
	}
	return out
}

// withRiskProfiles is prev with its risk profiles: an operator that did not record them
// in status.applied applied the spec's at once (by default the one named after the applied
// strategyName), so they are what the runner of s writes under.
func withRiskProfiles(s *v1.Strategy, prev *v1.AppliedState) *v1.AppliedState {
	if prev == nil || len(prev.RiskProfiles) > 0 {
		return prev
	}
	filled := prev.DeepCopy()
	filled.RiskProfiles = slices.Clone(s.Spec.RiskProfiles)
	if len(filled.RiskProfiles) == 0 {
		filled.RiskProfiles = []string{prev.StrategyName}
	}
	return filled
}

func sameState(a, b *v1.AppliedState) bool {
	return a.StrategyName == b.StrategyName && a.ExchangeName == b.ExchangeName && slices.Equal(a.Symbols, b.Symbols) &&
		slices.Equal(a.RiskProfiles, b.RiskProfiles)
}

// quietSymbols lists the symbols of the applied state prev on which no runner can open a
// signal now: the runner holding prev's Lease, in the pod running now, recorded that it
// does not trade them (package handshake); or every one, when no runner pod exists and
// nobody holds the Lease. It is read before the signals (liveSymbols): whatever such a
// symbol holds then only closes.
func (r *StrategyReconciler) quietSymbols(ctx context.Context, s *v1.Strategy, prev *v1.AppliedState) ([]string, error) {
	all := append(slices.Clone(prev.Symbols), prev.Draining...)
	var lease coordinationv1.Lease
	err := r.StateClient.Get(ctx, objectKey(s, names.LeaseName(prev.StrategyName, prev.ExchangeName)), &lease)
	if apierrors.IsNotFound(err) {
		return all, nil // no Lease: no runner can write
	}
	if err != nil {
		return nil, objectErr("reading", &lease, err)
	}
	var pod corev1.Pod
	switch err := r.StateClient.Get(ctx, objectKey(s, RunnerName(s)), &pod); {
	case apierrors.IsNotFound(err):
		if !handshake.Held(&lease, time.Now()) {
			return all, nil // no runner pod, and nobody holds the Lease (suspended, or gone)
		}
		return nil, nil // a runner still holds it
	case err != nil:
		return nil, objectErr("reading", &pod, err)
	case !pod.DeletionTimestamp.IsZero():
		return nil, nil // stopping: its runner may still trade
	}
	rec, current, err := handshake.Current(&lease, string(pod.UID))
	if err != nil || !current {
		return nil, err
	}
	return slices.DeleteFunc(all, rec.Opens), nil
}

// liveSymbols lists the symbols of the applied state prev that have an active or a
// scheduled signal.
func (r *StrategyReconciler) liveSymbols(ctx context.Context, s *v1.Strategy, at place,
	prev *v1.AppliedState) ([]string, error) {
	// A store object deleted by hand, made again later in this pass, is unknown (Missing):
	// held back as if a signal were open.
	states, err := r.readStates(ctx, s, at, prev.StrategyName, prev.ExchangeName,
		append(slices.Clone(prev.Symbols), prev.Draining...), false)
	if err != nil {
		return nil, err
	}
	var live []string
	for _, st := range states {
		if st.Live() {
			live = append(live, st.Symbol)
		}
	}
	return live, nil
}

// releasedBy is what applied releases of prev: the symbols prev watched that applied does
// not, under prev's identity (nil when none, or no prev).
func releasedBy(prev, applied *v1.AppliedState) *v1.AppliedState {
	if prev == nil {
		return nil
	}
	kept := append(slices.Clone(applied.Symbols), applied.Draining...)
	if prev.StrategyName != applied.StrategyName || prev.ExchangeName != applied.ExchangeName {
		kept = nil
	}
	gone := slices.DeleteFunc(append(slices.Clone(prev.Symbols), prev.Draining...), func(sym string) bool {
		return slices.Contains(kept, sym)
	})
	if len(gone) == 0 {
		return nil
	}
	return &v1.AppliedState{StrategyName: prev.StrategyName, ExchangeName: prev.ExchangeName, Symbols: gone}
}
