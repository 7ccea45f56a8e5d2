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
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
)

// AnnotationPrimaryLost, set on a Strategy to the name of the Secret of its database
// backend once that database is lost for good (NAME, or NAME/KEY when the new backend's URL
// is in the same Secret), orders a promotion: the Strategy's spec
// now names one of its replicas as the backend, and the operator moves there without
// copying the state from the lost database, which it cannot read: the replica's copy
// becomes the state. The order holds only while the lost database does not answer (one
// that answers has its state moved as on any switch), and only onto a database that holds
// state a runner of the Strategy wrote (a replica's copies carry their fencing tokens).
// Writes the lost database acknowledged that had not reached the replica yet (its lag,
// strategyops_store_replica_lag_seconds) are lost with it.
const AnnotationPrimaryLost = "trading.strategyops.dev/primary-lost"

// lostProbe is how long the database an order names as lost has to answer.
const lostProbe = 5 * time.Second

// namedLost reports whether AnnotationPrimaryLost on s names the database at p: its
// Secret's name, or the name and key.
func namedLost(s *v1.Strategy, p place) bool {
	lost := s.Annotations[AnnotationPrimaryLost]
	return lost != "" && p.db != nil && (lost == p.db.Name || lost == p.db.Name+"/"+p.db.Key)
}

// statePlace is where the state of sc is read before its switch: the active place, or,
// when a person says the active database is lost and the spec names another, the new
// place, which is to become the state (a promoted replica).
func statePlace(sc *scope) place {
	active := sc.activePlace()
	if namedLost(sc.strategy, active) && !active.same(sc.desiredPlace()) {
		return sc.desiredPlace()
	}
	return active
}

// promotion reports whether the switch of s from one place to another is a promotion: the
// annotation names the database at from as lost, and it does not answer. refusal, when
// not empty, says why an ordered promotion cannot happen.
func (r *StrategyReconciler) promotion(ctx context.Context, s *v1.Strategy, from, to place) (ordered bool,
	refusal string, err error) {
	if !namedLost(s, from) || domain.HomeOf(to.backend) != domain.InDatabase || to.db == nil {
		return false, "", nil
	}
	for _, rep := range s.Spec.Persistence.Replicas {
		if rep.Backend == to.backend && rep.URLSecretRef == *to.db {
			return true, fmt.Sprintf("replica %s is the backend now: remove it from spec.persistence.replicas", rep.Name), nil
		}
	}
	if to.db.Name == from.db.Name && s.Annotations[AnnotationPrimaryLost] == from.db.Name {
		return true, fmt.Sprintf("the lost database and the new backend share Secret %s: name the lost one as %s/%s "+
			"in the annotation %s", from.db.Name, from.db.Name, from.db.Key, AnnotationPrimaryLost), nil
	}
	contexts := strategyContexts(s)
	if err := r.answers(ctx, s, from, contexts); err == nil {
		r.event(s, corev1.EventTypeNormal, ReasonBackendSwitched, fmt.Sprintf("the annotation %s names %s as lost, "+
			"but it answers: its state is moved as on any switch", AnnotationPrimaryLost, from))
		return false, "", nil
	}
	ctx, cancel := withDeadline(ctx, to)
	defer cancel()
	db, err := r.openDatabase(ctx, s, to)
	if err != nil {
		return true, "", err
	}
	defer db.Close()
	token, err := domain.HighestToken(ctx, db.Backend(domain.NoFencing), contexts)
	switch {
	case err != nil:
		return true, "", fmt.Errorf("reading the fencing tokens in %s: %w", to, err)
	case token == 0:
		return true, fmt.Sprintf("the annotation %s orders a promotion, but %s holds no state a runner of this "+
			"strategy wrote: promote a replica of it", AnnotationPrimaryLost, to), nil
	}
	return true, "", nil
}

// answers reads the fencing tokens of contexts at p, within lostProbe.
func (r *StrategyReconciler) answers(ctx context.Context, s *v1.Strategy, p place, contexts []domain.Context) error {
	ctx, cancel := context.WithTimeout(ctx, lostProbe)
	defer cancel()
	b, closeState, err := r.openState(ctx, s, p, false)
	if err != nil {
		return err
	}
	defer closeState()
	_, err = domain.HighestToken(ctx, b, contexts)
	return err
}

// clearPromotionOrder removes AnnotationPrimaryLost from s once it names no database s is
// on: the promotion it ordered is recorded (or it named another database), and left in
// place it would order another the next time a database of that Secret name stops
// answering. The Strategy in memory keeps it; the patch carries nothing else.
func (r *StrategyReconciler) clearPromotionOrder(ctx context.Context, sc *scope) error {
	s := sc.strategy
	if _, ok := s.Annotations[AnnotationPrimaryLost]; !ok || namedLost(s, sc.activePlace()) {
		return nil
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:null}}}`, AnnotationPrimaryLost)
	obj := &v1.Strategy{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name}}
	err := r.Client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, []byte(patch)))
	if err == nil {
		r.event(s, corev1.EventTypeNormal, ReasonBackendSwitched, fmt.Sprintf("removed the annotation %s=%s: the "+
			"state is on %s, which it does not name", AnnotationPrimaryLost, s.Annotations[AnnotationPrimaryLost],
			sc.activePlace()))
	}
	return objectErr("removing the annotation "+AnnotationPrimaryLost+" of", obj, client.IgnoreNotFound(err))
}
