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
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"reflect"
	"slices"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
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
	// AllowedImages, when set, are the images a Strategy may name in spec.image, as
	// path.Match patterns ("registry.example.com/strategies/*"); RunnerImage always is.
	// Empty allows any image.
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
}

// The manager's permissions, exactly what this package uses (a test runs the controller
// under the generated ClusterRole). The runner Roles it makes grant get and update on
// configmaps, strategystates and leases: RBAC lets it grant only what it holds itself.
//
// +kubebuilder:rbac:groups=trading.strategyops.dev,resources=strategies,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=trading.strategyops.dev,resources=strategies/status,verbs=patch
// +kubebuilder:rbac:groups=trading.strategyops.dev,resources=strategies/finalizers,verbs=update
// +kubebuilder:rbac:groups=trading.strategyops.dev,resources=strategystates,verbs=get;list;watch;create;update;patch;delete;deletecollection
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
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !r.selects(&s) {
		return ctrl.Result{}, nil // another operator's
	}
	sc := &scope{strategy: &s, before: *s.Status.DeepCopy(), desired: s.Spec.Persistence.Backend,
		active: s.Status.ActiveBackend}
	if sc.desired == "" {
		sc.desired = v1.BackendStrategyState
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
		if sc.active.IsDatabase() {
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
	if lease == nil {
		return r.standDown(ctx, sc, "Strategy "+owner, "delete one of them or give this one another strategyName "+
			"or exchangeName")
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
	if sc.active.IsKube() {
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
		if errors.Is(err, errNameTaken) {
			return r.stopIfNameTaken(ctx, sc, err)
		}
		if errors.Is(err, errOwnedElsewhere) {
			return r.standDownOwned(ctx, sc, err)
		}
		reason := ReasonStorageFailed
		if sc.active.IsDatabase() {
			reason = databaseReason(err)
		}
		setCondition(s, v1.ConditionPersistenceReady, false, reason, err.Error())
		if sc.active.IsDatabase() {
			// Not reachable now: tried again; a pod already running keeps retrying on its
			// own.
			return ctrl.Result{RequeueAfter: databaseRetry}, nil
		}
		return ctrl.Result{}, err
	}
	if err := r.labelOwned(ctx, s, lease); err != nil {
		return ctrl.Result{}, err
	}
	setCondition(s, v1.ConditionPersistenceReady, true, ReasonBackendReady,
		fmt.Sprintf("state is kept on the %s backend", sc.activePlace()))
	if !sc.active.IsDatabase() {
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

// tend removes the stale copy a switch left and keeps the state where it lives bounded.
func (r *StrategyReconciler) tend(ctx context.Context, sc *scope) error {
	if sc.active == v1.BackendFile {
		return nil
	}
	if err := r.removeStale(ctx, sc); err != nil {
		return err
	}
	if sc.active.IsKube() {
		r.tendStorage(ctx, sc.strategy, sc.active)
	} else {
		r.tendDatabase(ctx, sc.strategy, sc.activePlace())
	}
	return nil
}

// imageRefused says why spec.image may not run ("" when it may).
func (r *StrategyReconciler) imageRefused(s *v1.Strategy) string {
	image := s.Spec.Image
	if image == "" || image == r.RunnerImage || len(r.AllowedImages) == 0 {
		return ""
	}
	for _, pattern := range r.AllowedImages {
		if ok, _ := path.Match(pattern, image); ok {
			return ""
		}
	}
	return fmt.Sprintf("spec.image %q is not among the images this operator runs (%s); no pod runs, the state is kept",
		image, strings.Join(r.AllowedImages, ", "))
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

// switchBackend moves a strategy's state to its newly chosen backend. done is false while
// the move waits (for the old pod to go); the state only moves with no runner alive.
func (r *StrategyReconciler) switchBackend(ctx context.Context, sc *scope) (ctrl.Result, bool, error) {
	s := sc.strategy
	from, to := sc.activePlace(), sc.desiredPlace()
	refuse := func(why string) (ctrl.Result, bool, error) {
		msg := fmt.Sprintf("staying on %s: %s", from, why)
		setCondition(s, v1.ConditionDegraded, true, ReasonBackendSwitchRefus, msg)
		return ctrl.Result{}, true, nil // keep running on the active backend
	}
	if sc.active == v1.BackendFile {
		return refuse(fmt.Sprintf("the File backend's state is on the strategy's volume, which the operator "+
			"cannot read, so it cannot move open signals to %s; switch back to File", sc.desired))
	}
	if sc.desired == v1.BackendFile {
		sum, err := r.readSignals(ctx, s, from, false)
		if err != nil {
			return ctrl.Result{}, false, err
		}
		if sum.open+sum.missing > 0 {
			return refuse(fmt.Sprintf("%d signals are open (or their store objects missing) and the operator "+
				"cannot write them to the File backend's volume; switch when none is open", sum.open+sum.missing))
		}
	}
	if to.backend.IsDatabase() {
		// Before the runner stops: a database the operator cannot reach (or a Secret it may
		// not use) keeps the strategy trading where it is, and is tried again.
		if err := r.checkDatabase(ctx, s, to); err != nil {
			sc.retryAfter = databaseRetry
			return refuse(fmt.Sprintf("cannot use %s: %v", to, err))
		}
	}
	if err := r.stopPod(ctx, s); err != nil {
		return ctrl.Result{}, false, err
	}
	if gone, err := r.podGone(ctx, s); err != nil || !gone {
		setCondition(s, v1.ConditionReady, false, ReasonPodReplacing, "waiting for the old pod to stop before moving the state")
		return ctrl.Result{RequeueAfter: time.Second}, false, err
	}
	if sc.desired != v1.BackendFile {
		if err := r.migrate(ctx, s, from, to); err != nil {
			return ctrl.Result{}, false, err
		}
	}
	r.event(s, corev1.EventTypeNormal, ReasonBackendSwitched, fmt.Sprintf("moved the state from %s to %s", from, to))
	if sc.active != v1.BackendFile {
		s.Status.StaleBackend, s.Status.StaleDatabase = from.backend, from.db // removed once this switch is recorded
	}
	sc.active, sc.activeDB = to.backend, to.db
	meta.RemoveStatusCondition(&s.Status.Conditions, v1.ConditionDegraded)
	return ctrl.Result{}, true, nil
}

// ensureIdentity makes the runner's ServiceAccount, Role and RoleBinding.
func (r *StrategyReconciler) ensureIdentity(ctx context.Context, s *v1.Strategy, b v1.PersistenceBackend) error {
	role := desiredRole(s, b)
	binding := desiredRoleBinding(s)
	objs := []struct {
		want     client.Object
		copySpec func(dst client.Object)
	}{
		{desiredServiceAccount(s), func(client.Object) {}},
		{role, func(o client.Object) { o.(*rbacv1.Role).Rules = role.Rules }},
		{binding, func(o client.Object) {
			rb := o.(*rbacv1.RoleBinding)
			rb.RoleRef, rb.Subjects = binding.RoleRef, binding.Subjects
		}},
	}
	for _, o := range objs {
		err := r.ensureOurs(ctx, r.Client, s, o.want, o.copySpec)
		if apierrors.IsAlreadyExists(err) {
			// Not in the cache: made moments ago, or by someone else without the operator's
			// labels (the cache holds only labelled ones).
			err = r.ensureOurs(ctx, r.StateClient, s, o.want, o.copySpec)
		}
		if err != nil {
			return fmt.Errorf("%T %s: %w", o.want, o.want.GetName(), err)
		}
	}
	return nil
}

// ensureOurs creates want through c, or brings the object of its name to it (copySpec, its
// labels, s as its controller) when that object is the operator's (ours). Someone else's
// is left as it is (CreateOrUpdate sees no change and writes nothing): errNameTaken.
func (r *StrategyReconciler) ensureOurs(ctx context.Context, c client.Client, s *v1.Strategy, want client.Object,
	copySpec func(dst client.Object)) error {
	// Only the name goes in: what CreateOrUpdate reads is then all the object has, whatever
	// the decoder keeps of what it decodes into.
	obj := reflect.New(reflect.TypeOf(want).Elem()).Interface().(client.Object)
	obj.SetNamespace(want.GetNamespace())
	obj.SetName(want.GetName())
	taken := false
	_, err := controllerutil.CreateOrUpdate(ctx, c, obj, func() error {
		if obj.GetResourceVersion() != "" && !ours(s, obj) {
			taken = true
			return nil
		}
		copySpec(obj)
		obj.SetLabels(want.GetLabels())
		return controllerutil.SetControllerReference(s, obj, r.Scheme)
	})
	if err == nil && taken {
		return nameTaken(obj)
	}
	return err
}

// ensureStorage makes the PersistentVolumeClaim (File) or the store objects (ConfigMap,
// StrategyState). None carries an owner reference: the state outlives the Strategy unless
// retention is Delete.
func (r *StrategyReconciler) ensureStorage(ctx context.Context, s *v1.Strategy, p place) error {
	b := p.backend
	if b.IsDatabase() {
		return r.checkDatabase(ctx, s, p)
	}
	if b == v1.BackendFile {
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
	if b == v1.BackendStrategyState {
		for _, name := range stateNames(s) {
			if ok, err := exists(stateMetadata(), name); !ok {
				return false, err
			}
		}
	}
	return true, nil
}

func (r *StrategyReconciler) refreshOpenSignals(ctx context.Context, sc *scope) {
	if sc.active == v1.BackendFile {
		// On the pod's volume: the operator cannot read it.
		sc.strategy.Status.OpenSignals, sc.strategy.Status.LastClosedSignal = nil, nil
		return
	}
	sum, err := r.readSignals(ctx, sc.strategy, sc.activePlace(), true)
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Could not read the strategy's signals")
		return
	}
	sc.strategy.Status.OpenSignals = &sum.open
	if sum.lastClosed != nil { // an archived ledger keeps the last close shown
		sc.strategy.Status.LastClosedSignal = sum.lastClosed
	}
}

func (r *StrategyReconciler) getPod(ctx context.Context, s *v1.Strategy) (*corev1.Pod, error) {
	var pod corev1.Pod
	err := r.Client.Get(ctx, objectKey(s, RunnerName(s)), &pod)
	if apierrors.IsNotFound(err) || (err == nil && !ours(s, &pod)) {
		return nil, nil
	}
	return &pod, err
}

// podGone reports whether the runner pod of s is gone. A direct read: the cache may still
// hold a pod that is gone, or miss one just made, or one of s whose labels were taken
// off (the cache holds only labelled ones), which is deleted here, as stopPod would have.
// A pod of the runner's name that is not the operator's (ours) is not a runner of s: it
// counts as gone, and is left alone (ensurePod then cannot create the runner's, and says
// why).
func (r *StrategyReconciler) podGone(ctx context.Context, s *v1.Strategy) (bool, error) {
	var pod corev1.Pod
	err := r.StateClient.Get(ctx, objectKey(s, RunnerName(s)), &pod)
	if apierrors.IsNotFound(err) || (err == nil && !ours(s, &pod)) {
		return true, nil
	}
	if err == nil && pod.DeletionTimestamp.IsZero() && !managed(&pod) {
		r.event(s, corev1.EventTypeNormal, ReasonStoppingPod, fmt.Sprintf("deleting pod %s", pod.Name))
		err = objectErr("deleting", &pod, client.IgnoreNotFound(r.StateClient.Delete(ctx, &pod,
			client.Preconditions{UID: &pod.UID})))
	}
	return false, err
}

// errNameTaken: an object of one of the runner's names exists, made by someone else.
var errNameTaken = errors.New("name taken")

// nameTaken is errNameTaken for obj, saying what to do.
func nameTaken(obj client.Object) error {
	return fmt.Errorf("%w: %s %s exists and was not made by strategy-operator for this Strategy; "+
		"it is left alone, and the strategy runs once it is deleted", errNameTaken, kindOf(obj), obj.GetName())
}

// ours reports whether obj, found under one of the runner's names of s, is the operator's
// to change or delete for s: controlled by s, or labelled by the operator for a Strategy
// of this name (an earlier one of the same name, or a claim kept by retention Retain).
// Anything else someone else made, and the operator neither rewrites nor deletes it: a
// user who may create Strategies must not reach, through a Strategy's names, a Role, a
// binding, a pod or a claim they could not change themselves.
func ours(s *v1.Strategy, obj client.Object) bool {
	return metav1.IsControlledBy(obj, s) ||
		(managed(obj) && obj.GetLabels()[LabelStrategyObject] == kubestore.LabelValue(s.Name))
}

// nameTakenRetry is how often a Strategy stopped for a name taken is looked at again: the
// object in the way, without the operator's labels, is not in the cache, and its deletion
// wakes nothing.
const nameTakenRetry = 10 * time.Second

// stopIfNameTaken stops the strategy, Failed with reason NameTaken, when err says an object
// of the runner's names is someone else's; any other err is returned as it is.
func (r *StrategyReconciler) stopIfNameTaken(ctx context.Context, sc *scope, err error) (ctrl.Result, error) {
	if !errors.Is(err, errNameTaken) {
		return ctrl.Result{}, err
	}
	if err := r.stopPod(ctx, sc.strategy); err != nil {
		return ctrl.Result{}, err
	}
	setCondition(sc.strategy, v1.ConditionDegraded, true, ReasonNameTaken, err.Error())
	r.setStopped(sc, v1.StrategyFailed, ReasonNameTaken, err.Error())
	return ctrl.Result{RequeueAfter: nameTakenRetry}, nil
}

func (r *StrategyReconciler) stopPod(ctx context.Context, s *v1.Strategy) error {
	pod, err := r.getPod(ctx, s)
	if err != nil || pod == nil || !pod.DeletionTimestamp.IsZero() {
		return err
	}
	r.event(s, corev1.EventTypeNormal, ReasonStoppingPod, fmt.Sprintf("deleting pod %s", pod.Name))
	// This pod, not another made under its name since the cache read it.
	return objectErr("deleting", pod, client.IgnoreNotFound(r.Client.Delete(ctx, pod, client.Preconditions{UID: &pod.UID})))
}

// ensurePod keeps exactly one pod of the current template. A pod of an older template, or
// one that ended, is deleted, and the new one is created only once the old one is gone.
func (r *StrategyReconciler) ensurePod(ctx context.Context, sc *scope) (ctrl.Result, error) {
	s := sc.strategy
	want := desiredPod(s, sc.activePlace(), r.RunnerImage, sc.draining)
	pod, err := r.getPod(ctx, s)
	if err != nil {
		return ctrl.Result{}, err
	}
	if pod != nil {
		ended := pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded
		outdated := pod.Annotations[AnnotationTemplateHash] != want.Annotations[AnnotationTemplateHash] && !sc.holdPod
		if !pod.DeletionTimestamp.IsZero() || ended || outdated {
			if err := r.stopPod(ctx, s); err != nil {
				return ctrl.Result{}, err
			}
			s.Status.PodName = ""
			setCondition(s, v1.ConditionReady, false, ReasonPodReplacing, "replacing the pod; the new one starts once the old one is gone")
			s.Status.Phase = v1.StrategyPending
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		r.setPodStatus(sc, pod)
		return ctrl.Result{RequeueAfter: statusRefresh}, nil
	}
	if gone, err := r.podGone(ctx, s); err != nil || !gone {
		return ctrl.Result{RequeueAfter: time.Second}, err
	}
	if err := controllerutil.SetControllerReference(s, want, r.Scheme); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.Client.Create(ctx, want); err != nil {
		if apierrors.IsAlreadyExists(err) {
			var cur corev1.Pod
			if err := r.StateClient.Get(ctx, client.ObjectKeyFromObject(want), &cur); err == nil && !ours(s, &cur) {
				return ctrl.Result{}, nameTaken(&cur)
			}
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		return ctrl.Result{}, objectErr("creating", want, err)
	}
	r.event(s, corev1.EventTypeNormal, ReasonCreatedPod, fmt.Sprintf("created pod %s", want.Name))
	r.setPodStatus(sc, want)
	return ctrl.Result{RequeueAfter: statusRefresh}, nil
}

func (r *StrategyReconciler) setPodStatus(sc *scope, pod *corev1.Pod) {
	s := sc.strategy
	s.Status.PodName = pod.Name
	// A node that cannot get the image says so before any earlier failure of the runner.
	if cs := runnerStatus(pod); cs != nil && cs.State.Waiting != nil && imagePullReasons[cs.State.Waiting.Reason] {
		s.Status.Phase = v1.StrategyPending
		setCondition(s, v1.ConditionReady, false, ReasonImagePullFailed,
			fmt.Sprintf("pod %s cannot pull image %s (%s): %s", pod.Name, cs.Image,
				cs.State.Waiting.Reason, cs.State.Waiting.Message))
		return
	}
	if msg, failing := runnerFailure(pod); failing {
		// One reason from the first failure until the runner has run stableAfter again,
		// so that a crash loop does not flap Ready with every restart; the Degraded message
		// changes (with a Warning) only when the runner fails differently.
		s.Status.Phase = v1.StrategyFailed
		setCondition(s, v1.ConditionReady, false, ReasonRunnerFailing,
			fmt.Sprintf("the runner of pod %s keeps failing: %s", pod.Name, msg))
		setCondition(s, v1.ConditionDegraded, true, ReasonRunnerFailing, msg)
		return
	}
	ready := pod.Status.Phase == corev1.PodRunning && podReady(pod)
	switch {
	case ready:
		s.Status.Phase = v1.StrategyRunning
		setCondition(s, v1.ConditionReady, true, ReasonRunning, fmt.Sprintf("pod %s is running", pod.Name))
	default:
		s.Status.Phase = v1.StrategyPending
		setCondition(s, v1.ConditionReady, false, ReasonPodPending, fmt.Sprintf("pod %s is %s", pod.Name, podPhase(pod)))
	}
}

// stableAfter is how long a runner restarted after a failure must run before it counts
// as recovered.
const stableAfter = 30 * time.Second

// runnerFailure reports whether the pod's runner is failing: ended with an error, waiting
// to be restarted after one, or restarted after one less than stableAfter ago. msg is the
// runner's own account (its termination message), or its exit code.
func runnerFailure(pod *corev1.Pod) (msg string, failing bool) {
	if len(pod.Status.ContainerStatuses) == 0 {
		return "", false
	}
	cs := pod.Status.ContainerStatuses[0]
	last := cs.LastTerminationState.Terminated
	failedBefore := cs.RestartCount > 0 && last != nil && last.ExitCode != 0
	switch st := cs.State; {
	case st.Terminated != nil && st.Terminated.ExitCode != 0:
		last = st.Terminated
	case st.Waiting != nil && failedBefore:
	case st.Running != nil && failedBefore && time.Since(st.Running.StartedAt.Time) < stableAfter:
	default:
		return "", false
	}
	if m := strings.TrimSpace(last.Message); m != "" {
		return m, true
	}
	return fmt.Sprintf("exited with code %d (%s)", last.ExitCode, last.Reason), true
}

// imagePullReasons are the waiting reasons of a container whose image a node cannot get.
var imagePullReasons = map[string]bool{"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true,
	"ErrImageNeverPull": true}

// runnerStatus is the runner container's status, if the node has reported one (the
// cache keeps a pod's status, not its spec).
func runnerStatus(pod *corev1.Pod) *corev1.ContainerStatus {
	if len(pod.Status.ContainerStatuses) == 0 {
		return nil
	}
	return &pod.Status.ContainerStatuses[0]
}

func podPhase(pod *corev1.Pod) string {
	if pod.Status.Phase == "" {
		return "not scheduled yet"
	}
	return string(pod.Status.Phase)
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (r *StrategyReconciler) setStopped(sc *scope, phase v1.StrategyPhase, reason, msg string) {
	sc.strategy.Status.Phase = phase
	sc.strategy.Status.PodName = ""
	setCondition(sc.strategy, v1.ConditionReady, false, reason, msg)
}

// reconcileDelete stops the pod and, with retention Delete, removes the state once the pod
// is gone. Retained state carries no owner reference and is left alone.
func (r *StrategyReconciler) reconcileDelete(ctx context.Context, sc *scope) (ctrl.Result, error) {
	s := sc.strategy
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
	if sc.active.IsDatabase() {
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
// record its UID (kubestore.LabelOwner), whatever their names, and its volume. A Strategy
// that never owned its identity removes nothing but its own volume.
func (r *StrategyReconciler) deleteState(ctx context.Context, s *v1.Strategy) error {
	owned := client.MatchingLabels{kubestore.LabelOwner: string(s.UID)}
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

func setCondition(s *v1.Strategy, t string, ok bool, reason, msg string) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&s.Status.Conditions, metav1.Condition{
		Type: t, Status: status, Reason: reason, Message: msg, ObservedGeneration: s.Generation,
	})
}

// recordTransitions emits an event for every condition that changed in this pass, except
// one that first appears in the state it keeps while all is well (quietAtFirst): a new
// Strategy tells of its pod and of becoming Ready, not of six things not wrong.
// Every event is kept by the event broadcaster for series aggregation for six minutes or
// more, so events that say nothing cost memory that grows with the Strategies applied.
func (r *StrategyReconciler) recordTransitions(sc *scope) {
	for _, c := range sc.strategy.Status.Conditions {
		old := meta.FindStatusCondition(sc.before.Conditions, c.Type)
		if old == nil && quietAtFirst(c) {
			continue
		}
		// Degraded speaks again when what is wrong changes (a runner failing differently).
		if old != nil && old.Status == c.Status && old.Reason == c.Reason &&
			(c.Type != v1.ConditionDegraded || old.Message == c.Message) {
			continue
		}
		kind := corev1.EventTypeNormal
		// Degraded and StorageNearLimit warn when True; the others when False for a reason
		// other than a passing one.
		warnsWhenTrue := c.Type == v1.ConditionDegraded || c.Type == v1.ConditionStorageNearLimit
		if warnsWhenTrue == (c.Status == metav1.ConditionTrue) && c.Reason != ReasonPodPending &&
			c.Reason != ReasonPodReplacing && c.Reason != ReasonSuspended && c.Reason != ReasonDeleting {
			kind = corev1.EventTypeWarning
		}
		r.eventAs(sc.strategy, kind, c.Reason, conditionAction(c), fmt.Sprintf("%s=%s: %s", c.Type, c.Status, c.Message))
	}
}

// quietAtFirst reports whether c is in the state its type keeps while all is well:
// StorageNearLimit False (Degraded and Draining are removed rather than False);
// PersistenceReady, UpToDate and StoreDurable True; Ready False only while the new pod
// starts (the CreatedPod event told of it). Any later change of these is an event.
func quietAtFirst(c metav1.Condition) bool {
	switch c.Type {
	case v1.ConditionDegraded, v1.ConditionStorageNearLimit, v1.ConditionDraining:
		return c.Status == metav1.ConditionFalse
	case v1.ConditionPersistenceReady, v1.ConditionUpToDate, v1.ConditionStoreDurable:
		return c.Status == metav1.ConditionTrue
	case v1.ConditionReady:
		return c.Status == metav1.ConditionFalse && c.Reason == ReasonPodPending
	}
	return false
}

// conditionAction is the action of a condition's event. events.k8s.io merges the events
// of one type, reason, action and object into a series that keeps only the first note, so
// each condition has an action of its own, and each distinct Degraded message too: a
// runner that fails differently is told as a new event.
func conditionAction(c metav1.Condition) string {
	if c.Type != v1.ConditionDegraded || c.Status != metav1.ConditionTrue {
		return c.Type
	}
	sum := sha256.Sum256([]byte(c.Message))
	return c.Type + "-" + hex.EncodeToString(sum[:4])
}

func (r *StrategyReconciler) event(s *v1.Strategy, kind, reason, msg string) {
	r.eventAs(s, kind, reason, "Reconcile", msg)
}

func (r *StrategyReconciler) eventAs(s *v1.Strategy, kind, reason, action, msg string) {
	if r.Recorder != nil {
		r.Recorder.Eventf(s, nil, kind, reason, action, "%s", msg)
	}
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
	// A Lease of a state identity matters when it changes hands or goes, not when renewed.
	claimChanges := predicate.Funcs{
		CreateFunc: func(event.CreateEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			return e.ObjectOld.GetAnnotations()[AnnotationOwnerUID] != e.ObjectNew.GetAnnotations()[AnnotationOwnerUID]
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
		WatchesMetadata(&v1.StrategyState{}, handler.EnqueueRequestsFromMapFunc(r.strategiesOfState)).
		WatchesMetadata(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.strategiesOfState),
			builder.WithPredicates(storeObjectEvents)).
		WithOptions(crcontroller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Named("strategy").
		Complete(r)
}

// strategiesOfState maps a store object (a StrategyState, or a ConfigMap of a strategy or
// of its risk profile) to the Strategies of its strategy name.
func (r *StrategyReconciler) strategiesOfState(ctx context.Context, obj client.Object) []reconcile.Request {
	name, ok := obj.GetLabels()[kubestore.LabelStrategy]
	if !ok {
		name, ok = obj.GetLabels()[kubestore.LabelRisk]
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
		if kubestore.LabelValue(list.Items[i].EffectiveStrategyName()) == name || kubestore.LabelValue(applied) == name {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return out
}
