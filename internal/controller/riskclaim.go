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
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/names"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
)

// A risk profile (backtest-kit's riskName) on an exchange is one state, as a strategy's is:
// exactly one Strategy of a namespace writes it. Each profile a Strategy lists (by default
// the one named after it) is claimed by a Lease of its own, which records the Strategy that
// owns it and is owned by that Strategy, so that it goes with it. No runner holds these
// Leases; they only settle who may write the profile.

// RiskClaimName is the Lease that records the owner of risk profile profile on exchange.
func RiskClaimName(profile, exchange string) string {
	return names.ObjectName("risk", profile, exchange)
}

// ownRiskProfiles claims the risk profiles of the Strategy (claimRiskProfiles) that owns its
// identity (lease). aside reports that another holds one, and the Strategy stands aside.
func (r *StrategyReconciler) ownRiskProfiles(ctx context.Context, sc *scope, lease *coordinationv1.Lease) (
	res reconcile.Result, aside bool, err error) {
	s := sc.strategy
	profile, owner, acquired, err := r.claimRiskProfiles(ctx, s)
	if err != nil {
		return reconcile.Result{}, true, err
	}
	if acquired {
		delete(lease.Annotations, AnnotationLabelled) // its objects may record another owner: label them (labelOwned)
	}
	if owner == "" {
		return reconcile.Result{}, false, nil
	}
	res, err = r.standAside(ctx, sc, fmt.Sprintf("risk profile %q on exchange %q", profile, s.Spec.ExchangeName),
		"Strategy "+owner, "remove it from the riskProfiles of one of them")
	if err == nil {
		err = r.letGo(ctx, s)
	}
	return res, true, err
}

// claimRiskProfiles makes s the owner of each risk profile it lists that nobody owns, or
// whose owner is gone or no longer lists it, in the order of their names. It returns the
// first profile another live Strategy owns, and that Strategy's name ("" when s owns them
// all); s then stands aside, and lets go of the profiles it holds once its runner is gone
// (letGo), so that two Strategies that each hold what the other wants do not wait on each
// other for ever. acquired reports that s has just come to own one, whose store objects
// may still record a previous owner.
func (r *StrategyReconciler) claimRiskProfiles(ctx context.Context, s *v1.Strategy) (profile, owner string,
	acquired bool, err error) {
	for _, p := range slices.Sorted(slices.Values(s.EffectiveRiskProfiles())) {
		got, owner, err := r.claimRiskProfile(ctx, s, p)
		if err != nil {
			return p, "", acquired, err
		}
		if owner != "" {
			return p, owner, false, nil
		}
		acquired = acquired || got
	}
	return "", "", acquired, nil
}

// claimRiskProfile claims one profile for s (see claimRiskProfiles): whether s has just come
// to own it, or the name of the live Strategy that does.
func (r *StrategyReconciler) claimRiskProfile(ctx context.Context, s *v1.Strategy, profile string) (bool, string,
	error) {
	name := RiskClaimName(profile, s.Spec.ExchangeName)
	lease := &coordinationv1.Lease{}
	err := r.StateClient.Get(ctx, objectKey(s, name), lease)
	if apierrors.IsNotFound(err) {
		lease = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.Namespace,
			Labels: map[string]string{LabelManagedBy: ManagedBy, names.LabelRisk: names.LabelValue(profile),
				names.LabelExchange: names.LabelValue(s.Spec.ExchangeName)},
			Annotations:     map[string]string{AnnotationOwner: s.Name, AnnotationOwnerUID: string(s.UID)},
			OwnerReferences: []metav1.OwnerReference{ownerReference(s)},
		}}
		if err := r.StateClient.Create(ctx, lease); err != nil {
			// One made meanwhile is read on the next pass.
			return false, "", fmt.Errorf("claiming risk profile %q (Lease %s): %w", profile, name, err)
		}
		return true, "", nil
	}
	if err != nil {
		return false, "", objectErr("reading", lease, err)
	}
	uid, owner := lease.Annotations[AnnotationOwnerUID], lease.Annotations[AnnotationOwner]
	if uid == string(s.UID) {
		return false, "", nil
	}
	if listed, err := r.listsRiskProfile(ctx, s, owner, uid, profile); err != nil || listed {
		return false, owner, err
	}
	// Only from the owner read (at the revision read, when none is recorded); the Lease goes
	// with its new owner.
	take := takeOver(uid, s, patchOp{"add", "/metadata/ownerReferences", []metav1.OwnerReference{ownerReference(s)}})
	if uid == "" {
		base := lease.DeepCopy()
		lease.Annotations = map[string]string{AnnotationOwner: s.Name, AnnotationOwnerUID: string(s.UID)}
		lease.OwnerReferences = []metav1.OwnerReference{ownerReference(s)}
		take = client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})
	}
	if err := r.StateClient.Patch(ctx, lease, take); err != nil {
		return false, "", fmt.Errorf("taking over risk profile %q from %s (Lease %s): %w", profile,
			cmp.Or(owner, "nobody"), name, err)
	}
	r.event(s, corev1.EventTypeNormal, ReasonClaimedState, fmt.Sprintf("took over risk profile %q on exchange %q, "+
		"which %s no longer holds", profile, s.Spec.ExchangeName, cmp.Or(owner, "nobody")))
	return true, "", nil
}

// letGo deletes the claims of the risk profiles s owns, once its runner's pod is gone
// (until then its runner may still write them).
func (r *StrategyReconciler) letGo(ctx context.Context, s *v1.Strategy) error {
	if gone, err := r.podGone(ctx, s); err != nil || !gone {
		return err
	}
	held, err := r.riskClaims(ctx, s)
	for _, lease := range held {
		uid, rv := lease.UID, lease.ResourceVersion // this one, as read: not one made since
		err = errors.Join(err, client.IgnoreNotFound(r.StateClient.Delete(ctx, &lease,
			client.Preconditions{UID: &uid, ResourceVersion: &rv})))
	}
	return wrapErr("letting go of the risk profiles of Strategy "+s.Name, err)
}

// riskClaims are the claims of risk profiles that s owns.
func (r *StrategyReconciler) riskClaims(ctx context.Context, s *v1.Strategy) ([]coordinationv1.Lease, error) {
	var list coordinationv1.LeaseList
	if err := r.StateClient.List(ctx, &list, client.InNamespace(s.Namespace),
		client.MatchingLabels{LabelManagedBy: ManagedBy}, client.HasLabels{names.LabelRisk}); err != nil {
		return nil, err
	}
	return slices.DeleteFunc(list.Items, func(l coordinationv1.Lease) bool {
		return l.Annotations[AnnotationOwnerUID] != string(s.UID)
	}), nil
}

// ownedContexts are the store contexts of s (strategyContexts) but the risk profiles it
// lists and does not own: what s may remove.
func (r *StrategyReconciler) ownedContexts(ctx context.Context, s *v1.Strategy) ([]domain.Context, error) {
	held, err := r.riskClaims(ctx, s)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(strategyContexts(s), func(c domain.Context) bool {
		return c.Domain == domain.Risk && !slices.ContainsFunc(held, func(l coordinationv1.Lease) bool {
			return l.Name == RiskClaimName(c.Key.RiskName, s.Spec.ExchangeName)
		})
	}), nil
}

// listsRiskProfile reports whether the Strategy name (of UID uid) still exists and lists
// profile on the exchange of s (one being deleted still does: it may be removing its state).
func (r *StrategyReconciler) listsRiskProfile(ctx context.Context, s *v1.Strategy, name, uid, profile string) (bool,
	error) {
	if name == "" {
		return false, nil
	}
	var o v1.Strategy
	err := r.Client.Get(ctx, objectKey(s, name), &o)
	if apierrors.IsNotFound(err) {
		err = r.StateClient.Get(ctx, objectKey(s, name), &o) // the cache may lag
	}
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_, exchange := appliedIdentity(&o)
	return string(o.UID) == uid && exchange == s.Spec.ExchangeName && slices.Contains(appliedRiskProfiles(&o), profile),
		nil
}

// appliedRiskProfiles are the risk profiles the runner of s records its positions under:
// as applied (a change of them waits until every symbol has drained), or as the spec says
// before anything was applied or where an older operator did not record them.
func appliedRiskProfiles(s *v1.Strategy) []string {
	if a := withRiskProfiles(s, s.Status.Applied); a != nil {
		return a.RiskProfiles
	}
	return s.EffectiveRiskProfiles()
}

// ownerReference makes s the owner of an object (not its controller): the object goes
// when s does.
func ownerReference(s *v1.Strategy) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: v1.GroupVersion.String(), Kind: "Strategy", Name: s.Name, UID: s.UID}
}
