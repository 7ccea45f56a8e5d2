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

	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	tradingv1alpha1 "github.com/strategyops/strategy-operator/api/v1alpha1"
)

// StrategyReconciler reconciles Strategies.
type StrategyReconciler struct {
	client.Client
	Scheme *runtime.Scheme
}

// +kubebuilder:rbac:groups=trading.strategyops.dev,resources=strategies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=trading.strategyops.dev,resources=strategies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=trading.strategyops.dev,resources=strategies/finalizers,verbs=update

// Reconcile reads the Strategy. Running its pod, RBAC and storage is not built yet: until
// then the operator only observes Strategies.
func (r *StrategyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	var strategy tradingv1alpha1.Strategy
	if err := r.Get(ctx, req.NamespacedName, &strategy); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	log.V(1).Info("Observed strategy", "backend", strategy.Spec.Persistence.Backend,
		"symbols", len(strategy.Spec.Symbols))
	return ctrl.Result{}, nil
}

// SetupWithManager sets up the controller with the Manager.
func (r *StrategyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&tradingv1alpha1.Strategy{}).
		Named("strategy").
		Complete(r)
}
