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
	"sync"

	"github.com/strategyops/strategy-operator/internal/handshake"
	"github.com/strategyops/strategy-operator/internal/names"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/configmapstore"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
)

// What the manager caches. It watches what it makes, and keeps of it only what it reads:
//
//   - Strategies: whole (they are the operator's input), without managed fields and
//     kubectl's copy of the last applied spec.
//   - the runner's Pod, ServiceAccount, Role and RoleBinding, and the identity's Lease:
//     only those labelled managed-by strategy-operator (every version has labelled them);
//     Pods without their spec (read only for their status and template hash), Leases as
//     metadata with their owner annotation and strategy label only. One without the label
//     (made by hand) is read at the API server where it matters: ensureIdentity, podGone.
//   - store objects: ConfigMaps that carry a store domain, StrategyStates that carry a
//     strategy name, both as metadata only, with only the labels and annotations the
//     operator reads (the stores' contents, revisions and recent writes are read at the
//     API server, StateClient).
//   - never Secrets or PersistentVolumeClaims (ClientOptions): the manager may only get
//     Secrets and claims by name (a claim only to see whose it is).
//
// Strategies and store objects are indexed by strategy name (indexStrategyName), so that
// no event or pass lists a whole namespace. Each kind is limited to --watch-namespaces
// when set.

// LabelManagedBy and ManagedBy mark every object the operator makes for a Strategy
// besides its store objects (which kubestore labels).
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "strategy-operator"
)

// managedSelector selects the objects the operator makes (LabelManagedBy).
var managedSelector = labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedBy})

// hasLabel selects the objects that carry key, whatever its value.
func hasLabel(key string) labels.Selector {
	req, err := labels.NewRequirement(key, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant key
	}
	return labels.NewSelector().Add(*req)
}

// CacheOptions are the manager's cache options: the kinds above, each as little of it as
// the operator reads, limited to namespaces when there are any (else the whole cluster).
func CacheOptions(namespaces []string) cache.Options {
	opts := cache.Options{
		DefaultTransform: compact,
		ByObject: map[client.Object]cache.ByObject{
			&v1.Strategy{}:           {Transform: compact},
			&corev1.Pod{}:            {Label: managedSelector, Transform: stripPod},
			&corev1.ServiceAccount{}: {Label: managedSelector, Transform: compact},
			&rbacv1.Role{}:           {Label: managedSelector, Transform: compact},
			&rbacv1.RoleBinding{}:    {Label: managedSelector, Transform: compact},
			// The identity's owner, the strategy name its events map to, and what its runner
			// trades (a change of which is an event: package handshake).
			&coordinationv1.Lease{}: {Label: managedSelector,
				Transform: keepOnly([]string{names.LabelStrategy}, []string{AnnotationOwnerUID, handshake.Annotation})},
			// Store objects: what storeObjectEvents, strategiesOfState, tendStorage and
			// labelOwned read.
			// Their other annotations (per-key revisions, recent writes) can be large.
			&corev1.ConfigMap{}: {Label: hasLabel(names.LabelDomain), Transform: keepOnly(
				[]string{names.LabelDomain, names.LabelStrategy, names.LabelRisk, names.LabelExchange,
					names.LabelOwner},
				[]string{kubestore.AnnotationKeys, kubestore.AnnotationUsage, configmapstore.AnnotationContext})},
			// StrategyStates: the same, and what stateObjectEvents compares (phase, the
			// store's write count).
			&v1.StrategyState{}: {Label: hasLabel(names.LabelStrategy), Transform: keepOnly(
				[]string{names.LabelStrategy, names.LabelExchange, names.LabelOwner, names.LabelPhase},
				[]string{kubestore.AnnotationUsage, kubestore.AnnotationSeq})},
		},
	}
	if len(namespaces) > 0 {
		opts.DefaultNamespaces = make(map[string]cache.Config, len(namespaces))
		for _, ns := range namespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return opts
}

// ClientOptions are the manager's client options: Secrets and PersistentVolumeClaims are
// read at the API server, never through an informer (which would list and watch them all).
func ClientOptions() client.Options {
	return client.Options{Cache: &client.CacheOptions{
		DisableFor: []client.Object{&corev1.Secret{}, &corev1.PersistentVolumeClaim{}},
	}}
}

// compact drops what no reader of the cache uses (managed fields and kubectl's copy of the
// last applied object) and shares the strings that recur across cached objects (interned).
// The cache hands out deep copies, so no reader can change a shared string's object.
func compact(obj any) (any, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return obj, nil //nolint:nilerr // not an object (a tombstone): left as it is
	}
	m.SetManagedFields(nil)
	if a := m.GetAnnotations(); a != nil {
		if _, ok := a[corev1.LastAppliedConfigAnnotation]; ok {
			delete(a, corev1.LastAppliedConfigAnnotation)
			m.SetAnnotations(a)
		}
	}
	internMeta(m)
	switch o := obj.(type) {
	case *v1.Strategy:
		o.Spec.ExchangeName = cachedStrings.intern(o.Spec.ExchangeName)
		for i := range o.Spec.Symbols {
			o.Spec.Symbols[i] = cachedStrings.intern(o.Spec.Symbols[i])
		}
		for i := range o.Status.Conditions {
			c := &o.Status.Conditions[i]
			c.Type, c.Reason = cachedStrings.intern(c.Type), cachedStrings.intern(c.Reason)
			c.Status = metav1.ConditionStatus(cachedStrings.intern(string(c.Status)))
		}
	case *rbacv1.Role:
		for i := range o.Rules {
			r := &o.Rules[i]
			for _, list := range [][]string{r.APIGroups, r.Resources, r.Verbs} {
				for j := range list {
					list[j] = cachedStrings.intern(list[j])
				}
			}
		}
	case *rbacv1.RoleBinding:
		o.RoleRef.APIGroup, o.RoleRef.Kind = cachedStrings.intern(o.RoleRef.APIGroup), cachedStrings.intern(o.RoleRef.Kind)
		for i := range o.Subjects {
			sub := &o.Subjects[i]
			sub.Kind, sub.APIGroup = cachedStrings.intern(sub.Kind), cachedStrings.intern(sub.APIGroup)
			sub.Namespace = cachedStrings.intern(sub.Namespace)
		}
	}
	return obj, nil
}

// keepOnly keeps of an object's metadata its identity and the labels and annotations
// named, no owner references or managed fields: for the kinds the operator only maps to
// Strategies and reads a few annotations of.
func keepOnly(labelKeys, annotationKeys []string) toolscache.TransformFunc {
	pick := func(from map[string]string, keys []string) map[string]string {
		var out map[string]string
		for _, k := range keys {
			if v, ok := from[k]; ok {
				if out == nil {
					out = make(map[string]string, len(keys))
				}
				out[k] = v
			}
		}
		return out
	}
	return func(obj any) (any, error) {
		m, err := meta.Accessor(obj)
		if err != nil {
			return obj, nil //nolint:nilerr // not an object (a tombstone): left as it is
		}
		m.SetLabels(pick(m.GetLabels(), labelKeys))
		m.SetAnnotations(pick(m.GetAnnotations(), annotationKeys))
		m.SetOwnerReferences(nil)
		m.SetManagedFields(nil)
		internMeta(m)
		return obj, nil
	}
}

// stripPod keeps a runner pod's metadata and status: the operator compares pods by their
// template hash annotation and never reads a spec from the cache (nor updates a pod).
func stripPod(obj any) (any, error) {
	if pod, ok := obj.(*corev1.Pod); ok {
		pod.Spec = corev1.PodSpec{}
	}
	return compact(obj)
}

// cachedStrings are the strings cached objects share: label keys and values, annotation
// keys, namespaces, owner kinds, RBAC verbs. Each of thousands of objects would otherwise
// hold its own copy of each, as decoding makes them.
var cachedStrings = newInterner(4096, 64)

// interner keeps one copy of each string it is given, up to max strings of up to maxLen
// bytes each; past that it hands strings back as they are, so it never grows further.
type interner struct {
	mu     sync.Mutex
	seen   map[string]string
	max    int
	maxLen int
}

func newInterner(maxStrings, maxLen int) *interner {
	return &interner{seen: map[string]string{}, max: maxStrings, maxLen: maxLen}
}

func (in *interner) intern(s string) string {
	if s == "" || len(s) > in.maxLen {
		return s
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if v, ok := in.seen[s]; ok {
		return v
	}
	if len(in.seen) < in.max {
		in.seen[s] = s
	}
	return s
}

// internMap gives m's keys, and the values of the keys sharedValue says, the interned
// copies, in place: assigning to a string key that is there stores the key given too, and
// does not grow m.
func (in *interner) internMap(m map[string]string, sharedValue func(key string) bool) {
	for k, v := range m {
		if sharedValue(k) {
			v = in.intern(v)
		}
		m[in.intern(k)] = v
	}
}

// labelsOwnValues are the label keys whose values are an object's own (a Strategy's name,
// a strategy name, an owner's UID): interned, they would fill the interner with strings
// that recur a few times at most, and leave no room for those that recur everywhere.
var labelsOwnValues = map[string]bool{
	LabelStrategyObject: true, names.LabelStrategy: true, names.LabelRisk: true, names.LabelOwner: true,
}

// internMeta shares the recurring strings of an object's metadata: its namespace, label
// keys and the values that recur (managed-by, the exchange, the store domain), annotation
// keys (their values are often large and unique), and owners' kinds.
func internMeta(m metav1.Object) {
	m.SetNamespace(cachedStrings.intern(m.GetNamespace()))
	cachedStrings.internMap(m.GetLabels(), func(key string) bool { return !labelsOwnValues[key] })
	cachedStrings.internMap(m.GetAnnotations(), func(string) bool { return false })
	refs := m.GetOwnerReferences()
	for i := range refs {
		refs[i].APIVersion, refs[i].Kind = cachedStrings.intern(refs[i].APIVersion), cachedStrings.intern(refs[i].Kind)
	}
}

// indexStrategyName indexes the cached Strategies and store objects by the strategy label
// value (names.LabelValue of a strategy name), so that an event or a pass lists the
// few objects of one strategy name instead of every one of its namespace. A Strategy
// answers to its spec's strategy name and its applied one; a store object to its
// strategy (or risk) label.
const indexStrategyName = "trading.strategyops.dev/strategy-name"

func strategyNameValues(obj client.Object) []string {
	s, ok := obj.(*v1.Strategy)
	if !ok {
		return nil
	}
	applied, _ := appliedIdentity(s)
	spec, app := names.LabelValue(s.EffectiveStrategyName()), names.LabelValue(applied)
	if spec == app {
		return []string{spec}
	}
	return []string{spec, app}
}

func storeNameValues(obj client.Object) []string {
	l := obj.GetLabels()
	if v, ok := l[names.LabelStrategy]; ok {
		return []string{v}
	}
	if v, ok := l[names.LabelRisk]; ok {
		return []string{v}
	}
	return nil
}

// indexCache registers the strategy-name index on the manager's cache, by namespace only.
//
// client.FieldIndexer would index every object twice: under its namespace and value, and
// under its value across namespaces, for lists the operator never makes (it lists within
// one namespace). Each key is a small map of its own, so the second half cost several MB
// at 10,000 StrategyStates. The index is registered under the name and keys the cache's
// reader looks up for a field selector within a namespace (controller-runtime's
// "field:<field>" and "<namespace>/<value>"), so lists use it through
// client.MatchingFields as before; a list across namespaces finds nothing, and every list
// through it fails (no such index) should that naming change.
func indexCache(ctx context.Context, informers cache.Informers) error {
	var errs []error
	for _, idx := range []struct {
		kind   string
		obj    client.Object
		values func(client.Object) []string
	}{
		{"Strategies", &v1.Strategy{}, strategyNameValues},
		{"ConfigMaps", configMapMetadata(), storeNameValues},
		{"StrategyStates", stateMetadata(), storeNameValues},
	} {
		inf, err := informers.GetInformer(ctx, idx.obj)
		if err == nil {
			err = inf.AddIndexers(toolscache.Indexers{fieldIndexName: namespacedKeys(idx.values)})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("indexing %s by strategy name: %w", idx.kind, err))
		}
	}
	return errors.Join(errs...)
}

// fieldIndexName is the name the cache's reader looks indexStrategyName up by.
const fieldIndexName = "field:" + indexStrategyName

// namespacedKeys are an object's index keys: each of its values within its namespace.
func namespacedKeys(values func(client.Object) []string) toolscache.IndexFunc {
	return func(raw any) ([]string, error) {
		obj, ok := raw.(client.Object)
		if !ok {
			return nil, fmt.Errorf("indexing %T: not an object", raw)
		}
		vals := values(obj)
		keys := make([]string, len(vals))
		for i, v := range vals {
			keys[i] = obj.GetNamespace() + "/" + v
		}
		return keys, nil
	}
}

// strategiesNamed lists the Strategies of a namespace that answer to the strategy label
// value name: by the cache's index when SetupWithManager registered it, else all of them
// (a caller filters what it lists either way).
func (r *StrategyReconciler) strategiesNamed(ctx context.Context, namespace, name string) (*v1.StrategyList, error) {
	opts := []client.ListOption{client.InNamespace(namespace)}
	if r.indexed {
		opts = append(opts, client.MatchingFields{indexStrategyName: name})
	}
	var list v1.StrategyList
	return &list, r.Client.List(ctx, &list, opts...)
}

// storeObjectsNamed lists the metadata of the store objects of kind (ConfigMap or
// StrategyState) in a namespace whose strategy or risk label is name: from the cache's
// index when SetupWithManager registered it, else at the API server.
func (r *StrategyReconciler) storeObjectsNamed(ctx context.Context, kind *metav1.PartialObjectMetadata,
	namespace, name string) ([]metav1.PartialObjectMetadata, error) {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(kind.GroupVersionKind().GroupVersion().WithKind(kind.Kind + "List"))
	if r.indexed {
		err := r.Client.List(ctx, list, client.InNamespace(namespace), client.MatchingFields{indexStrategyName: name})
		return list.Items, err
	}
	var out []metav1.PartialObjectMetadata
	for _, key := range []string{names.LabelStrategy, names.LabelRisk} {
		if err := r.StateClient.List(ctx, list, client.InNamespace(namespace), client.MatchingLabels{key: name}); err != nil {
			return nil, err
		}
		out = append(out, list.Items...)
	}
	return out, nil
}

// configMapMetadata and stateMetadata are the kinds the cache holds as metadata only, to
// read from it.
func configMapMetadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMap"))
	return m
}

func stateMetadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(v1.GroupVersion.WithKind("StrategyState"))
	return m
}

// managed reports whether obj carries LabelManagedBy (the cache can hold it).
func managed(obj client.Object) bool {
	return managedSelector.Matches(labels.Set(obj.GetLabels()))
}
