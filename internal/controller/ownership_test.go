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
	"maps"
	"slices"
	"time"

	"github.com/strategyops/strategy-operator/internal/names"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/controller"
	"github.com/strategyops/strategy-operator/internal/persist/configmapstore"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
	persist "github.com/strategyops/strategy-operator/pkg/store"
)

var _ = Describe("One state, one owner", func() {
	var ctx context.Context
	var ns string
	BeforeEach(func() {
		ctx = context.Background()
		ns = newNamespace(ctx)
	})

	leaseOf := func(s *v1.Strategy) *coordinationv1.Lease {
		var lease coordinationv1.Lease
		Expect(direct.Get(ctx, types.NamespacedName{Namespace: ns, Name: controller.LeaseName(s)}, &lease)).To(Succeed())
		return &lease
	}
	// storeObjects lists the ConfigMaps of the strategy name and exchange of s.
	storeObjects := func(s *v1.Strategy) []corev1.ConfigMap {
		var cms corev1.ConfigMapList
		Expect(direct.List(ctx, &cms, client.InNamespace(ns), client.MatchingLabels{
			names.LabelExchange: s.Spec.ExchangeName})).To(Succeed())
		return cms.Items
	}

	It("gives a state identity to the first Strategy only, and Delete retention removes only what one owns", func() {
		owner := strategy(ns, "owner", v1.BackendConfigMap, "BTCUSDT")
		owner.Spec.StrategyName = "shared"
		Expect(direct.Create(ctx, owner)).To(Succeed())
		Eventually(func() error { return get(ctx, runnerPod(owner)) }, timeout).Should(Succeed())
		p := stateOn(owner, v1.BackendConfigMap)
		Expect(p.WriteSignal(ctx, key(owner, "BTCUSDT"), openSignal(owner, "BTCUSDT"))).To(Succeed())

		By("a copy of it, and a suspended one that only names the state with retention Delete, get nothing")
		copyOf := strategy(ns, "copy", v1.BackendConfigMap, "BTCUSDT")
		copyOf.Spec.StrategyName = "shared"
		hostile := strategy(ns, "hostile", v1.BackendStrategyState, "BTCUSDT", "ETHUSDT")
		hostile.Spec.StrategyName, hostile.Spec.Suspend, hostile.Spec.Retention = "shared", true, v1.DeleteState
		for _, s := range []*v1.Strategy{copyOf, hostile} {
			Expect(direct.Create(ctx, s)).To(Succeed())
			Eventually(condition(ctx, s, v1.ConditionReady), timeout).Should(And(
				haveStatus(metav1.ConditionFalse, controller.ReasonStateClaimed),
				HaveField("Message", ContainSubstring("Strategy owner"))))
		}
		Consistently(func() bool { return apierrors.IsNotFound(get(ctx, runnerPod(copyOf))) }, 3*time.Second).
			Should(BeTrue(), "no second pod")
		Expect(apierrors.IsNotFound(direct.Get(ctx, types.NamespacedName{Namespace: ns,
			Name: controller.RunnerName(copyOf)}, &rbacv1.Role{}))).To(BeTrue(), "no Role")
		Expect(controller.LeaseName(copyOf)).To(Equal(controller.LeaseName(owner)), "one Lease per state")
		Expect(leaseOf(owner).Annotations).To(HaveKeyWithValue(controller.AnnotationOwnerUID, string(owner.UID)))
		var states v1.StrategyStateList
		Expect(direct.List(ctx, &states, client.InNamespace(ns))).To(Succeed())
		Expect(states.Items).To(BeEmpty(), "the hostile Strategy made no store objects")
		Expect(storeObjects(owner)).To(HaveEach(HaveField("Labels",
			HaveKeyWithValue(names.LabelOwner, string(owner.UID)))), "every store object records its owner")

		By("deleting the hostile one (retention Delete) leaves the owner's state whole")
		before := len(storeObjects(owner))
		Expect(direct.Delete(ctx, hostile)).To(Succeed())
		Eventually(func() bool { return apierrors.IsNotFound(get(ctx, hostile)) }, timeout).Should(BeTrue())
		Expect(storeObjects(owner)).To(HaveLen(before))
		Expect(p.ReadSignal(ctx, key(owner, "BTCUSDT"))).NotTo(BeNil(), "the open signal is still there")
		Expect(get(ctx, runnerPod(owner))).To(Succeed())

		By("once the owner is deleted (retention Retain), the copy takes over its state and runs")
		Expect(direct.Delete(ctx, owner)).To(Succeed())
		Eventually(func() map[string]string { return leaseOf(copyOf).Annotations }, timeout).
			Should(HaveKeyWithValue(controller.AnnotationOwnerUID, string(copyOf.UID)))
		Eventually(func() error { return get(ctx, runnerPod(copyOf)) }, timeout).Should(Succeed())
		Eventually(func() []corev1.ConfigMap { return storeObjects(copyOf) }, timeout).Should(HaveEach(HaveField("Labels",
			HaveKeyWithValue(names.LabelOwner, string(copyOf.UID)))), "the new owner records itself on the state")
		Expect(p.ReadSignal(ctx, key(copyOf, "BTCUSDT"))).NotTo(BeNil(), "the open signal came along")
	})

	It("provisions the risk profiles a Strategy lists, and gives each to one Strategy only", func() {
		riskMap := func(profile string) string {
			return domain.ConfigMapName(domain.Risk, domain.RiskKey(profile, "simulated"))
		}
		claimOf := func(profile string) func() map[string]string {
			return func() map[string]string {
				var lease coordinationv1.Lease
				_ = direct.Get(ctx, types.NamespacedName{Namespace: ns,
					Name: controller.RiskClaimName(profile, "simulated")}, &lease)
				return lease.Annotations
			}
		}
		alpha := strategy(ns, "alpha", v1.BackendConfigMap, "BTCUSDT")
		alpha.Spec.RiskProfiles = []string{"team-risk"}
		Expect(direct.Create(ctx, alpha)).To(Succeed())
		pod := runnerPod(alpha)
		Eventually(func() error { return get(ctx, pod) }, timeout).Should(Succeed())
		Expect(pod.Spec.Containers[0].Args).To(ContainElement("--risk-profiles=team-risk"))
		Expect(claimOf("team-risk")()).To(HaveKeyWithValue(controller.AnnotationOwnerUID, string(alpha.UID)))

		By("the runner may write the listed profile's ConfigMap, which the operator made, and not its own name's")
		var role rbacv1.Role
		Expect(direct.Get(ctx, types.NamespacedName{Namespace: ns, Name: controller.RunnerName(alpha)}, &role)).
			To(Succeed())
		var granted []string
		for _, r := range role.Rules {
			if slices.Contains(r.Resources, "configmaps") {
				granted = append(granted, r.ResourceNames...)
			}
		}
		Expect(granted).To(ContainElement(riskMap("team-risk")))
		Expect(granted).NotTo(ContainElement(riskMap("alpha")))
		Expect(direct.Get(ctx, types.NamespacedName{Namespace: ns, Name: riskMap("team-risk")}, &corev1.ConfigMap{})).
			To(Succeed())

		By("a second Strategy listing the same profile runs nothing")
		beta := strategy(ns, "beta", v1.BackendConfigMap, "ETHUSDT")
		beta.Spec.RiskProfiles = []string{"beta", "team-risk"}
		Expect(direct.Create(ctx, beta)).To(Succeed())
		Eventually(condition(ctx, beta, v1.ConditionReady), timeout).Should(And(
			haveStatus(metav1.ConditionFalse, controller.ReasonStateClaimed),
			HaveField("Message", And(ContainSubstring(`risk profile "team-risk"`), ContainSubstring("Strategy alpha")))))
		Consistently(func() bool { return apierrors.IsNotFound(get(ctx, runnerPod(beta))) }, 3*time.Second).
			Should(BeTrue(), "no pod writes the profile a second time")

		By("once the first lets the profile go, the second takes it and runs")
		Eventually(func() error {
			if err := get(ctx, alpha); err != nil {
				return err
			}
			alpha.Spec.RiskProfiles = []string{"alpha-risk"}
			return direct.Update(ctx, alpha)
		}, timeout).Should(Succeed())
		Eventually(claimOf("team-risk"), timeout).Should(HaveKeyWithValue(controller.AnnotationOwnerUID,
			string(beta.UID)))
		Eventually(func() error { return get(ctx, runnerPod(beta)) }, timeout).Should(Succeed())
		Expect(claimOf("alpha-risk")()).To(HaveKeyWithValue(controller.AnnotationOwnerUID, string(alpha.UID)))
		Eventually(func() map[string]string {
			var cm corev1.ConfigMap
			_ = direct.Get(ctx, types.NamespacedName{Namespace: ns, Name: riskMap("team-risk")}, &cm)
			return cm.Labels
		}, timeout).Should(HaveKeyWithValue(names.LabelOwner, string(beta.UID)),
			"the profile's ConfigMap records its new owner, so that the old one's retention cannot delete it")

		By("two Strategies that each hold what the other then lists do not wait on each other for ever")
		for _, c := range []struct {
			s        *v1.Strategy
			profiles []string
		}{{alpha, []string{"alpha-risk", "team-risk"}}, {beta, []string{"team-risk", "alpha-risk"}}} {
			Eventually(func() error {
				if err := get(ctx, c.s); err != nil {
					return err
				}
				c.s.Spec.RiskProfiles = c.profiles
				return direct.Update(ctx, c.s)
			}, timeout).Should(Succeed())
		}
		Eventually(func() bool {
			a, t := claimOf("alpha-risk")(), claimOf("team-risk")()
			return a[controller.AnnotationOwnerUID] != "" &&
				a[controller.AnnotationOwnerUID] == t[controller.AnnotationOwnerUID]
		}, timeout).Should(BeTrue(), "one of them holds both profiles")
	})

	It("keeps the store objects of identities whose names read alike apart", func() {
		a := strategy(ns, "a", v1.BackendConfigMap, "BTCUSDT")
		a.Spec.StrategyName, a.Spec.ExchangeName = "x-y", "z"
		b := strategy(ns, "b", v1.BackendConfigMap, "BTCUSDT")
		b.Spec.StrategyName, b.Spec.ExchangeName = "x", "y-z"
		for _, s := range []*v1.Strategy{a, b} {
			Expect(direct.Create(ctx, s)).To(Succeed())
		}
		for _, s := range []*v1.Strategy{a, b} {
			Eventually(condition(ctx, s, v1.ConditionPersistenceReady), timeout).
				Should(haveStatus(metav1.ConditionTrue, controller.ReasonBackendReady))
			Expect(stateOn(s, v1.BackendConfigMap).WriteSignal(ctx, key(s, "BTCUSDT"), openSignal(s, "BTCUSDT"))).
				To(Succeed())
		}
		By("each reads back its own signal from its own objects")
		for _, s := range []*v1.Strategy{a, b} {
			sig, err := stateOn(s, v1.BackendConfigMap).ReadSignal(ctx, key(s, "BTCUSDT"))
			Expect(err).NotTo(HaveOccurred())
			Expect(sig).NotTo(BeNil())
			Expect(sig.StrategyName).To(Equal(s.Spec.StrategyName))
			Expect(sig.ExchangeName).To(Equal(s.Spec.ExchangeName))
		}
		Expect(domain.ConfigMapName(domain.Risk, domain.RiskKey("x-y", "z"))).
			NotTo(Equal(domain.ConfigMapName(domain.Risk, domain.RiskKey("x", "y-z"))))
	})
})

var _ = Describe("An upgrade from unambiguous-less names", func() {
	It("moves the store objects an earlier version named otherwise, keeping the open signal", func() {
		ctx := context.Background()
		ns := newNamespace(ctx)
		s := strategy(ns, "upgraded", v1.BackendConfigMap, "BTCUSDT")
		s.Spec.StrategyName = "my-strat" // a '-': today's names differ from the earlier ones
		k := key(s, "BTCUSDT")
		legacy := domain.LegacyConfigMapName(domain.Signal, k)
		Expect(legacy).To(Equal("signal-my-strat-simulated-btcusdt"), "as earlier versions named it")
		Expect(domain.ConfigMapName(domain.Signal, k)).NotTo(Equal(legacy))

		By("an earlier version's runner left an open signal under the earlier name")
		old := persist.NewStore[*v1.Signal]("signal", configmapstore.New(direct,
			types.NamespacedName{Namespace: ns, Name: legacy}, configmapstore.Options{
				Options: kubestore.Options{Create: true, Fencing: kubestore.Fencing{Writer: "old-runner", Token: 7}},
				Labels:  domain.ConfigMapLabels(domain.Signal, k), Context: "signal/" + k.String()}))
		_, err := old.Init(ctx, true)
		Expect(err).NotTo(HaveOccurred())
		sig := openSignal(s, "BTCUSDT")
		_, err = old.Write(ctx, "BTCUSDT", sig)
		Expect(err).NotTo(HaveOccurred())

		Expect(direct.Create(ctx, s)).To(Succeed())
		Eventually(func() error { return get(ctx, runnerPod(s)) }, timeout).Should(Succeed())
		got, err := stateOn(s, v1.BackendConfigMap).ReadSignal(ctx, k)
		Expect(err).NotTo(HaveOccurred())
		Expect(got).NotTo(BeNil(), "the open signal is found under today's name")
		Expect(got.ID).To(Equal(sig.ID))
		var cm corev1.ConfigMap
		Expect(direct.Get(ctx, types.NamespacedName{Namespace: ns, Name: domain.ConfigMapName(domain.Signal, k)}, &cm)).
			To(Succeed())
		Expect(cm.Annotations).To(HaveKeyWithValue(kubestore.AnnotationToken, "7"), "the fencing floor came along")
		Expect(cm.Labels).To(HaveKeyWithValue(names.LabelOwner, string(s.UID)))
		Expect(apierrors.IsNotFound(direct.Get(ctx, types.NamespacedName{Namespace: ns, Name: legacy},
			&corev1.ConfigMap{}))).To(BeTrue(), "the earlier object is gone")
	})
})

var _ = Describe("An interrupted upgrade move", func() {
	It("finishes from the source as it is now when the source changed after the copy", func() {
		ctx := context.Background()
		ns := newNamespace(ctx)
		s := strategy(ns, "interrupted", v1.BackendConfigMap, "BTCUSDT")
		s.Spec.StrategyName = "my-strat"
		k := key(s, "BTCUSDT")
		legacy := domain.LegacyConfigMapName(domain.Signal, k)
		old := persist.NewStore[*v1.Signal]("signal", configmapstore.New(direct,
			types.NamespacedName{Namespace: ns, Name: legacy}, configmapstore.Options{
				Options: kubestore.Options{Create: true}, Labels: domain.ConfigMapLabels(domain.Signal, k),
				Context: "signal/" + k.String()}))
		_, err := old.Init(ctx, true)
		Expect(err).NotTo(HaveOccurred())
		first := openSignal(s, "BTCUSDT")
		_, err = old.Write(ctx, "BTCUSDT", first)
		Expect(err).NotTo(HaveOccurred())

		By("a copy made by a move that crashed, then a last write of the old runner to the source")
		var src corev1.ConfigMap
		Expect(direct.Get(ctx, types.NamespacedName{Namespace: ns, Name: legacy}, &src)).To(Succeed())
		stale := src.DeepCopy()
		stale.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: domain.ConfigMapName(domain.Signal, k),
			Labels: src.Labels, Annotations: map[string]string{}}
		maps.Copy(stale.Annotations, src.Annotations)
		stale.Annotations[controller.AnnotationMovedFrom] = string(src.UID) + "/" + src.ResourceVersion
		Expect(direct.Create(ctx, stale)).To(Succeed())
		last := *first
		last.PriceTakeProfit *= 1.01
		_, err = old.Write(ctx, "BTCUSDT", &last)
		Expect(err).NotTo(HaveOccurred())

		Expect(direct.Create(ctx, s)).To(Succeed())
		Eventually(func() error { return get(ctx, runnerPod(s)) }, timeout).Should(Succeed())
		got, err := stateOn(s, v1.BackendConfigMap).ReadSignal(ctx, k)
		Expect(err).NotTo(HaveOccurred())
		Expect(got.PriceTakeProfit).To(Equal(last.PriceTakeProfit), "the last write came along")
		Expect(apierrors.IsNotFound(direct.Get(ctx, types.NamespacedName{Namespace: ns, Name: legacy},
			&corev1.ConfigMap{}))).To(BeTrue())
	})
})
