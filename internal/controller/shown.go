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
	"encoding/json"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
)

// shownCloses remembers, per StrategyState, the close this operator last wrote onto it, so
// that each close is written once. A Strategy's entries go when it is deleted or found
// gone (forget).
type shownCloses struct {
	mu sync.Mutex
	by map[types.NamespacedName]map[string]string // by Strategy, then by StrategyState
}

func (s *shownCloses) shown(strategy types.NamespacedName, state string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.by[strategy][state]
}

func (s *shownCloses) record(strategy types.NamespacedName, state, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.by == nil {
		s.by = map[types.NamespacedName]map[string]string{}
	}
	if s.by[strategy] == nil {
		s.by[strategy] = map[string]string{}
	}
	s.by[strategy][state] = id
}

func (s *shownCloses) forget(strategy types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.by, strategy)
}

// showCloses writes each symbol's last close (closes, by symbol) onto the status of the
// StrategyState that holds the symbol on backend b, if one does, for kubectl get
// strategystates to show beside the signal; the runner writes the spec, never the status.
// Failures are logged: the next pass tries again.
func (r *StrategyReconciler) showCloses(ctx context.Context, s *v1.Strategy, b v1.PersistenceBackend,
	closes map[string]*domain.HistoryEntry) {
	strategy := client.ObjectKeyFromObject(s)
	for _, o := range storeObjects(s, b) {
		h := closes[o.Context.Key.Symbol]
		if o.Kind != domain.KindStrategyState || h == nil || r.shown.shown(strategy, o.Name) == h.ID {
			continue
		}
		c := closedSignal(h)
		shown := v1.StateClose{ID: c.ID, Reason: c.Reason, ClosedAt: c.ClosedAt}
		if c.PnL != nil {
			shown.PnL = v1.ReadablePercent(c.PnL.PnlPercentage)
		}
		patch, _ := json.Marshal(map[string]any{"status": v1.StrategyStateStatus{LastClose: &shown}})
		st := &v1.StrategyState{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: o.Name}}
		err := r.StateClient.Status().Patch(ctx, st, client.RawPatch(types.MergePatchType, patch))
		switch {
		case apierrors.IsNotFound(err): // none to show it on yet: shown once there is
		case err != nil:
			ctrl.LoggerFrom(ctx).Error(err, "Could not show the last close on the StrategyState", "stateObject", o.Name)
		default:
			r.shown.record(strategy, o.Name, h.ID)
		}
	}
}
