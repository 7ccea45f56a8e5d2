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
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/strategyops/strategy-operator/internal/names"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
)

// Reasons of the StorageNearLimit condition.
const (
	ReasonObjectNearLimit = "ObjectNearLimit"
	ReasonWithinLimits    = "WithinLimits"
	// ReasonArchivedHistory is the event of an archiving pass that moved entries.
	ReasonArchivedHistory = "ArchivedHistory"
	// ReasonPrunedHistory is the event of a pass that deleted archived entries past
	// spec.history's retention. A reason of its own: events of one reason and object are
	// folded into one series, which keeps the first one's note.
	ReasonPrunedHistory = "PrunedHistory"
)

// archiveCheckEvery: a live ledger's growth past each multiple of this many keys wakes the
// strategy, to archive it if it passed its limit (the periodic refresh checks too).
const archiveCheckEvery = 25

// archiveTimeout bounds one archiving pass, so that a store that keeps failing cannot hold
// a worker (the store retries transient errors until its context ends).
const archiveTimeout = 30 * time.Second

// tendStorage keeps a strategy's store objects bounded: it archives each symbol's live
// ledger once it holds more than spec.history.liveEntries, and sets StorageNearLimit while
// any object is past StorageWarnPercent of its size limit. It reads the objects' key
// counts and fill from the manager's cache (metadata only for ConfigMaps). It is best
// effort: a failure is logged and retried on the next pass, and never keeps the pod from
// being managed.
func (r *StrategyReconciler) tendStorage(ctx context.Context, s *v1.Strategy, b v1.PersistenceBackend) {
	ledgers := map[string]string{} // live ledger name -> symbol
	for _, sym := range s.Spec.Symbols {
		ledgers[domain.ConfigMapName(domain.History, strategyKey(s, sym))] = sym
	}
	var near []string
	for _, name := range configMapNames(s, b) {
		cm := configMapMetadata()
		if err := r.Client.Get(ctx, objectKey(s, name), cm); err != nil {
			continue // not cached yet, or deleted: ensureStorage makes it again
		}
		near = nearLimit(near, cm)
		sym, ledger := ledgers[name]
		if keys, _ := strconv.Atoi(cm.Annotations[kubestore.AnnotationKeys]); !ledger || keys <= s.EffectiveLiveEntries() {
			continue
		}
		actx, cancel := context.WithTimeout(ctx, archiveTimeout)
		k := strategyKey(s, sym)
		moved, err := domain.ArchiveHistory(actx, r.StateClient, s.Namespace, k, s.EffectiveLiveEntries(),
			map[string]string{names.LabelOwner: string(s.UID)})
		pruned := 0
		if err == nil && moved > 0 {
			pruned, err = domain.PruneArchives(actx, r.StateClient, s.Namespace, k, retention(s), time.Now())
		}
		cancel()
		r.archived(ctx, s, sym, moved, pruned, "a sealed history archive", err)
	}
	for _, name := range stateNames(s, b) {
		st := stateMetadata()
		if err := r.Client.Get(ctx, objectKey(s, name), st); err == nil {
			near = nearLimit(near, st)
		}
	}
	if len(near) == 0 {
		setCondition(s, v1.ConditionStorageNearLimit, false, ReasonWithinLimits,
			fmt.Sprintf("every store object is below %d%% of its size limit", v1.StorageWarnPercent))
		return
	}
	slices.Sort(near)
	setCondition(s, v1.ConditionStorageNearLimit, true, ReasonObjectNearLimit,
		fmt.Sprintf("past %d%% of the size limit: %s; writes fail with ErrTooLarge at 100%%",
			v1.StorageWarnPercent, strings.Join(near, ", ")))
}

// retention is how spec.history bounds the archived ledger of each symbol of s.
func retention(s *v1.Strategy) domain.Retention {
	r := domain.Retention{Entries: s.EffectiveArchivedEntries()}
	if a := s.Spec.History.MaxAge; a != nil {
		r.MaxAge = a.Duration
	}
	return r
}

// archived tells what a pass of archiving sym's ledger (into where) did.
func (r *StrategyReconciler) archived(ctx context.Context, s *v1.Strategy, sym string, moved, pruned int, where string,
	err error) {
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Could not archive the history ledger; trying again on the next pass", "symbol", sym)
	}
	if moved > 0 {
		r.event(s, corev1.EventTypeNormal, ReasonArchivedHistory,
			fmt.Sprintf("moved %d finished signals of %s into %s", moved, sym, where))
	}
	if pruned > 0 {
		r.event(s, corev1.EventTypeNormal, ReasonPrunedHistory, fmt.Sprintf("deleted %d archived signals of %s "+
			"past spec.history's retention", pruned, sym))
	}
}

// usage is how full a store object is, in percent, as its last write recorded.
func usage(obj client.Object) int {
	u, _ := strconv.Atoi(obj.GetAnnotations()[kubestore.AnnotationUsage])
	return u
}

func nearLimit(near []string, obj client.Object) []string {
	if u := usage(obj); u >= v1.StorageWarnPercent {
		near = append(near, fmt.Sprintf("%s %s (%d%%)", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), u))
	}
	return near
}

// storeObjectEvents passes what the strategy must act on among the changes of the
// ConfigMaps the stores made (they carry a domain label): a deletion (make it again), a
// live ledger growing past another multiple of archiveCheckEvery keys (archive it), and
// an object crossing StorageWarnPercent either way, and a signal opening or closing (which
// moves the open-signal count, and may release a drained symbol or a waiting update).
// Runners update these objects on every write; the other updates need no reconcile.
var storeObjectEvents = predicate.Funcs{
	CreateFunc:  func(event.CreateEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
	DeleteFunc: func(e event.DeleteEvent) bool {
		_, ok := e.Object.GetLabels()[names.LabelDomain]
		return ok
	},
	UpdateFunc: func(e event.UpdateEvent) bool {
		if _, ok := e.ObjectNew.GetLabels()[names.LabelDomain]; !ok {
			return false
		}
		if (usage(e.ObjectOld) >= v1.StorageWarnPercent) != (usage(e.ObjectNew) >= v1.StorageWarnPercent) {
			return true
		}
		keys := func(o client.Object) int {
			n, _ := strconv.Atoi(o.GetAnnotations()[kubestore.AnnotationKeys])
			return n
		}
		switch domain.Domain(e.ObjectNew.GetLabels()[names.LabelDomain]) {
		case domain.History:
			return keys(e.ObjectNew)/archiveCheckEvery > keys(e.ObjectOld)/archiveCheckEvery
		case domain.Signal, domain.Schedule:
			return true // written only as a signal opens, changes or closes
		}
		return false
	},
}

// stateObjectEvents passes what the strategy must act on among the changes of
// StrategyStates, besides their creation and deletion: a signal opening or closing (their
// store sets the phase label on every write; it moves the open-signal count, and may
// release a drained symbol or a waiting update), any other change of labels (a relabelled
// object concerns the Strategies of both names), a change of the spec that no store made
// (a hand edit: the generation moved, the store's write count did not), an object
// crossing StorageWarnPercent either way, and one being deleted. A runner writes its
// StrategyState as often as candles move its signal, and the operator writes the status;
// those updates need no reconcile. An object without the phase label (made by the
// operator and written by no runner of this version yet, or only by an earlier one)
// passes every change, as before there was one.
var stateObjectEvents = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, n := e.ObjectOld, e.ObjectNew
		_, labelled := n.GetLabels()[names.LabelPhase]
		seq := func(obj client.Object) string { return obj.GetAnnotations()[kubestore.AnnotationSeq] }
		return !labelled || !maps.Equal(o.GetLabels(), n.GetLabels()) ||
			(o.GetGeneration() != n.GetGeneration() && seq(o) == seq(n)) ||
			(usage(o) >= v1.StorageWarnPercent) != (usage(n) >= v1.StorageWarnPercent) ||
			o.GetDeletionTimestamp().IsZero() != n.GetDeletionTimestamp().IsZero()
	},
}

// tend removes the stale copy a switch left and keeps the state where it lives bounded.
func (r *StrategyReconciler) tend(ctx context.Context, sc *scope) error {
	if domain.HomeOf(sc.active) == domain.OnVolume {
		return nil
	}
	if err := r.removeStale(ctx, sc); err != nil {
		return err
	}
	if domain.HomeOf(sc.active) == domain.InObjects {
		r.tendStorage(ctx, sc.strategy, sc.active)
	} else {
		r.tendDatabase(ctx, sc.strategy, sc.activePlace())
	}
	return nil
}

// storageFailed stops or retries a strategy whose storage could not be made ready (err):
// a name someone else holds, state another Strategy owns, or a backend that failed.
func (r *StrategyReconciler) storageFailed(ctx context.Context, sc *scope, err error) (ctrl.Result, error) {
	switch {
	case errors.Is(err, errNameTaken):
		return r.stopIfNameTaken(ctx, sc, err)
	case errors.Is(err, errOwnedElsewhere):
		return r.standDownOwned(ctx, sc, err)
	}
	reason := ReasonStorageFailed
	if domain.HomeOf(sc.active) == domain.InDatabase {
		reason = databaseReason(err)
	}
	setCondition(sc.strategy, v1.ConditionPersistenceReady, false, reason, err.Error())
	if domain.HomeOf(sc.active) == domain.InDatabase {
		// Not reachable now: tried again; a pod already running keeps retrying on its own.
		return ctrl.Result{RequeueAfter: databaseRetry}, nil
	}
	return ctrl.Result{}, err
}

// ensureStorage makes the PersistentVolumeClaim (File) or the store objects (ConfigMap,
// StrategyState). None carries an owner reference: the state outlives the Strategy unless
// retention is Delete.
func (r *StrategyReconciler) ensureStorage(ctx context.Context, s *v1.Strategy, p place) error {
	b := p.backend
	if domain.HomeOf(b) == domain.InDatabase {
		return r.checkDatabase(ctx, s, p)
	}
	if domain.HomeOf(b) == domain.OnVolume {
		claim := desiredClaim(s)
		err := r.Client.Create(ctx, claim)
		if apierrors.IsAlreadyExists(err) {
			// Kept from before (retention Retain), or someone else's: the runner mounts only
			// a claim the operator made for a Strategy of this name.
			if err := r.StateClient.Get(ctx, client.ObjectKeyFromObject(claim), claim); err != nil {
				return objectErr("reading", claim, err)
			}
			if !ours(s, claim) {
				return nameTaken(claim)
			}
			return nil
		}
		return err
	}
	cond := meta.FindStatusCondition(s.Status.Conditions, v1.ConditionPersistenceReady)
	if cond != nil && cond.Status == metav1.ConditionTrue && s.Status.ObservedGeneration == s.Generation &&
		s.Status.ActiveBackend == b {
		// Made when this generation was first reconciled: make them again only if one was
		// deleted since (the runner cannot create them). The cache answers this.
		all, err := r.stateObjectsCached(ctx, s, b)
		if err != nil || all {
			return err
		}
		r.event(s, corev1.EventTypeWarning, ReasonStateObjectMissing, "a store object was deleted; making it again")
	}
	return r.ensureStateObjects(ctx, s, b)
}

// stateObjectsCached reports whether the manager's cache holds every store object of s on b.
func (r *StrategyReconciler) stateObjectsCached(ctx context.Context, s *v1.Strategy, b v1.PersistenceBackend) (bool, error) {
	exists := func(obj client.Object, name string) (bool, error) {
		err := r.Client.Get(ctx, objectKey(s, name), obj)
		if apierrors.IsNotFound(err) {
			// The cache may not have seen an object made moments ago: ask the API server.
			err = r.StateClient.Get(ctx, objectKey(s, name), obj)
		}
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}
	for _, name := range configMapNames(s, b) {
		if ok, err := exists(configMapMetadata(), name); !ok {
			return false, err
		}
	}
	for _, name := range stateNames(s, b) {
		if ok, err := exists(stateMetadata(), name); !ok {
			return false, err
		}
	}
	return true, nil
}
