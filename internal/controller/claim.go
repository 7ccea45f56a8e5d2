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
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/strategyops/strategy-operator/internal/names"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/configmapstore"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
)

// A strategy's state identity is its namespace, strategy name and exchange. Exactly one
// Strategy owns it: the one named on the identity's Lease, which its runner holds while it
// trades. The Lease belongs to the identity, not to a Strategy object, so two runners of
// one state can never both hold it.
const (
	// AnnotationOwner and AnnotationOwnerUID name the Strategy that owns the identity.
	AnnotationOwner    = "trading.strategyops.dev/owner"
	AnnotationOwnerUID = names.LabelOwner // the key the store objects' owner label has
	// AnnotationLabelled records the owner whose UID every store object of the identity
	// carries (names.LabelOwner); a new owner relabels them before it records itself.
	AnnotationLabelled = "trading.strategyops.dev/labelled-for"

	// ReasonStateClaimed: another Strategy owns this one's state identity.
	ReasonStateClaimed = "StateOwnedByAnotherStrategy"
)

// LeaseName is the Lease of the state identity of s.
func LeaseName(s *v1.Strategy) string {
	return names.LeaseName(s.EffectiveStrategyName(), s.Spec.ExchangeName)
}

// sameIdentity reports whether a and b work on one state: their applied identity (which
// differs from the spec while a change of it is refused), or the spec's before any.
func sameIdentity(a, b *v1.Strategy) bool {
	an, ae := appliedIdentity(a)
	bn, be := appliedIdentity(b)
	return a.Namespace == b.Namespace && an == bn && ae == be
}

func appliedIdentity(s *v1.Strategy) (strategyName, exchangeName string) {
	if a := s.Status.Applied; a != nil {
		return a.StrategyName, a.ExchangeName
	}
	return s.EffectiveStrategyName(), s.Spec.ExchangeName
}

// appliedLabel is the strategy label value of the applied identity of s.
func appliedLabel(s *v1.Strategy) string {
	name, _ := appliedIdentity(s)
	return names.LabelValue(name)
}

func identityLabels(s *v1.Strategy) map[string]string {
	return map[string]string{
		LabelManagedBy:      ManagedBy,
		names.LabelStrategy: names.LabelValue(s.EffectiveStrategyName()),
		names.LabelExchange: names.LabelValue(s.Spec.ExchangeName),
	}
}

// claim makes s the owner of its state identity if nobody owns it, or its owner is gone
// and s is the first (oldest) of the Strategies that want it. It returns the identity's
// Lease when s owns it, or the name of the Strategy that does.
func (r *StrategyReconciler) claim(ctx context.Context, s *v1.Strategy) (*coordinationv1.Lease, string, error) {
	lease := &coordinationv1.Lease{}
	err := r.StateClient.Get(ctx, objectKey(s, LeaseName(s)), lease)
	if apierrors.IsNotFound(err) {
		first, err := r.firstClaimant(ctx, s)
		if err != nil || first != s.Name {
			return nil, first, err
		}
		lease = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{
			Name: LeaseName(s), Namespace: s.Namespace, Labels: identityLabels(s),
			Annotations: map[string]string{AnnotationOwner: s.Name, AnnotationOwnerUID: string(s.UID)},
		}}
		if err := r.StateClient.Create(ctx, lease); err != nil {
			return nil, "", fmt.Errorf("claiming the state identity (Lease %s): %w", lease.Name, err)
		}
		return lease, "", nil
	}
	if err != nil {
		return nil, "", objectErr("reading", lease, err)
	}
	uid := lease.Annotations[AnnotationOwnerUID]
	if uid == string(s.UID) {
		return lease, "", nil
	}
	owner := lease.Annotations[AnnotationOwner]
	if alive, err := r.owns(ctx, s, owner, uid); err != nil || alive {
		return nil, owner, err
	}
	first, err := r.firstClaimant(ctx, s)
	if err != nil || first != s.Name {
		return nil, first, err
	}
	if uid == "" { // no owner recorded: take it at the revision read
		base := lease.DeepCopy()
		if lease.Annotations == nil {
			lease.Annotations = map[string]string{}
		}
		lease.Annotations[AnnotationOwner], lease.Annotations[AnnotationOwnerUID] = s.Name, string(s.UID)
		if err := r.StateClient.Patch(ctx, lease, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
			return nil, "", fmt.Errorf("claiming the state identity (Lease %s): %w", lease.Name, err)
		}
		return lease, "", nil
	}
	if err := r.StateClient.Patch(ctx, lease, takeOver(uid, s)); err != nil {
		return nil, "", fmt.Errorf("taking over the state identity from %s (Lease %s): %w", owner, lease.Name, err)
	}
	r.event(s, corev1.EventTypeNormal, ReasonClaimedState,
		fmt.Sprintf("took over the state of %s, whose owner %s is gone", identityOf(s), owner))
	return lease, "", nil
}

// patchOp is one operation of a JSON patch.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// takeOver is the patch that records s as an object's owner in place of the owner of UID
// uid, and only of that one: it tests the annotation first. more are applied with it.
func takeOver(uid string, s *v1.Strategy, more ...patchOp) client.Patch {
	patch, _ := json.Marshal(append([]patchOp{
		{"test", annotationPath(AnnotationOwnerUID), uid},
		{"replace", annotationPath(AnnotationOwnerUID), string(s.UID)},
		{"replace", annotationPath(AnnotationOwner), s.Name},
	}, more...))
	return client.RawPatch(types.JSONPatchType, patch)
}

func annotationPath(key string) string {
	return "/metadata/annotations/" + strings.ReplaceAll(key, "/", "~1")
}

func identityOf(s *v1.Strategy) string {
	return fmt.Sprintf("strategy %q on exchange %q", s.EffectiveStrategyName(), s.Spec.ExchangeName)
}

// owns reports whether the Strategy name (of UID uid) still exists and wants the identity of s.
func (r *StrategyReconciler) owns(ctx context.Context, s *v1.Strategy, name, uid string) (bool, error) {
	if name == "" {
		return false, nil
	}
	var o v1.Strategy
	err := r.Client.Get(ctx, objectKey(s, name), &o)
	if apierrors.IsNotFound(err) {
		err = r.StateClient.Get(ctx, objectKey(s, name), &o) // the cache may lag
	}
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	// One being deleted still owns it: it may be removing its state.
	return err == nil && string(o.UID) == uid && sameIdentity(&o, s), err
}

// firstClaimant is the oldest live Strategy of the identity of s (by creation, then name).
func (r *StrategyReconciler) firstClaimant(ctx context.Context, s *v1.Strategy) (string, error) {
	list, err := r.strategiesNamed(ctx, s.Namespace, appliedLabel(s))
	if err != nil {
		return "", err
	}
	first := s
	for i := range list.Items {
		o := &list.Items[i]
		if !o.DeletionTimestamp.IsZero() || !sameIdentity(o, s) || !r.selects(o) {
			continue
		}
		if c := o.CreationTimestamp.Compare(first.CreationTimestamp.Time); c < 0 || c == 0 && o.Name < first.Name {
			first = o
		}
	}
	return first.Name, nil
}

// labelOwned makes every store object of the identity of s carry its UID, once per owner:
// objects made before owners were recorded, and those of a previous owner.
func (r *StrategyReconciler) labelOwned(ctx context.Context, s *v1.Strategy, lease *coordinationv1.Lease) error {
	if lease.Annotations[AnnotationLabelled] == string(s.UID) {
		return nil
	}
	objs, err := r.identityObjects(ctx, s)
	if err != nil {
		return err
	}
	for _, obj := range objs {
		if obj.GetLabels()[names.LabelOwner] == string(s.UID) {
			continue
		}
		patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, names.LabelOwner, s.UID)
		if err := r.StateClient.Patch(ctx, obj, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil &&
			!apierrors.IsNotFound(err) {
			return fmt.Errorf("recording the owner on %s: %w", obj.GetName(), err)
		}
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, AnnotationLabelled, s.UID)
	return objectErr("recording the relabelling on", lease,
		r.StateClient.Patch(ctx, lease, client.RawPatch(types.MergePatchType, []byte(patch))))
}

// identityObjects lists the store objects of the identity of s by their labels, within
// its namespace (from the manager's cache): its ConfigMaps by their strategy or risk
// label, its StrategyStates by their strategy label, each checked against what it records
// of its identity, since label values of two names can coincide (a StrategyState read at
// the API server for its spec). A StrategyState of s made by hand without labels is read
// by its name.
func (r *StrategyReconciler) identityObjects(ctx context.Context, s *v1.Strategy) ([]client.Object, error) {
	name, exchange := names.LabelValue(s.EffectiveStrategyName()), names.LabelValue(s.Spec.ExchangeName)
	var objs []client.Object
	seen := map[string]bool{}
	for _, label := range identityLabelValues(s) {
		cms, err := r.storeObjectsNamed(ctx, configMapMetadata(), s.Namespace, label)
		if err != nil {
			return nil, err
		}
		for i := range cms {
			if !seen[cms[i].Name] && cms[i].Labels[names.LabelExchange] == exchange &&
				ofIdentity(s, cms[i].Annotations[configmapstore.AnnotationContext]) {
				seen[cms[i].Name] = true
				objs = append(objs, &cms[i])
			}
		}
	}
	states, err := r.storeObjectsNamed(ctx, stateMetadata(), s.Namespace, name)
	if err != nil {
		return nil, err
	}
	stateObjects := anyStateNames(s)
	for i := range states {
		if states[i].Labels[names.LabelExchange] == exchange && !slices.Contains(stateObjects, states[i].Name) {
			stateObjects = append(stateObjects, states[i].Name)
		}
	}
	for _, n := range stateObjects {
		var st v1.StrategyState
		err := r.StateClient.Get(ctx, objectKey(s, n), &st)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return nil, err
		case st.Spec.StrategyName == s.EffectiveStrategyName() && st.Spec.ExchangeName == s.Spec.ExchangeName:
			objs = append(objs, &st)
		}
	}
	return objs, nil
}

// identityLabelValues are the label values the store objects of s carry: its strategy's
// name (the strategy label, and the risk label of the profile named after it) and each of
// its risk profiles'.
func identityLabelValues(s *v1.Strategy) []string {
	out := []string{names.LabelValue(s.EffectiveStrategyName())}
	for _, profile := range s.EffectiveRiskProfiles() {
		if v := names.LabelValue(profile); !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// ofIdentity reports whether a ConfigMap's recorded store context (domain "/" key) is of
// the identity of s. Strategy and exchange names hold no ':', so the key's last two fields
// are exactly they.
func ofIdentity(s *v1.Strategy, storeContext string) bool {
	d, key, ok := strings.Cut(storeContext, "/")
	if !ok {
		return false
	}
	if d == string(domain.Risk) {
		return slices.ContainsFunc(s.EffectiveRiskProfiles(), func(profile string) bool {
			return key == domain.RiskKey(profile, s.Spec.ExchangeName).String()
		})
	}
	return strings.HasSuffix(key, ":"+s.EffectiveStrategyName()+":"+s.Spec.ExchangeName)
}

// standDown keeps a Strategy whose identity another owns (owner says which) from acting:
// no pod, no runner identity, no store objects (it made none; those it made before an
// owner was recorded are left to the owner). remedy says what would let it run.
func (r *StrategyReconciler) standDown(ctx context.Context, sc *scope, owner, remedy string) (reconcile.Result, error) {
	return r.standAside(ctx, sc, "the state of "+identityOf(sc.strategy), owner, remedy)
}

// standAside is standDown for any state of s that another owns (what says which).
func (r *StrategyReconciler) standAside(ctx context.Context, sc *scope, what, owner, remedy string) (reconcile.Result,
	error) {
	s := sc.strategy
	if err := r.stopPod(ctx, s); err != nil {
		return reconcile.Result{}, err
	}
	for _, obj := range []client.Object{&rbacv1.RoleBinding{}, &rbacv1.Role{}, &corev1.ServiceAccount{}} {
		err := r.Client.Get(ctx, objectKey(s, RunnerName(s)), obj)
		if err == nil && metav1.IsControlledBy(obj, s) {
			uid := obj.GetUID() // this one, not another made under its name since the cache read it
			err = r.Client.Delete(ctx, obj, client.Preconditions{UID: &uid})
		}
		if client.IgnoreNotFound(err) != nil {
			return reconcile.Result{}, err
		}
	}
	msg := fmt.Sprintf("%s belongs to %s, so this one runs nothing; %s", what, owner, remedy)
	setCondition(s, v1.ConditionPersistenceReady, false, ReasonStateClaimed, msg)
	r.setStopped(sc, v1.StrategyPending, ReasonStateClaimed, msg)
	// It applies nothing, and reads nothing of the owner's state: next time its spec is
	// taken as it is (a new identity is not held back by the owner's signals).
	s.Status.OpenSignals, s.Status.Applied = nil, nil
	for _, t := range []string{v1.ConditionUpToDate, v1.ConditionDraining} {
		meta.RemoveStatusCondition(&s.Status.Conditions, t)
	}
	return reconcile.Result{RequeueAfter: statusRefresh}, nil
}

// siblings maps a Strategy to the others of its identity (a deleted owner releases it).
func (r *StrategyReconciler) siblings(ctx context.Context, obj client.Object) []reconcile.Request {
	s, ok := obj.(*v1.Strategy)
	if !ok {
		return nil
	}
	list, err := r.strategiesNamed(ctx, s.Namespace, appliedLabel(s))
	if err != nil {
		return nil
	}
	var out []reconcile.Request
	for i := range list.Items {
		if o := &list.Items[i]; o.Name != s.Name && sameIdentity(o, s) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)})
		}
	}
	slices.SortFunc(out, func(a, b reconcile.Request) int { return cmp.Compare(a.Name, b.Name) })
	return out
}
