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

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// The Lease elects one owner of a state identity within a namespace; a database is shared
// beyond it (other namespaces, other clusters), so a database also records the identity's
// owner beside its rows (domain.Owner). A Strategy uses a database only once it is the
// recorded owner there. It becomes the owner where none is recorded; in place of an owner
// of its own cluster and namespace that is gone (as the Lease is taken over); or when a
// person orders it with AnnotationTakeOverFrom, from an owner of another namespace of its
// cluster that is gone, or from an owner of another cluster (which it cannot see). Never
// from an owner of its cluster that still exists, which includes one deleting the state
// (its record marked releasing meanwhile).

// AnnotationTakeOverFrom, set on a Strategy to the UID of the owner a database records for
// its state identity, makes it take the identity over from that owner: for an owner in
// another namespace or cluster that is gone for good (deleted with retention Retain, or
// its cluster lost). The owner's runner, if it still runs and reaches the database, is
// fenced out by the new owner's runner, whose token goes past every token the stores
// record; its operator, once it runs again, stands it down.
const AnnotationTakeOverFrom = "trading.strategyops.dev/take-over-from"

// errOwnedElsewhere: the database records another Strategy as the owner of the identity.
var errOwnedElsewhere = errors.New("owned by another Strategy")

// ownedError names the owner a database records (errors.Is errOwnedElsewhere).
type ownedError struct {
	owner domain.Owner
	at    place
}

func (e *ownedError) Error() string {
	return fmt.Sprintf("%s records %s as the owner of this state", e.at, e.owner)
}

func (e *ownedError) Is(target error) bool { return target == errOwnedElsewhere }

// claimDatabase makes s the recorded owner of its state identity in db (at p), or returns
// an *ownedError naming the owner recorded there.
func (r *StrategyReconciler) claimDatabase(ctx context.Context, s *v1.Strategy, db *domain.Database, p place) error {
	name, exchange := s.EffectiveStrategyName(), s.Spec.ExchangeName
	me := domain.Owner{Cluster: r.Cluster, Namespace: s.Namespace, Name: s.Name, UID: string(s.UID)}
	cur, rev, found, err := db.ReadOwner(ctx, name, exchange)
	switch {
	case err != nil:
		return err
	case !found:
		return db.RecordOwner(ctx, name, exchange, me, "")
	case cur.UID == me.UID:
		if cur == me {
			return nil
		}
		return db.RecordOwner(ctx, name, exchange, me, rev) // the cluster's name changed, or a release was cut short
	}
	ordered := s.Annotations[AnnotationTakeOverFrom] == cur.UID
	if r.Cluster == "" || cur.Cluster != r.Cluster {
		if !ordered { // another cluster's owner, or one this operator cannot place: only by order
			return &ownedError{owner: cur, at: p}
		}
		return r.takeOver(ctx, s, db, p, me, cur, rev, "as the annotation "+AnnotationTakeOverFrom+" ordered")
	}
	alive, err := r.ownerAlive(ctx, name, exchange, cur)
	switch {
	case err != nil:
		return err
	case alive, cur.Namespace != s.Namespace && !ordered:
		return &ownedError{owner: cur, at: p}
	}
	return r.takeOver(ctx, s, db, p, me, cur, rev, "whose owner is gone")
}

// recordOnReplicas records s, which its backend records as the owner, on each replica of
// s that records no owner, so that a replica promoted in place of a lost backend
// (AnnotationPrimaryLost) names the owner the backend named: another Strategy is refused
// it as it would be refused the backend. A replica that does not answer is passed over
// (a later pass records it), and one that records another owner is left as it is.
func (r *StrategyReconciler) recordOnReplicas(ctx context.Context, s *v1.Strategy) {
	name, exchange := s.EffectiveStrategyName(), s.Spec.ExchangeName
	me := domain.Owner{Cluster: r.Cluster, Namespace: s.Namespace, Name: s.Name, UID: string(s.UID)}
	for _, rep := range s.Spec.Persistence.Replicas {
		db, err := r.openDatabase(ctx, s, place{backend: rep.Backend, db: &rep.URLSecretRef})
		if err != nil {
			continue
		}
		if _, _, found, err := db.ReadOwner(ctx, name, exchange); err == nil && !found {
			_ = db.RecordOwner(ctx, name, exchange, me, "")
		}
		db.Close()
	}
}

// takeOver records me in place of cur, read at rev, and says so.
func (r *StrategyReconciler) takeOver(ctx context.Context, s *v1.Strategy, db *domain.Database, p place,
	me, cur domain.Owner, rev driver.Revision, why string) error {
	if err := db.RecordOwner(ctx, s.EffectiveStrategyName(), s.Spec.ExchangeName, me, rev); err != nil {
		return err
	}
	r.event(s, corev1.EventTypeNormal, ReasonClaimedState, fmt.Sprintf("took over the state of %s in %s from %s, %s",
		identityOf(s), p, cur, why))
	return nil
}

// ownerAlive reports whether the owner o, of this cluster, still exists and still names the
// identity (strategy name and exchange), reading the API server. An owner in a namespace
// the operator may not read counts as alive: it cannot tell.
func (r *StrategyReconciler) ownerAlive(ctx context.Context, name, exchange string, o domain.Owner) (bool, error) {
	var st v1.Strategy
	err := r.StateClient.Get(ctx, types.NamespacedName{Namespace: o.Namespace, Name: o.Name}, &st)
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case apierrors.IsForbidden(err):
		return true, nil
	case err != nil:
		return false, err
	}
	// The identity it applies, or the one its spec names (recorded before it is applied).
	n, e := appliedIdentity(&st)
	names := n == name && e == exchange || st.EffectiveStrategyName() == name && st.Spec.ExchangeName == exchange
	return string(st.UID) == o.UID && names, nil
}

// standDownOwned stands s down for the owner its database records (err, an *ownedError),
// saying how to take the state over once that owner is gone for good.
func (r *StrategyReconciler) standDownOwned(ctx context.Context, sc *scope, err error) (reconcile.Result, error) {
	var owned *ownedError
	if !errors.As(err, &owned) {
		return reconcile.Result{}, err
	}
	return r.standDown(ctx, sc, fmt.Sprintf("%s, as %s records", owned.owner, owned.at),
		fmt.Sprintf("give this one another strategyName or exchangeName, or, if that Strategy is gone for good, "+
			"annotate this one with %s=%s to take the state over", AnnotationTakeOverFrom, owned.owner.UID))
}

// deleteDatabaseState removes every row of contexts at p, and then the owner record, when
// s is the owner the database records (or none is recorded: state from before owners were
// recorded there). It marks the record releasing first, so that nobody takes the state
// over while its rows go. The state of another owner, or under a record that names no
// owner, is left whole, with a Warning event.
func (r *StrategyReconciler) deleteDatabaseState(ctx context.Context, s *v1.Strategy, p place,
	contexts []domain.Context) error {
	ctx, cancel := withDeadline(ctx, p)
	defer cancel()
	db, err := r.openDatabase(ctx, s, p)
	if err != nil {
		return err
	}
	defer db.Close()
	name, exchange := s.EffectiveStrategyName(), s.Spec.ExchangeName
	owner, rev, found, err := db.ReadOwner(ctx, name, exchange)
	if errors.Is(err, driver.ErrInvalidValue) {
		r.event(s, corev1.EventTypeWarning, ReasonStateClaimed, fmt.Sprintf("left the state of %s in %s whole: %v",
			identityOf(s), p, err))
		return nil
	}
	if err != nil {
		return wrapErr("reading the owner of the state of "+identityOf(s)+" in "+p.String(), err)
	}
	if found && owner.UID != string(s.UID) {
		r.event(s, corev1.EventTypeWarning, ReasonStateClaimed, fmt.Sprintf("left the state of %s in %s whole: "+
			"it belongs to %s", identityOf(s), p, owner))
		return nil
	}
	releasing := domain.Owner{Cluster: r.Cluster, Namespace: s.Namespace, Name: s.Name, UID: string(s.UID),
		Releasing: true}
	if owner != releasing {
		if err := db.RecordOwner(ctx, name, exchange, releasing, rev); err != nil {
			return err // changed meanwhile: read again on the next pass
		}
		if _, rev, _, err = db.ReadOwner(ctx, name, exchange); err != nil {
			return err
		}
	}
	if err := db.DeleteState(ctx, contexts); err != nil {
		return wrapErr("deleting the state of "+identityOf(s)+" in "+p.String(), err)
	}
	return db.ReleaseOwner(ctx, name, exchange, rev)
}

// ClusterIdentity is what the operator records as its cluster in a database's owner
// records: name when set, else the UID of the cluster's kube-system namespace, which no
// other cluster has. Empty when neither can be had: then no owner recorded in a database
// is ever taken over without AnnotationTakeOverFrom.
func ClusterIdentity(ctx context.Context, c client.Reader, name string) (string, error) {
	if name != "" {
		return name, nil
	}
	var ns corev1.Namespace
	if err := c.Get(ctx, types.NamespacedName{Name: "kube-system"}, &ns); err != nil {
		return "", fmt.Errorf("reading the kube-system namespace for the cluster's identity: %w", err)
	}
	return "uid:" + string(ns.UID), nil
}
