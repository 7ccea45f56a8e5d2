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
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/names"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
)

// TestWritesOfOneSettleAreReadOnce: a burst of runner writes to a StrategyState asks for
// one reconcile of its Strategy, StateSettle after the first; a store object made or
// deleted asks at once.
func TestWritesOfOneSettleAreReadOnce(t *testing.T) {
	ctx := context.Background()
	strategy := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "alpha"}}
	h := settled(func(context.Context, client.Object) []reconcile.Request { return []reconcile.Request{strategy} })
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	st := &v1.StrategyState{}

	first := time.Now()
	for range 50 {
		h.Update(ctx, event.UpdateEvent{ObjectOld: st, ObjectNew: st}, q)
	}
	if n := q.Len(); n != 0 {
		t.Fatalf("%d reconciles asked for at once after a burst of writes, want none before StateSettle", n)
	}
	got, _ := q.Get()
	if waited := time.Since(first); got != strategy || waited < StateSettle {
		t.Fatalf("got %v after %s, want %v after at least %s", got, waited, strategy, StateSettle)
	}
	q.Done(got)
	time.Sleep(StateSettle / 2)
	if n := q.Len(); n != 0 {
		t.Fatalf("%d more reconciles queued after the burst's one, want none", n)
	}

	h.Delete(ctx, event.DeleteEvent{Object: st}, q)
	h.Create(ctx, event.CreateEvent{Object: st}, q)
	if n := q.Len(); n != 1 {
		t.Fatalf("%d reconciles queued at once for a store object made and deleted, want 1", n)
	}
}

// TestOnlyWhatTheStrategyShowsOfAStateReachesIt: of the updates of a StrategyState, as the
// manager's cache hands them on, the runner's writes that leave its phase as it was, and
// the operator's own status writes, ask for no reconcile; a signal opening or closing, a
// new label, a hand edit, the object crossing StorageWarnPercent, its deletion, and any
// change of an object without the phase label (an earlier runner's) do.
func TestOnlyWhatTheStrategyShowsOfAStateReachesIt(t *testing.T) {
	var cached func(any) (any, error)
	for obj, by := range CacheOptions(nil).ByObject {
		if _, ok := obj.(*v1.StrategyState); ok {
			cached = by.Transform
		}
	}
	if cached == nil {
		t.Fatal("the manager's cache has no options for StrategyStates")
	}
	// state is a StrategyState as the cache keeps it, after seq writes of its store and
	// generation changes of its spec.
	state := func(phase v1.StatePhase, usage int, seq, generation int64, change ...func(*metav1.ObjectMeta)) client.Object {
		m := metav1.ObjectMeta{
			Name: "alpha-simulated-btcusdt", Namespace: "ns", Generation: generation,
			Labels: map[string]string{names.LabelStrategy: "alpha", names.LabelPhase: string(phase)},
			Annotations: map[string]string{kubestore.AnnotationUsage: strconv.Itoa(usage),
				kubestore.AnnotationSeq: strconv.FormatInt(seq, 10), kubestore.AnnotationRecent: `[{"seq":1}]`},
		}
		for _, f := range change {
			f(&m)
		}
		obj, err := cached(&metav1.PartialObjectMetadata{ObjectMeta: m})
		if err != nil {
			t.Fatal(err)
		}
		return obj.(client.Object)
	}
	open := state(v1.PhaseOpen, 3, 5, 7)
	relabelled := state(v1.PhaseOpen, 3, 5, 7, func(m *metav1.ObjectMeta) { m.Labels[names.LabelStrategy] = "beta" })
	deleting := state(v1.PhaseOpen, 3, 5, 7, func(m *metav1.ObjectMeta) { m.DeletionTimestamp = &metav1.Time{Time: time.Now()} })
	unlabelled := func(seq, generation int64) client.Object {
		return state(v1.PhaseOpen, 3, seq, generation, func(m *metav1.ObjectMeta) { delete(m.Labels, names.LabelPhase) })
	}
	for _, c := range []struct {
		name     string
		old, new client.Object
		want     bool
	}{
		{"a runner's write that moves no phase", open, state(v1.PhaseOpen, 4, 6, 8), false},
		{"the operator's status write", open, state(v1.PhaseOpen, 3, 5, 7), false},
		{"a signal closes", open, state(v1.PhaseIdle, 2, 6, 8), true},
		{"a signal opens", state(v1.PhaseIdle, 2, 4, 6), open, true},
		{"relabelled", open, relabelled, true},
		{"a hand edit of the spec", open, state(v1.PhaseOpen, 3, 5, 8), true},
		{"filling past the warning", open, state(v1.PhaseOpen, v1.StorageWarnPercent, 6, 8), true},
		{"back under it", state(v1.PhaseOpen, v1.StorageWarnPercent, 4, 6), open, true},
		{"deleted", open, deleting, true},
		{"an earlier runner's write", unlabelled(5, 7), unlabelled(6, 8), true},
	} {
		if got := stateObjectEvents.Update(event.UpdateEvent{ObjectOld: c.old, ObjectNew: c.new}); got != c.want {
			t.Errorf("%s: reconcile %v, want %v", c.name, got, c.want)
		}
	}
	if !stateObjectEvents.Create(event.CreateEvent{Object: open}) || !stateObjectEvents.Delete(event.DeleteEvent{Object: open}) {
		t.Error("a StrategyState made or deleted must reach its Strategy")
	}
}
