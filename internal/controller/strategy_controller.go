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
	"reflect"
	"slices"
	"time"

	"github.com/strategyops/strategy-operator/internal/names"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/handshake"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/tradingstatus"
)

// Condition reasons.
const (
	ReasonRunning            = "Running"
	ReasonPodPending         = "PodPending"
	ReasonPodReplacing       = "PodReplacing"
	ReasonSuspended          = "Suspended"
	ReasonBackendReady       = "BackendReady"
	ReasonBackendNotEnabled  = "BackendNotEnabled"
	ReasonBackendSwitched    = "BackendSwitched"
	ReasonBackendSwitchRefus = "BackendSwitchRefused"
	ReasonStorageFailed      = "StorageFailed"
	ReasonAsExpected         = "AsExpected"
	ReasonDeleting           = "Deleting"
	// ReasonRunnerFailing: the runner exits with an error and is restarted, again and again.
	ReasonRunnerFailing = "RunnerFailing"
	// ReasonControlPlaneOutage: the API server did not answer the runner's Lease renewals,
	// so it stopped trading; it stands by in its pod to take the Lease again.
	ReasonControlPlaneOutage = "ControlPlaneOutage"
	// ReasonPrimaryBehindReplica: the runner refuses to trade because a replica holds newer
	// state than the backend, which lost it (domain.ErrPrimaryBehind); runner
	// restore-from-replica brings it back.
	ReasonPrimaryBehindReplica = "PrimaryBehindReplica"
	// ReasonImageNotAllowed: spec.image is outside the operator's --allowed-images.
	ReasonImageNotAllowed = "ImageNotAllowed"
	// ReasonNameTaken: an object of one of the runner's names (its ServiceAccount, Role,
	// RoleBinding, pod or volume claim) exists and was not made by the operator for this
	// Strategy. The operator neither changes nor deletes it, and runs nothing until it is
	// gone.
	ReasonNameTaken = "NameTaken"
	// ReasonImagePullFailed: the node cannot pull the runner's image (ErrImagePull,
	// ImagePullBackOff, InvalidImageName); the message carries the node's account.
	ReasonImagePullFailed = "ImagePullFailed"
	// ReasonStaleRemoved is the event of the old copy's removal after a switch.
	ReasonStaleRemoved = "StaleStateRemoved"
)

// Reasons of events that are not also a condition's reason.
const (
	ReasonClaimedState       = "ClaimedState"
	ReasonStateObjectMissing = "StateObjectMissing"
	ReasonStoppingPod        = "StoppingPod"
	ReasonCreatedPod         = "CreatedPod"
	ReasonDeletedState       = "DeletedState"
)

// FinalizerDeleteState removes a strategy's state once its pod is gone (retention Delete).
const FinalizerDeleteState = "trading.strategyops.dev/delete-state"

// statusRefresh is how often a running strategy's status (open signals, pod) is re-read.
const statusRefresh = 30 * time.Second

// StrategyReconciler runs each Strategy as one pod with its own identity, least-privilege
// RBAC and the storage of its persistence backend.
type StrategyReconciler struct {
	// Client is the manager's cached client.
	Client client.Client
	// StateClient reads and writes strategy state directly on the API server (no cache):
	// open-signal counts, store objects, backend migration.
	StateClient client.Client
	Scheme      *runtime.Scheme
	Recorder    events.EventRecorder
	// RunnerImage is the runner image for strategies that name none.
	RunnerImage string
	// AllowedImages are the images besides RunnerImage a Strategy may name in spec.image,
	// as path.Match patterns ("registry.example.com/strategies/*"); the pattern AnyImage
	// allows every image. Empty: RunnerImage only.
	AllowedImages []string
	// Cluster names this operator's cluster in the owner records of databases
	// (ClusterIdentity); empty: owners recorded there are taken over only when ordered.
	Cluster string
	// Backends are the persistence backends this operator runs; nil means all.
	Backends []v1.PersistenceBackend
	// Selector limits the Strategies this operator runs (by their labels); nil means all.
	Selector labels.Selector
	// MaxConcurrentReconciles is how many Strategies are reconciled at once (default 1).
	MaxConcurrentReconciles int

	// indexed: SetupWithManager registered the field indexes of Strategies on the
	// manager's cache, which Client reads (listStrategies).
	indexed bool
	// shown are the closes written onto StrategyStates (showCloses).
	shown shownCloses
}

// scope is what one reconcile of one Strategy works with.
type scope struct {
	strategy *v1.Strategy
	// before is the status as read, to see which conditions changed.
	before v1.StrategyStatus
	// desired is spec.persistence.backend; active is where the state lives now.
	desired, active v1.PersistenceBackend
	// activeDB is the Secret key of active's database, when it is one.
	activeDB *v1.SecretKeyRef
	// draining are the symbols the runner watches but opens nothing on (see applySpec).
	draining []string
	// holdPod keeps the running pod while a spec change waits (updatePolicy WhenFlat).
	holdPod bool
	// retryAfter, when set, brings the strategy back that soon even if the pass succeeds
	// (a database that could not be reached).
	retryAfter time.Duration
	// lease is the state identity's Lease, once the strategy owns it: what its runner
	// records there (packages handshake, tradingstatus).
	lease *coordinationv1.Lease
}

// The manager's permissions, exactly what this package uses (a test runs the controller
// under the generated ClusterRole). The runner Roles it makes grant get and update on
// configmaps, strategystates and leases: RBAC lets it grant only what it holds itself.
//
// +kubebuilder:rbac:groups=trading.strategyops.dev,resources=strategies,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=trading.strategyops.dev,resources=strategies/status,verbs=patch
// +kubebuilder:rbac:groups=trading.strategyops.dev,resources=strategies/finalizers,verbs=update
// +kubebuilder:rbac:groups=trading.strategyops.dev,resources=strategystates,verbs=get;list;watch;create;update;patch;delete;deletecollection
// +kubebuilder:rbac:groups=trading.strategyops.dev,resources=strategystates/status,verbs=patch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;create;delete
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;update;patch;delete;deletecollection
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one Strategy's pod, identity, RBAC and storage to what its spec says,
// and reports how that went in its status, patched once at the end.
func (r *StrategyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, err error) {
	log := ctrl.LoggerFrom(ctx)
	var s v1.Strategy
	if err := r.Client.Get(ctx, req.NamespacedName, &s); err != nil {
		if apierrors.IsNotFound(err) {
			r.shown.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !r.selects(&s) {
		return ctrl.Result{}, nil // another operator's
	}
	sc := &scope{strategy: &s, before: *s.Status.DeepCopy(), desired: s.Spec.Persistence.Backend,
		active: s.Status.ActiveBackend}
	if sc.desired == "" {
		sc.desired = v1.DefaultBackend
	}
	if sc.active == "" {
		sc.active = sc.desired
	}
	if sc.activeDB = s.Status.ActiveDatabase; sc.activeDB == nil && sc.active == sc.desired {
		sc.activeDB = desiredPlace(&s, sc.desired).db // state not moved yet: where the spec says
	}
	patchBase := client.MergeFrom(s.DeepCopy())
	defer func() {
		if err == nil {
			s.Status.ObservedGeneration = s.Generation
		}
		s.Status.ActiveBackend, s.Status.ActiveDatabase = sc.active, nil
		if domain.HomeOf(sc.active) == domain.InDatabase {
			s.Status.ActiveDatabase = sc.activeDB
		}
		r.recordTransitions(sc)
		if perr := r.Client.Status().Patch(ctx, &s, patchBase); perr != nil && !apierrors.IsNotFound(perr) {
			err = errors.Join(err, perr)
		}
	}()

	if !s.DeletionTimestamp.IsZero() {
		if err := r.applySpec(ctx, sc); err != nil {
			return ctrl.Result{}, err
		}
		return r.reconcileDelete(ctx, sc)
	}
	log.V(1).Info("Reconciling strategy", "strategy", klog.KObj(&s), "backend", sc.desired)
	return r.reconcileNormal(ctx, sc)
}

func (r *StrategyReconciler) selects(o client.Object) bool {
	return r.Selector == nil || r.Selector.Matches(labels.Set(o.GetLabels()))
}

// activePlace is where the state lives now; desiredPlace where the spec wants it.
func (sc *scope) activePlace() place { return place{backend: sc.active, db: sc.activeDB} }

func (sc *scope) desiredPlace() place { return desiredPlace(sc.strategy, sc.desired) }

func (r *StrategyReconciler) enabled(b v1.PersistenceBackend) bool {
	return r.Backends == nil || slices.Contains(r.Backends, b)
}

func (r *StrategyReconciler) reconcileNormal(ctx context.Context, sc *scope) (ctrl.Result, error) {
	s := sc.strategy
	if err := r.ensureFinalizer(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	// From here on s.Spec is the applied spec (in memory only).
	if err := r.applySpec(ctx, sc); err != nil {
		return ctrl.Result{}, err
	}
	lease, owner, err := r.claim(ctx, s)
	if err != nil {
		return ctrl.Result{}, err
	}
	sc.lease = lease
	if lease == nil {
		return r.standDown(ctx, sc, "Strategy "+owner, "delete one of them or give this one another strategyName "+
			"or exchangeName")
	}
	if res, aside, err := r.ownRiskProfiles(ctx, sc, lease); aside || err != nil {
		return res, err
	}
	if !r.enabled(sc.desired) {
		msg := fmt.Sprintf("this operator does not run the %s backend (enabled: %v)", sc.desired, r.Backends)
		setCondition(s, v1.ConditionPersistenceReady, false, ReasonBackendNotEnabled, msg)
		if err := r.stopPod(ctx, s); err != nil {
			return ctrl.Result{}, err
		}
		r.setStopped(sc, v1.StrategyFailed, ReasonBackendNotEnabled, "no pod runs: "+msg)
		return ctrl.Result{}, reconcile.TerminalError(errors.New(msg))
	}
	if domain.HomeOf(sc.active) == domain.InObjects {
		done, err := r.moveLegacyObjects(ctx, sc, lease)
		if err != nil {
			setCondition(s, v1.ConditionDegraded, true, ReasonStateRenameFailed, err.Error())
			return ctrl.Result{}, err
		}
		if !done {
			setCondition(s, v1.ConditionReady, false, ReasonPodReplacing,
				"stopping the runner to move the store objects to their new names")
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
	}
	if err := r.clearPromotionOrder(ctx, sc); err != nil {
		return ctrl.Result{}, err
	}
	if !sc.activePlace().same(sc.desiredPlace()) {
		if res, done, err := r.switchBackend(ctx, sc); !done || err != nil {
			return res, err
		}
	} else {
		meta.RemoveStatusCondition(&s.Status.Conditions, v1.ConditionDegraded)
	}
	if err := r.ensureIdentity(ctx, s, sc.active); err != nil {
		return r.stopIfNameTaken(ctx, sc, err)
	}
	if err := r.ensureStorage(ctx, s, sc.activePlace()); err != nil {
		return r.storageFailed(ctx, sc, err)
	}
	if err := r.labelOwned(ctx, s, lease); err != nil {
		return ctrl.Result{}, err
	}
	setCondition(s, v1.ConditionPersistenceReady, true, ReasonBackendReady,
		fmt.Sprintf("state is kept on the %s backend", sc.activePlace()))
	if domain.HomeOf(sc.active) != domain.InDatabase {
		meta.RemoveStatusCondition(&s.Status.Conditions, v1.ConditionStoreDurable)
	}
	if err := r.tend(ctx, sc); err != nil {
		return ctrl.Result{}, err
	}
	r.refreshOpenSignals(ctx, sc)
	if s.Spec.Suspend {
		if err := r.stopPod(ctx, s); err != nil {
			return ctrl.Result{}, err
		}
		r.setStopped(sc, v1.StrategySuspended, ReasonSuspended, "suspended: no pod runs, the state is kept")
		return ctrl.Result{}, nil
	}
	if msg := r.imageRefused(s); msg != "" && !sc.holdPod { // a pod kept until flat stays
		if err := r.stopPod(ctx, s); err != nil {
			return ctrl.Result{}, err
		}
		r.setStopped(sc, v1.StrategyFailed, ReasonImageNotAllowed, msg)
		return ctrl.Result{}, nil
	}
	res, err := r.ensurePod(ctx, sc)
	if errors.Is(err, errNameTaken) {
		return r.stopIfNameTaken(ctx, sc, err)
	}
	if sc.retryAfter > 0 && (res.RequeueAfter == 0 || res.RequeueAfter > sc.retryAfter) {
		res.RequeueAfter = sc.retryAfter
	}
	return res, err
}

func (r *StrategyReconciler) ensureFinalizer(ctx context.Context, s *v1.Strategy) error {
	want := s.Spec.Retention == v1.DeleteState
	if want == controllerutil.ContainsFinalizer(s, FinalizerDeleteState) {
		return nil
	}
	base := s.DeepCopy()
	if want {
		controllerutil.AddFinalizer(s, FinalizerDeleteState)
	} else {
		controllerutil.RemoveFinalizer(s, FinalizerDeleteState)
	}
	return objectErr("setting the finalizer of", s, r.Client.Patch(ctx, s, client.MergeFrom(base)))
}

// objectErr says which object an API error concerns: what was being done, its kind,
// namespace and name. nil stays nil.
func objectErr(doing string, obj client.Object, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s %s %s/%s: %w", doing, kindOf(obj), obj.GetNamespace(), obj.GetName(), err)
}

// kindOf is the kind of a typed object, as its Go type names it (Pod, Role).
func kindOf(obj client.Object) string { return reflect.TypeOf(obj).Elem().Name() }

// wrapErr prefixes err with what was being done; nil stays nil.
func wrapErr(doing string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// SetupWithManager registers the controller. It watches the objects it owns, and
// StrategyStates, whose changes move a strategy's open-signal count.
func (r *StrategyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	switch {
	case r.Client == nil, r.StateClient == nil, r.Scheme == nil:
		return errors.New("strategy controller: Client, StateClient and Scheme are required")
	case r.RunnerImage == "":
		return errors.New("strategy controller: a default runner image is required")
	}
	if err := indexCache(context.Background(), mgr.GetCache()); err != nil {
		return fmt.Errorf("strategy controller: %w", err)
	}
	r.indexed = true
	selected := predicate.NewPredicateFuncs(r.selects)
	// A Lease of a state identity matters when it changes hands or goes, or when its runner
	// records what it trades (package handshake), not when renewed.
	claimChanges := predicate.Funcs{
		CreateFunc: func(event.CreateEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld.GetAnnotations(), e.ObjectNew.GetAnnotations()
			return o[AnnotationOwnerUID] != n[AnnotationOwnerUID] || o[handshake.Annotation] != n[handshake.Annotation] ||
				o[tradingstatus.Annotation] != n[tradingstatus.Annotation]
		},
	}
	// A Strategy that is gone, or now names another identity, releases its own.
	released := predicate.Funcs{
		CreateFunc: func(event.CreateEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld.(*v1.Strategy), e.ObjectNew.(*v1.Strategy)
			return !sameIdentity(o, n)
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1.Strategy{}, builder.WithPredicates(selected)).
		Owns(&corev1.Pod{}).
		Owns(&corev1.ServiceAccount{}).
		Owns(&rbacv1.Role{}).
		Owns(&rbacv1.RoleBinding{}).
		WatchesMetadata(&coordinationv1.Lease{}, handler.EnqueueRequestsFromMapFunc(r.strategiesOfState),
			builder.WithPredicates(claimChanges)).
		Watches(&v1.Strategy{}, handler.EnqueueRequestsFromMapFunc(r.siblings), builder.WithPredicates(released)).
		WatchesMetadata(&v1.StrategyState{}, settled(r.strategiesOfState), builder.WithPredicates(stateObjectEvents)).
		WatchesMetadata(&corev1.ConfigMap{}, settled(r.strategiesOfState), builder.WithPredicates(storeObjectEvents)).
		WithOptions(crcontroller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Named("strategy").
		Complete(r)
}

// strategiesOfState maps a store object (a StrategyState, or a ConfigMap of a strategy or
// of its risk profile) to the Strategies of its strategy name.
func (r *StrategyReconciler) strategiesOfState(ctx context.Context, obj client.Object) []reconcile.Request {
	name, ok := obj.GetLabels()[names.LabelStrategy]
	if !ok {
		name, ok = obj.GetLabels()[names.LabelRisk]
	}
	if !ok {
		return nil
	}
	list, err := r.strategiesNamed(ctx, obj.GetNamespace(), name)
	if err != nil {
		return nil
	}
	var out []reconcile.Request
	for i := range list.Items {
		applied, _ := appliedIdentity(&list.Items[i])
		if names.LabelValue(list.Items[i].EffectiveStrategyName()) == name || names.LabelValue(applied) == name {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return out
}
