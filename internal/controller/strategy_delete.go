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
	"time"

	"github.com/strategyops/strategy-operator/internal/names"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
)

// reconcileDelete stops the pod and, with retention Delete, removes the state once the pod
// is gone. Retained state carries no owner reference and is left alone.
func (r *StrategyReconciler) reconcileDelete(ctx context.Context, sc *scope) (ctrl.Result, error) {
	s := sc.strategy
	r.shown.forget(client.ObjectKeyFromObject(s))
	s.Status.Phase = v1.StrategyTerminating
	setCondition(s, v1.ConditionReady, false, ReasonDeleting, "the strategy is being deleted")
	if !controllerutil.ContainsFinalizer(s, FinalizerDeleteState) {
		return ctrl.Result{}, nil
	}
	if err := r.stopPod(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	if gone, err := r.podGone(ctx, s); err != nil || !gone {
		return ctrl.Result{RequeueAfter: time.Second}, err
	}
	if err := r.deleteState(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	if domain.HomeOf(sc.active) == domain.InDatabase {
		if err := r.deleteOwnedDatabaseState(ctx, s, sc.activePlace()); err != nil {
			return ctrl.Result{}, err
		}
	}
	if err := r.releaseClaim(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	r.event(s, corev1.EventTypeNormal, ReasonDeletedState, "removed the strategy's state (retention Delete)")
	base := s.DeepCopy()
	controllerutil.RemoveFinalizer(s, FinalizerDeleteState)
	return ctrl.Result{}, objectErr("removing the finalizer of", s, r.Client.Patch(ctx, s, client.MergeFrom(base)))
}

// deleteState removes the state objects s owns: the ConfigMaps and StrategyStates that
// record its UID (names.LabelOwner), whatever their names, and its volume. A Strategy
// that never owned its identity removes nothing but its own volume.
func (r *StrategyReconciler) deleteState(ctx context.Context, s *v1.Strategy) error {
	owned := client.MatchingLabels{names.LabelOwner: string(s.UID)}
	in := client.InNamespace(s.Namespace)
	return errors.Join(
		wrapErr("deleting the ConfigMaps of the state of "+identityOf(s),
			r.StateClient.DeleteAllOf(ctx, &corev1.ConfigMap{}, in, owned)),
		wrapErr("deleting the StrategyStates of the state of "+identityOf(s),
			r.StateClient.DeleteAllOf(ctx, &v1.StrategyState{}, in, owned)),
		r.deleteClaim(ctx, s),
	)
}

// deleteClaim deletes the data volume's claim of s if there is one and it is the
// operator's (ours): a claim of that name someone else made is left alone.
func (r *StrategyReconciler) deleteClaim(ctx context.Context, s *v1.Strategy) error {
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: DataClaimName(s)}}
	err := r.StateClient.Get(ctx, client.ObjectKeyFromObject(claim), claim)
	if err != nil || !ours(s, claim) {
		return objectErr("reading", claim, client.IgnoreNotFound(err))
	}
	return objectErr("deleting", claim, client.IgnoreNotFound(r.StateClient.Delete(ctx, claim,
		client.Preconditions{UID: &claim.UID})))
}

// releaseClaim deletes the identity's Lease when s owns it and its state is gone: the next
// Strategy of the identity starts afresh.
func (r *StrategyReconciler) releaseClaim(ctx context.Context, s *v1.Strategy) error {
	var lease coordinationv1.Lease
	err := r.StateClient.Get(ctx, objectKey(s, LeaseName(s)), &lease)
	if err != nil || lease.Annotations[AnnotationOwnerUID] != string(s.UID) {
		return client.IgnoreNotFound(err)
	}
	rv := lease.ResourceVersion
	return objectErr("deleting", &lease, client.IgnoreNotFound(r.StateClient.Delete(ctx, &lease,
		client.Preconditions{UID: &lease.UID, ResourceVersion: &rv})))
}
