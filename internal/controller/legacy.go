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
	"maps"
	"strings"

	"github.com/strategyops/strategy-operator/internal/names"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/configmapstore"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
)

// AnnotationMovedFrom marks a store object copied from an earlier version's object
// ("<uid>/<resourceVersion>" of the source copied), so that a move interrupted after the
// copy is finished next time from the source as it is then.
const AnnotationMovedFrom = "trading.strategyops.dev/moved-from"

// AnnotationNamesMoved on the identity's Lease names the backend whose store objects are
// known to carry today's names, so that the look for earlier names is made once.
const AnnotationNamesMoved = "trading.strategyops.dev/names-moved"

// ReasonStateRenamed is the event of the store objects moved to their new names, and
// ReasonStateRenameFailed the Degraded reason of a move that cannot be made.
const (
	ReasonStateRenamed      = "StateObjectsRenamed"
	ReasonStateRenameFailed = "StateRenameFailed"
)

// rename is one store object to move from its earlier name.
type rename struct {
	from, to client.Object
	context  domain.Context
}

// legacyRenames lists the store objects of s on b whose earlier versions' names differ
// from today's (identities with '-' or other characters in their names).
func legacyRenames(s *v1.Strategy, b v1.PersistenceBackend) []rename {
	var out []rename
	for _, o := range storeObjects(s, b) {
		if old := o.LegacyName(); old != o.Name {
			from := o
			from.Name = old
			out = append(out, rename{from: emptyObject(from, s.Namespace), to: emptyObject(o, s.Namespace),
				context: o.Context})
		}
	}
	return out
}

// moveLegacyObjects moves the store objects an earlier version named otherwise to their
// names of today, so that an upgrade keeps every open signal. Each is copied (data,
// bookkeeping and fencing annotations, marked with AnnotationMovedFrom), then the earlier
// one is deleted at the version copied; a crash between leaves the copy, and the next pass
// finishes from the source as it is then. Only with no runner alive, and only once every
// target is known to be free: done is false while the pod is stopping.
func (r *StrategyReconciler) moveLegacyObjects(ctx context.Context, sc *scope, lease *coordinationv1.Lease) (bool, error) {
	s := sc.strategy
	if lease.Annotations[AnnotationNamesMoved] == string(sc.active) {
		return true, nil
	}
	var pending []rename
	for _, rn := range legacyRenames(s, sc.active) {
		err := r.StateClient.Get(ctx, client.ObjectKeyFromObject(rn.from), rn.from)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return false, err
		}
		if !holdsContext(rn.from, rn.context) {
			continue // another context's object under the shared earlier name
		}
		err = r.StateClient.Get(ctx, client.ObjectKeyFromObject(rn.to), rn.to)
		if err == nil && movedFrom(rn.to) != string(rn.from.GetUID()) {
			return false, fmt.Errorf("cannot move %s to %s: an object of that name exists already; move its data by hand",
				rn.from.GetName(), rn.to.GetName())
		}
		if client.IgnoreNotFound(err) != nil {
			return false, err
		}
		pending = append(pending, rn)
	}
	if len(pending) == 0 {
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, AnnotationNamesMoved, sc.active)
		return true, objectErr("recording the move on", lease,
			r.StateClient.Patch(ctx, lease, client.RawPatch(types.MergePatchType, []byte(patch))))
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

func movedFrom(obj client.Object) string {
	uid, _, _ := strings.Cut(obj.GetAnnotations()[AnnotationMovedFrom], "/")
	return uid
}

// moveObject copies the source as it is now (its runner may have written it until its pod
// went) and deletes it at that version.
func (r *StrategyReconciler) moveObject(ctx context.Context, s *v1.Strategy, rn rename) error {
	from := rn.from
	if err := r.StateClient.Get(ctx, client.ObjectKeyFromObject(from), from); err != nil {
		return client.IgnoreNotFound(err) // moved already
	}
	version := string(from.GetUID()) + "/" + from.GetResourceVersion()
	err := r.StateClient.Get(ctx, client.ObjectKeyFromObject(rn.to), rn.to)
	switch {
	case apierrors.IsNotFound(err):
		copyObject(from, rn.to, s, version)
		err = r.StateClient.Create(ctx, rn.to)
	case err != nil:
	case movedFrom(rn.to) != string(from.GetUID()):
		err = errors.New("an object of that name exists already; move its data by hand")
	case rn.to.GetAnnotations()[AnnotationMovedFrom] != version: // the source changed since the copy
		copyObject(from, rn.to, s, version)
		err = r.StateClient.Update(ctx, rn.to)
	}
	if err != nil {
		return fmt.Errorf("moving %s to %s: %w", from.GetName(), rn.to.GetName(), err)
	}
	uid, rv := from.GetUID(), from.GetResourceVersion()
	return objectErr("deleting the moved", from,
		client.IgnoreNotFound(r.StateClient.Delete(ctx, from, client.Preconditions{UID: &uid, ResourceVersion: &rv})))
}

// copyObject makes to a copy of from's content under to's name, owned by s, marked as
// copied from version.
func copyObject(from, to client.Object, s *v1.Strategy, version string) {
	labels := maps.Clone(from.GetLabels())
	if labels == nil {
		labels = map[string]string{}
	}
	labels[names.LabelOwner] = string(s.UID)
	annotations := maps.Clone(from.GetAnnotations())
	if annotations == nil {
		annotations = map[string]string{}
	}
	delete(annotations, corev1.LastAppliedConfigAnnotation)
	annotations[AnnotationMovedFrom] = version
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

// holdsContext reports whether an earlier version's store object holds context c exactly:
// a ConfigMap records its context, a StrategyState its names.
func holdsContext(obj client.Object, c domain.Context) bool {
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		return o.Annotations[configmapstore.AnnotationContext] == string(c.Domain)+"/"+c.Key.String()
	case *v1.StrategyState:
		return o.Spec.StrategyName == c.Key.StrategyName && o.Spec.ExchangeName == c.Key.ExchangeName &&
			o.Spec.Symbol == c.Key.Symbol
	}
	return false
}
