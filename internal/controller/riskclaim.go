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
	"fmt"
	"slices"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/names"
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

// claimRiskProfiles makes s the owner of each risk profile it lists that nobody owns, or
// whose owner is gone or no longer lists it. It returns the first profile another live
// Strategy owns, and that Strategy's name ("" when s owns them all).
func (r *StrategyReconciler) claimRiskProfiles(ctx context.Context, s *v1.Strategy) (profile, owner string,
	err error) {
	for _, p := range s.EffectiveRiskProfiles() {
		if owner, err := r.claimRiskProfile(ctx, s, p); err != nil || owner != "" {
			return p, owner, err
		}
	}
	return "", "", nil
}

// claimRiskProfile claims one profile for s (see claimRiskProfiles): the name of the live
// Strategy that owns it, or "".
func (r *StrategyReconciler) claimRiskProfile(ctx context.Context, s *v1.Strategy, profile string) (string, error) {
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
			return "", fmt.Errorf("claiming risk profile %q (Lease %s): %w", profile, name, err)
		}
		return "", nil
	}
	if err != nil {
		return "", objectErr("reading", lease, err)
	}
	uid, owner := lease.Annotations[AnnotationOwnerUID], lease.Annotations[AnnotationOwner]
	if uid == string(s.UID) {
		return "", nil
	}
	if listed, err := r.listsRiskProfile(ctx, s, owner, uid, profile); err != nil || listed {
		return owner, err
	}
	// Only from the owner read; the object goes with its new owner.
	if err := r.StateClient.Patch(ctx, lease, takeOver(uid, s,
		patchOp{"add", "/metadata/ownerReferences", []metav1.OwnerReference{ownerReference(s)}})); err != nil {
		return "", fmt.Errorf("taking over risk profile %q from %s (Lease %s): %w", profile, owner, name, err)
	}
	r.event(s, corev1.EventTypeNormal, ReasonClaimedState, fmt.Sprintf("took over risk profile %q on exchange %q, "+
		"which %s no longer holds", profile, s.Spec.ExchangeName, cmp.Or(owner, "nobody")))
	return "", nil
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
	return err == nil && string(o.UID) == uid && o.Spec.ExchangeName == s.Spec.ExchangeName &&
		slices.Contains(o.EffectiveRiskProfiles(), profile), err
}

// ownerReference makes s the owner of an object (not its controller): the object goes
// when s does.
func ownerReference(s *v1.Strategy) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: v1.GroupVersion.String(), Kind: "Strategy", Name: s.Name, UID: s.UID}
}
