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

	"github.com/strategyops/strategy-operator/internal/names"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/controller"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/persist/strategystatestore"
)

// The manager caches only the objects that carry its labels (controller.CacheOptions).
var _ = Describe("Objects the cache leaves out", func() {
	It("leaves objects of the runner's names that someone else made alone, and runs once they are gone", func() {
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

		By("the Strategy stops, Failed with reason NameTaken, and the ServiceAccount is left as it was")
		Eventually(condition(ctx, s, v1.ConditionReady), timeout).Should(And(
			haveStatus(metav1.ConditionFalse, controller.ReasonNameTaken),
			HaveField("Message", ContainSubstring("ServiceAccount "+name))))
		Expect(condition(ctx, s, v1.ConditionDegraded)()).To(haveStatus(metav1.ConditionTrue, controller.ReasonNameTaken))
		Consistently(func() *corev1.ServiceAccount { _ = get(ctx, sa); return sa }, "2s").Should(And(
			HaveField("OwnerReferences", BeEmpty()), HaveField("Labels", BeEmpty())))

		By("with the ServiceAccount gone, the pod is in the way, and is not deleted")
		Expect(direct.Delete(ctx, sa)).To(Succeed())
		Eventually(message(ctx, s, v1.ConditionReady), 3*timeout).
			Should(ContainSubstring("Pod " + name))
		Expect(get(ctx, pod)).To(Succeed())
		Expect(pod.Spec.Containers).To(ConsistOf(HaveField("Image", "someone/else:latest")))

		By("with the pod gone too, the runner's objects are made and it runs")
		Expect(direct.Delete(ctx, pod, client.GracePeriodSeconds(0))).To(Succeed())
		Eventually(func() []corev1.Container { _ = get(ctx, pod); return pod.Spec.Containers }, 3*timeout).
			Should(ConsistOf(HaveField("Image", runnerImage)))
		Expect(pod.Labels).To(HaveKeyWithValue(controller.LabelManagedBy, controller.ManagedBy))
		Expect(get(ctx, sa)).To(Succeed())
		Expect(sa.OwnerReferences).To(ContainElement(HaveField("UID", s.UID)))
		Eventually(condition(ctx, s, v1.ConditionPersistenceReady), timeout).
			Should(haveStatus(metav1.ConditionTrue, controller.ReasonBackendReady))

		By("the StrategyState made by hand is the Strategy's state, and records its owner")
		Eventually(func() map[string]string { _ = get(ctx, state); return state.Labels }, timeout).
			Should(HaveKeyWithValue(names.LabelOwner, string(s.UID)))
	})

	It("replaces its runner pod when the pod's labels are taken off (the cache no longer holds it)", func() {
		ctx := context.Background()
		ns := newNamespace(ctx)
		s := strategy(ns, "relabelled", v1.BackendConfigMap, "BTCUSDT")
		Expect(direct.Create(ctx, s)).To(Succeed())
		pod := runnerPod(s)
		Eventually(func() error { return get(ctx, pod) }, timeout).Should(Succeed())
		uid := pod.UID
		Expect(direct.Patch(ctx, pod, client.RawPatch(types.MergePatchType,
			[]byte(`{"metadata":{"labels":{"`+controller.LabelManagedBy+`":null}}}`)))).To(Succeed())
		Eventually(func() types.UID { _ = get(ctx, pod); return pod.UID }, timeout).ShouldNot(Equal(uid))
		Expect(pod.Labels).To(HaveKeyWithValue(controller.LabelManagedBy, controller.ManagedBy))
	})

	It("mounts again the claim it kept for a deleted Strategy of the same name (retention Retain)", func() {
		ctx := context.Background()
		ns := newNamespace(ctx)
		s := strategy(ns, "kept", v1.BackendFile, "BTCUSDT")
		Expect(direct.Create(ctx, s)).To(Succeed())
		claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: controller.DataClaimName(s)}}
		Eventually(func() error { return get(ctx, claim) }, timeout).Should(Succeed())
		Eventually(func() error { return get(ctx, runnerPod(s)) }, timeout).Should(Succeed())

		By("the Strategy is deleted; its runner's objects go (the garbage collector's work, done here by hand)")
		Expect(direct.Delete(ctx, s)).To(Succeed())
		Eventually(func() bool { return apierrors.IsNotFound(get(ctx, s)) }, timeout).Should(BeTrue())
		name := controller.RunnerName(s)
		for _, obj := range []client.Object{runnerPod(s), &corev1.ServiceAccount{}, &rbacv1.Role{}, &rbacv1.RoleBinding{}} {
			obj.SetNamespace(ns)
			obj.SetName(name)
			Expect(client.IgnoreNotFound(direct.Delete(ctx, obj, client.GracePeriodSeconds(0)))).To(Succeed())
		}

		By("a new Strategy of the name mounts the claim kept")
		again := strategy(ns, "kept", v1.BackendFile, "BTCUSDT")
		Expect(direct.Create(ctx, again)).To(Succeed())
		pod := runnerPod(again)
		Eventually(func() error { return get(ctx, pod) }, timeout).Should(Succeed())
		Expect(pod.Spec.Volumes).To(ContainElement(HaveField("VolumeSource.PersistentVolumeClaim.ClaimName", claim.Name)))
		uid := claim.UID
		Expect(get(ctx, claim)).To(Succeed())
		Expect(claim.UID).To(Equal(uid))
		// The pod's status reaches the Strategy in a pass of its own: wait for a Ready condition.
		Eventually(condition(ctx, again, v1.ConditionReady), timeout).Should(And(Not(BeNil()),
			Not(HaveField("Reason", controller.ReasonNameTaken))))
	})

	It("does not mount a claim of the data volume's name that someone else made", func() {
		ctx := context.Background()
		ns := newNamespace(ctx)
		s := strategy(ns, "files-taken", v1.BackendFile, "BTCUSDT")
		s.Spec.Retention = v1.DeleteState
		claim := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: controller.DataClaimName(s)},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceStorage: resource.MustParse("1Gi")}}},
		}
		Expect(direct.Create(ctx, claim)).To(Succeed())
		Expect(direct.Create(ctx, s)).To(Succeed())
		Eventually(condition(ctx, s, v1.ConditionReady), timeout).Should(And(
			haveStatus(metav1.ConditionFalse, controller.ReasonNameTaken),
			HaveField("Message", ContainSubstring("PersistentVolumeClaim "+claim.Name))))
		Consistently(func() error { return get(ctx, runnerPod(s)) }, "2s").ShouldNot(Succeed(), "a runner pod was made")

		By("deleting the Strategy (retention Delete) leaves the claim alone")
		Expect(direct.Delete(ctx, s)).To(Succeed())
		Eventually(func() bool { return apierrors.IsNotFound(get(ctx, s)) }, timeout).Should(BeTrue())
		Expect(get(ctx, claim)).To(Succeed())
		Expect(claim.DeletionTimestamp).To(BeNil())
	})
})
