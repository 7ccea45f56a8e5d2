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
	"time"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// StateSettle is how long the operator lets a strategy's state settle after a runner
// writes it before reading it for the Strategy's status: a runner writes as often as
// candles close, and every write of one StateSettle is read once, by one reconcile.
const StateSettle = time.Second

// settled enqueues the Strategies that strategies maps a store object to: at once when the
// object is made or goes (a missing store object is shown at once; the watch's predicates
// say which of these events reach it), StateSettle after it changes, before and after the
// change (the delaying queue keeps one request per Strategy, at its earliest time). The
// queue counts each delayed request as a retry (workqueue_retries_total).
func settled(strategies handler.MapFunc) handler.EventHandler {
	type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]
	now := func(ctx context.Context, obj client.Object, q queue) {
		for _, req := range strategies(ctx, obj) {
			q.Add(req)
		}
	}
	return handler.Funcs{
		CreateFunc:  func(ctx context.Context, e event.CreateEvent, q queue) { now(ctx, e.Object, q) },
		DeleteFunc:  func(ctx context.Context, e event.DeleteEvent, q queue) { now(ctx, e.Object, q) },
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q queue) { now(ctx, e.Object, q) },
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q queue) {
			for _, obj := range []client.Object{e.ObjectOld, e.ObjectNew} { // a relabelled object concerns both
				for _, req := range strategies(ctx, obj) {
					q.AddAfter(req, StateSettle)
				}
			}
		},
	}
}
