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
	"reflect"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
)

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
