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
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/configmapstore"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
)

// AnnotationMovedFrom marks a store object copied from an earlier version's object (its
// UID), so that a move interrupted after the copy removes the old one next time.
const AnnotationMovedFrom = "trading.strategyops.dev/moved-from"

// ReasonStateRenamed is the event of the store objects moved to their new names, and
// ReasonStateRenameFailed the Degraded reason of a move that cannot be made.
const (
	ReasonStateRenamed      = "StateObjectsRenamed"
	ReasonStateRenameFailed = "StateRenameFailed"
)

// rename is one store object to move from its earlier name.
type rename struct{ from, to client.Object }

// legacyRenames lists the store objects of s on b whose earlier versions' names differ
// from today's (identities with '-' or other characters in their names).
func legacyRenames(s *v1.Strategy, b v1.PersistenceBackend) []rename {
	var out []rename
	for _, o := range storeObjects(s, b) {
		if old := o.LegacyName(); old != o.Name {
			from := o
			from.Name = old
			out = append(out, rename{from: emptyObject(from, s.Namespace), to: emptyObject(o, s.Namespace)})
		}
	}
	return out
}

// moveLegacyObjects moves the store objects an earlier version named otherwise to their
// names of today, so that an upgrade keeps every open signal. It copies each (data,
// bookkeeping and fencing annotations, marked with AnnotationMovedFrom), then deletes
// the earlier one at the version copied; a crash between leaves the copy, and the next
// pass only deletes. Only with no runner alive: done is false while the pod is stopping.
func (r *StrategyReconciler) moveLegacyObjects(ctx context.Context, sc *scope) (done bool, err error) {
	s := sc.strategy
	var pending []rename
	for _, rn := range legacyRenames(s, sc.active) {
		err := r.StateClient.Get(ctx, client.ObjectKeyFromObject(rn.from), rn.from)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return false, err
		}
		if !holdsContextOf(s, rn.from) {
			continue // a look-alike identity's object under the shared earlier name
		}
		pending = append(pending, rn)
	}
	if len(pending) == 0 {
		return true, nil
	}
	if err := r.stopPod(ctx, s); err != nil {
		return false, err
	}
	if gone, err := r.podGone(ctx, s); err != nil || !gone {
		return false, err
	}
	for _, rn := range pending {
		if err := r.moveObject(ctx, s, rn); err != nil {
			return false, err
		}
	}
	r.event(s, corev1.EventTypeNormal, ReasonStateRenamed,
		fmt.Sprintf("moved %d store objects to their new names", len(pending)))
	return true, nil
}

func (r *StrategyReconciler) moveObject(ctx context.Context, s *v1.Strategy, rn rename) error {
	from := rn.from
	err := r.StateClient.Get(ctx, client.ObjectKeyFromObject(rn.to), rn.to)
	switch {
	case apierrors.IsNotFound(err):
		copyObject(from, rn.to, s)
		if err := r.StateClient.Create(ctx, rn.to); err != nil {
			return fmt.Errorf("copying %s to %s: %w", from.GetName(), rn.to.GetName(), err)
		}
	case err != nil:
		return err
	case rn.to.GetAnnotations()[AnnotationMovedFrom] != string(from.GetUID()):
		return fmt.Errorf("cannot move %s to %s: an object of that name exists already; move its data by hand",
			from.GetName(), rn.to.GetName())
	}
	uid, rv := from.GetUID(), from.GetResourceVersion()
	return client.IgnoreNotFound(r.StateClient.Delete(ctx, from, client.Preconditions{UID: &uid, ResourceVersion: &rv}))
}

// copyObject makes to a copy of from's content under to's name, owned by s.
func copyObject(from, to client.Object, s *v1.Strategy) {
	labels := maps.Clone(from.GetLabels())
	if labels == nil {
		labels = map[string]string{}
	}
	labels[kubestore.LabelOwner] = string(s.UID)
	annotations := maps.Clone(from.GetAnnotations())
	if annotations == nil {
		annotations = map[string]string{}
	}
	delete(annotations, corev1.LastAppliedConfigAnnotation)
	annotations[AnnotationMovedFrom] = string(from.GetUID())
	switch f := from.(type) {
	case *corev1.ConfigMap:
		t := to.(*corev1.ConfigMap)
		t.Data, t.BinaryData, t.Immutable = f.Data, f.BinaryData, f.Immutable
	case *v1.StrategyState:
		to.(*v1.StrategyState).Spec = f.Spec
	}
	to.SetLabels(labels)
	to.SetAnnotations(annotations)
}

// holdsContextOf reports whether an earlier version's store object holds a context of
// the identity of s: a ConfigMap records its context, a StrategyState its names.
func holdsContextOf(s *v1.Strategy, obj client.Object) bool {
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		return ofIdentity(s, o.Annotations[configmapstore.AnnotationContext])
	case *v1.StrategyState:
		return o.Spec.StrategyName == s.EffectiveStrategyName() && o.Spec.ExchangeName == s.Spec.ExchangeName
	}
	return false
}
