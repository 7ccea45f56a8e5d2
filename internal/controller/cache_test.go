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

package controller_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/controller"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
	"github.com/strategyops/strategy-operator/internal/persist/strategystatestore"
)

// The manager caches only the objects that carry its labels (controller.CacheOptions).
var _ = Describe("Objects the cache leaves out", func() {
	It("still finds a runner's objects and store objects made without the operator's labels", func() {
		ctx := context.Background()
		ns := newNamespace(ctx)
		s := strategy(ns, "unlabelled", v1.BackendStrategyState, "BTCUSDT")
		name := controller.RunnerName(s)

		By("a ServiceAccount, a pod and a StrategyState of the Strategy's names, made by hand, unlabelled")
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "other", Image: "someone/else:latest"}}}}
		state := &v1.StrategyState{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns,
				Name: strategystatestore.ObjectName(domain.StateKey(key(s, "BTCUSDT")))},
			Spec: v1.StrategyStateSpec{StrategyName: s.EffectiveStrategyName(), ExchangeName: s.Spec.ExchangeName,
				Symbol: "BTCUSDT", Phase: v1.PhaseIdle},
		}
		for _, obj := range []client.Object{sa, pod, state} {
			Expect(direct.Create(ctx, obj)).To(Succeed())
		}
		Expect(direct.Create(ctx, s)).To(Succeed())

		By("the ServiceAccount becomes the Strategy's, labelled; the pod is replaced by the runner's")
		Eventually(func() []metav1.OwnerReference { _ = get(ctx, sa); return sa.OwnerReferences }, timeout).
			Should(ContainElement(HaveField("UID", s.UID)))
		Expect(sa.Labels).To(HaveKeyWithValue(controller.LabelManagedBy, controller.ManagedBy))
		Eventually(func() []corev1.Container { _ = get(ctx, pod); return pod.Spec.Containers }, timeout).
			Should(ConsistOf(HaveField("Image", runnerImage)))
		Expect(pod.Labels).To(HaveKeyWithValue(controller.LabelManagedBy, controller.ManagedBy))
		Eventually(condition(ctx, s, v1.ConditionPersistenceReady), timeout).
			Should(haveStatus(metav1.ConditionTrue, controller.ReasonBackendReady))

		By("the StrategyState records its owner")
		Eventually(func() map[string]string { _ = get(ctx, state); return state.Labels }, timeout).
			Should(HaveKeyWithValue(kubestore.LabelOwner, string(s.UID)))
	})
})
