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
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/strategyops/strategy-operator/internal/names"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/controller"
	"github.com/strategyops/strategy-operator/internal/persist/configmapstore"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/persist/strategystatestore"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

func openSignal(s *v1.Strategy, symbol string) *v1.Signal {
	sig := testenv.FixtureValue[v1.Signal](GinkgoT(), "signal-opened.json")
	sig.Symbol, sig.StrategyName, sig.ExchangeName = symbol, s.EffectiveStrategyName(), s.Spec.ExchangeName
	return &sig
}

func stateOn(s *v1.Strategy, b v1.PersistenceBackend) *domain.Persistence {
	opts := domain.KubeOptions{Namespace: s.Namespace}
	if b == v1.BackendConfigMap {
		return domain.New(domain.ConfigMapBackend(direct, opts))
	}
	return domain.New(domain.StrategyStateBackend(direct, opts))
}

func key(s *v1.Strategy, symbol string) domain.Key {
	return domain.StrategyKey(symbol, s.EffectiveStrategyName(), s.Spec.ExchangeName)
}

var _ = Describe("Strategy controller", func() {
	var ctx context.Context
	var ns string
	BeforeEach(func() {
		ctx = context.Background()
		ns = newNamespace(ctx)
	})

	It("runs a ConfigMap strategy as one pod with its own least-privilege identity", func() {
		s := strategy(ns, "momentum", v1.BackendConfigMap, "BTCUSDT", "ETHUSDT")
		Expect(direct.Create(ctx, s)).To(Succeed())
		name := controller.RunnerName(s)

		pod := runnerPod(s)
		Eventually(func() error { return get(ctx, pod) }, timeout).Should(Succeed())
		Expect(pod.Spec.ServiceAccountName).To(Equal(name))
		Expect(pod.Spec.Containers[0].Image).To(Equal(runnerImage))
		Expect(pod.Spec.Containers[0].Args).To(ContainElements("--strategy-name=momentum", "--exchange=simulated",
			"--symbols=BTCUSDT,ETHUSDT", "--backend=ConfigMap", "--namespace="+ns, "--lease="+controller.LeaseName(s)))
		Expect(pod.OwnerReferences).To(ContainElement(HaveField("Name", "momentum")))

		By("the Role names exactly the runner's own objects")
		var role rbacv1.Role
		Expect(direct.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &role)).To(Succeed())
		var cmNames []string
		for _, r := range role.Rules {
			if slices.Contains(r.Resources, "events") {
				Expect(r.Verbs).To(ConsistOf("create"), "Warning events of hand edits, nothing else")
				continue
			}
			Expect(r.Verbs).To(ConsistOf("get", "update"), "no list, create or delete")
			Expect(r.ResourceNames).NotTo(BeEmpty(), "every rule is limited by name")
			if slices.Contains(r.Resources, "configmaps") {
				cmNames = r.ResourceNames
			}
		}
		Expect(cmNames).To(HaveLen(2*6+1), "five domains and the history per symbol, and the risk profile")
		for _, n := range cmNames {
			var cm corev1.ConfigMap
			Expect(direct.Get(ctx, types.NamespacedName{Namespace: ns, Name: n}, &cm)).To(Succeed(),
				"the operator pre-creates %s", n)
			Expect(cm.OwnerReferences).To(BeEmpty(), "state outlives the Strategy")
		}
		var binding rbacv1.RoleBinding
		Expect(direct.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &binding)).To(Succeed())
		Expect(binding.Subjects).To(ConsistOf(HaveField("Name", name)))
		var lease coordinationv1.Lease
		Expect(direct.Get(ctx, types.NamespacedName{Namespace: ns, Name: controller.LeaseName(s)}, &lease)).To(Succeed())
		Expect(lease.Annotations).To(HaveKeyWithValue(controller.AnnotationOwnerUID, string(s.UID)),
			"the Strategy owns its state identity")

		By("status: persistence ready, waiting for the pod, then running")
		Eventually(condition(ctx, s, v1.ConditionPersistenceReady), timeout).Should(haveStatus(metav1.ConditionTrue, controller.ReasonBackendReady))
		Eventually(condition(ctx, s, v1.ConditionReady), timeout).Should(haveStatus(metav1.ConditionFalse, controller.ReasonPodPending))
		markRunning(ctx, pod)
		Eventually(condition(ctx, s, v1.ConditionReady), timeout).Should(haveStatus(metav1.ConditionTrue, controller.ReasonRunning))
		Expect(get(ctx, s)).To(Succeed())
		Expect(s.Status.Phase).To(Equal(v1.StrategyRunning))
		Expect(s.Status.PodName).To(Equal(name))
		Expect(s.Status.ActiveBackend).To(Equal(v1.BackendConfigMap))
		Expect(s.Status.ObservedGeneration).To(Equal(s.Generation))

		By("the open-signal count comes from the store")
		p := stateOn(s, v1.BackendConfigMap)
		Expect(p.WriteSignal(ctx, key(s, "ETHUSDT"), openSignal(s, "ETHUSDT"))).To(Succeed())
		Eventually(func() int32 { _ = get(ctx, s); return ptr.Deref(s.Status.OpenSignals, -1) }, 45*time.Second).Should(Equal(int32(1)))

		By("the last close in the ledger, with its PnL, is in the status")
		sig := openSignal(s, "BTCUSDT")
		pnl := v1.ProfitLoss{PnlPercentage: 1.0959055944055986, PnlCost: 1.0959055944055986, PnlEntries: 100,
			PriceOpen: 100, PriceClose: 101.5}
		closedAt := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
		Expect(p.RecordHistory(ctx, key(s, "BTCUSDT"), sig, sig.ID, domain.HistoryEvent{Kind: domain.EventClosed,
			At: closedAt.Add(-time.Minute).UnixMilli(), Price: 101.5, Reason: "take_profit", PnL: &pnl})).To(Succeed())
		Eventually(func() *v1.ClosedSignal {
			_ = get(ctx, s)
			c := s.Status.LastClosedSignal
			if c != nil {
				c.ClosedAt = metav1.NewTime(c.ClosedAt.UTC()) // decoded in the local zone
			}
			return c
		}, 45*time.Second).Should(HaveValue(Equal(v1.ClosedSignal{ID: sig.ID, Symbol: "BTCUSDT", Reason: "take_profit",
			ClosedAt: metav1.NewTime(closedAt), PnL: &pnl})))

		By("the pod and becoming Ready were events; the conditions that first appeared as all is well were not")
		var evs eventsv1List
		Eventually(func() []string { return eventReasons(ctx, ns, &evs) }, timeout).
			Should(ContainElements(controller.ReasonRunning, controller.ReasonCreatedPod))
		var notes []string
		for _, e := range evs.Items {
			if e.Regarding.Name == s.Name {
				notes = append(notes, e.Note)
			}
		}
		Expect(notes).To(ContainElement(HavePrefix(v1.ConditionReady + "=True")))
		Expect(notes).NotTo(ContainElement(Or(HavePrefix(v1.ConditionUpToDate+"="), HavePrefix(v1.ConditionStorageNearLimit+"="),
			HavePrefix(v1.ConditionPersistenceReady+"="), HavePrefix(v1.ConditionReady+"=False"))))
	})

	It("gives a File strategy a volume mounted at the data folder", func() {
		size := resource.MustParse("256Mi")
		s := strategy(ns, "files", v1.BackendFile, "BTCUSDT")
		s.Spec.Persistence.File = &v1.FilePersistence{Size: &size}
		Expect(direct.Create(ctx, s)).To(Succeed())
		pod := runnerPod(s)
		Eventually(func() error { return get(ctx, pod) }, timeout).Should(Succeed())
		var claim corev1.PersistentVolumeClaim
		Expect(direct.Get(ctx, types.NamespacedName{Namespace: ns, Name: controller.DataClaimName(s)}, &claim)).To(Succeed())
		Expect(claim.Spec.Resources.Requests.Storage().String()).To(Equal("256Mi"))
		Expect(claim.OwnerReferences).To(BeEmpty())
		Expect(pod.Spec.Volumes).To(ContainElement(HaveField("VolumeSource.PersistentVolumeClaim.ClaimName", claim.Name)))
		Expect(pod.Spec.Containers[0].VolumeMounts).To(ContainElement(HaveField("MountPath", controller.DataDir)))
		var role rbacv1.Role
		Expect(direct.Get(ctx, types.NamespacedName{Namespace: ns, Name: controller.RunnerName(s)}, &role)).To(Succeed())
		Expect(role.Rules).To(HaveLen(1), "a File runner needs only its Lease")
	})

	It("runs a process of the user's under runner exec, in the user's image", func() {
		s := strategy(ns, "own-process", v1.BackendConfigMap, "BTCUSDT")
		s.Spec.Image = "registry.example.com/bots/node-bot:v1"
		s.Spec.Command = []string{"node", "bot.js", "--live"}
		Expect(direct.Create(ctx, s)).To(Succeed())
		pod := runnerPod(s)
		Eventually(func() error { return get(ctx, pod) }, timeout).Should(Succeed())
		c := pod.Spec.Containers[0]
		Expect(c.Image).To(Equal("registry.example.com/bots/node-bot:v1"))
		Expect(c.Command).To(Equal([]string{controller.RunnerPath}))
		Expect(c.Args[0]).To(Equal("exec"))
		Expect(c.Args).To(ContainElements("--backend=ConfigMap", "--symbols=BTCUSDT"))
		Expect(c.Args[len(c.Args)-4:]).To(Equal([]string{"--", "node", "bot.js", "--live"}),
			"the runner's flags, then the user's command after --")
		Expect(c.VolumeMounts).To(ContainElement(HaveField("MountPath", "/tmp")),
			"runner exec's socket needs a writable folder under a read-only root filesystem")
	})

	It("replaces the pod on a spec change, the new one only once the old one is gone", func() {
		s := strategy(ns, "changing", v1.BackendStrategyState, "BTCUSDT")
		Expect(direct.Create(ctx, s)).To(Succeed())
		pod := runnerPod(s)
		Eventually(func() error { return get(ctx, pod) }, timeout).Should(Succeed())
		firstUID := pod.UID

		change(ctx, s, func(s *v1.Strategy) { s.Spec.Symbols = append(s.Spec.Symbols, "ETHUSDT") })
		Eventually(func() types.UID { _ = get(ctx, pod); return pod.UID }, timeout).ShouldNot(Equal(firstUID))
		Expect(pod.Spec.Containers[0].Args).To(ContainElement("--symbols=BTCUSDT,ETHUSDT"))
		var pods corev1.PodList
		Expect(direct.List(ctx, &pods, client.InNamespace(ns))).To(Succeed())
		Expect(pods.Items).To(HaveLen(1))
		var st v1.StrategyState
		Expect(direct.Get(ctx, types.NamespacedName{Namespace: ns, Name: strategystatestore.ObjectName(
			domain.StateKey(key(s, "ETHUSDT")))}, &st)).To(Succeed(), "the new symbol's StrategyState exists")
	})

	It("shows each symbol's last close beside its StrategyState's signal", func() {
		s := strategy(ns, "showing", v1.BackendStrategyState, "BTCUSDT", "ETHUSDT")
		Expect(direct.Create(ctx, s)).To(Succeed())
		Eventually(func() error { return get(ctx, runnerPod(s)) }, timeout).Should(Succeed())
		p := stateOn(s, v1.BackendStrategyState)
		sig := openSignal(s, "BTCUSDT")
		pnl := v1.ProfitLoss{PnlPercentage: 1.0959055944055986, PnlCost: 1.0959055944055986, PnlEntries: 100,
			PriceOpen: 100, PriceClose: 101.5}
		Expect(p.RecordHistory(ctx, key(s, "BTCUSDT"), sig, sig.ID, domain.HistoryEvent{Kind: domain.EventClosed,
			At: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC).UnixMilli(), Price: 101.5, Reason: "take_profit",
			PnL: &pnl})).To(Succeed())
		Expect(p.WriteSignal(ctx, key(s, "ETHUSDT"), openSignal(s, "ETHUSDT"))).To(Succeed())
		state := func(symbol string) *v1.StrategyState {
			st := &v1.StrategyState{}
			_ = direct.Get(ctx, types.NamespacedName{Namespace: ns, Name: strategystatestore.ObjectName(
				domain.StateKey(key(s, symbol)))}, st)
			return st
		}
		Eventually(func() *v1.StateClose { return state("BTCUSDT").Status.LastClose }, timeout).Should(And(
			Not(BeNil()), HaveField("ID", sig.ID), HaveField("Reason", "take_profit"), HaveField("PnL", "+1.10 %")))
		Expect(state("ETHUSDT").Status.LastClose).To(BeNil(), "no close on ETHUSDT")

		By("the runner's next write of the state keeps it")
		Expect(p.WriteSignal(ctx, key(s, "BTCUSDT"), openSignal(s, "BTCUSDT"))).To(Succeed())
		st := state("BTCUSDT")
		Expect(st.Spec.Signal).NotTo(BeNil())
		Expect(st.Status.LastClose).To(HaveField("PnL", "+1.10 %"))
	})

	It("suspends: no pod, the state is kept", func() {
		s := strategy(ns, "pausing", v1.BackendStrategyState, "BTCUSDT")
		Expect(direct.Create(ctx, s)).To(Succeed())
		pod := runnerPod(s)
		Eventually(func() error { return get(ctx, pod) }, timeout).Should(Succeed())
		Expect(stateOn(s, v1.BackendStrategyState).WriteSignal(ctx, key(s, "BTCUSDT"), openSignal(s, "BTCUSDT"))).To(Succeed())

		change(ctx, s, func(s *v1.Strategy) { s.Spec.Suspend = true })
		Eventually(func() bool { return apierrors.IsNotFound(get(ctx, pod)) }, timeout).Should(BeTrue())
		Eventually(condition(ctx, s, v1.ConditionReady), timeout).Should(haveStatus(metav1.ConditionFalse, controller.ReasonSuspended))
		Expect(get(ctx, s)).To(Succeed())
		Expect(s.Status.Phase).To(Equal(v1.StrategySuspended))
		sig, err := stateOn(s, v1.BackendStrategyState).ReadSignal(ctx, key(s, "BTCUSDT"))
		Expect(err).NotTo(HaveOccurred())
		Expect(sig).NotTo(BeNil())
	})

	It("runs no pod for a backend this operator does not run, and says why", func() {
		s := strategy(ns, "no-files", v1.BackendFile, "BTCUSDT")
		s.Labels = map[string]string{unmanagedLabel: "true"}
		Expect(direct.Create(ctx, s)).To(Succeed())
		r := &controller.StrategyReconciler{Client: direct, StateClient: direct, Scheme: testenv.Scheme(),
			RunnerImage: runnerImage, Backends: []v1.PersistenceBackend{v1.BackendConfigMap, v1.BackendStrategyState}}
		_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(s)})
		Expect(err).To(MatchError(ContainSubstring("does not run the File backend")))
		Expect(condition(ctx, s, v1.ConditionPersistenceReady)()).To(haveStatus(metav1.ConditionFalse, controller.ReasonBackendNotEnabled))
		Expect(apierrors.IsNotFound(get(ctx, runnerPod(s)))).To(BeTrue())
		Expect(get(ctx, s)).To(Succeed())
		Expect(s.Status.Phase).To(Equal(v1.StrategyFailed))
	})

	It("runs no pod for an image outside the operator's allow-list, and says why", func() {
		s := strategy(ns, "foreign-image", v1.BackendConfigMap, "BTCUSDT")
		s.Labels = map[string]string{unmanagedLabel: "true"}
		s.Spec.Image = "docker.io/someone/miner:latest"
		Expect(direct.Create(ctx, s)).To(Succeed())
		r := &controller.StrategyReconciler{Client: direct, StateClient: direct, Scheme: testenv.Scheme(),
			RunnerImage: runnerImage}
		reconcileOnce := func() {
			_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(s)})
			Expect(err).NotTo(HaveOccurred())
		}
		notAllowed := func(names ...string) {
			GinkgoHelper()
			c := condition(ctx, s, v1.ConditionReady)()
			Expect(c).To(haveStatus(metav1.ConditionFalse, controller.ReasonImageNotAllowed))
			for _, n := range names {
				Expect(c.Message).To(ContainSubstring(n))
			}
			Expect(apierrors.IsNotFound(get(ctx, runnerPod(s)))).To(BeTrue())
		}

		By("by default, the runner image only")
		reconcileOnce()
		notAllowed("docker.io/someone/miner:latest", runnerImage, "--allowed-images")

		By("a list, which the image is not on")
		r.AllowedImages = []string{"registry.example.com/strategies/*"}
		reconcileOnce()
		notAllowed("docker.io/someone/miner:latest", "registry.example.com/strategies/*")

		By("an allowed image runs")
		change(ctx, s, func(s *v1.Strategy) { s.Spec.Image = "registry.example.com/strategies/momentum:v2" })
		reconcileOnce()
		Expect(get(ctx, runnerPod(s))).To(Succeed())

		By(`"*" alone allows any image, whatever slashes it holds`)
		r.AllowedImages = []string{controller.AnyImage}
		change(ctx, s, func(s *v1.Strategy) { s.Spec.Image = "docker.io/someone/miner:latest" })
		Eventually(func() string {
			reconcileOnce() // replaces the pod of the earlier image, then makes the new one
			pod := runnerPod(s)
			if get(ctx, pod) != nil {
				return ""
			}
			return pod.Spec.Containers[0].Image
		}, timeout).Should(Equal("docker.io/someone/miner:latest"))
	})

	It("moves open signals when switching from ConfigMap to StrategyState", func() {
		s := strategy(ns, "mover", v1.BackendConfigMap, "BTCUSDT", "ETHUSDT")
		Expect(direct.Create(ctx, s)).To(Succeed())
		Eventually(func() error { return get(ctx, runnerPod(s)) }, timeout).Should(Succeed())
		sig := openSignal(s, "BTCUSDT")
		old := stateOn(s, v1.BackendConfigMap)
		Expect(old.WriteSignal(ctx, key(s, "BTCUSDT"), sig)).To(Succeed())
		Expect(old.WritePartial(ctx, key(s, "BTCUSDT"), sig.ID, v1.PartialData{sig.ID: {ProfitLevels: []float64{10}, LossLevels: []float64{}}})).To(Succeed())

		change(ctx, s, func(s *v1.Strategy) { s.Spec.Persistence.Backend = v1.BackendStrategyState })
		Eventually(func() v1.PersistenceBackend { _ = get(ctx, s); return s.Status.ActiveBackend }, timeout).
			Should(Equal(v1.BackendStrategyState))

		moved, err := stateOn(s, v1.BackendStrategyState).ReadSignal(ctx, key(s, "BTCUSDT"))
		Expect(err).NotTo(HaveOccurred())
		Expect(json.Marshal(moved)).To(MatchJSON(mustJSON(sig)))
		partial, err := stateOn(s, v1.BackendStrategyState).ReadPartial(ctx, key(s, "BTCUSDT"), sig.ID)
		Expect(err).NotTo(HaveOccurred())
		Expect(partial[sig.ID].ProfitLevels).To(Equal([]float64{10}))
		pod := runnerPod(s)
		Eventually(func() []string { return runnerArgs(ctx, pod) }, timeout).Should(ContainElement("--backend=StrategyState"))
		Eventually(func() int32 { _ = get(ctx, s); return ptr.Deref(s.Status.OpenSignals, -1) }, timeout).Should(Equal(int32(1)))

		By("the old copy on ConfigMap is removed once the move is recorded; risk and ledger stay")
		for _, sym := range s.Spec.Symbols {
			for _, d := range []domain.Domain{domain.Signal, domain.Schedule, domain.Strategy, domain.Partial, domain.Breakeven} {
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: domain.ConfigMapName(d, key(s, sym))}}
				Eventually(func() bool { return apierrors.IsNotFound(get(ctx, cm)) }, timeout).
					Should(BeTrue(), "%s still holds the old copy", cm.Name)
			}
			Expect(get(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns,
				Name: domain.ConfigMapName(domain.History, key(s, sym))}})).To(Succeed())
		}
		Expect(get(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns,
			Name: domain.ConfigMapName(domain.Risk, domain.RiskKey(s.EffectiveStrategyName(), s.Spec.ExchangeName))}})).
			To(Succeed())
		Eventually(func() v1.PersistenceBackend { _ = get(ctx, s); return s.Status.StaleBackend }, timeout).Should(BeEmpty())
		moved, err = stateOn(s, v1.BackendStrategyState).ReadSignal(ctx, key(s, "BTCUSDT"))
		Expect(err).NotTo(HaveOccurred())
		Expect(moved).NotTo(BeNil(), "the open signal survived the removal of the old copy")

		By("a signal opening or closing in a StrategyState shows well before the periodic refresh")
		now := stateOn(s, v1.BackendStrategyState)
		openSignals := func() int32 { _ = get(ctx, s); return ptr.Deref(s.Status.OpenSignals, -1) }
		Expect(now.WriteSignal(ctx, key(s, "ETHUSDT"), openSignal(s, "ETHUSDT"))).To(Succeed())
		Eventually(openSignals, 12*time.Second).Should(Equal(int32(2)))
		Expect(now.WriteSignal(ctx, key(s, "BTCUSDT"), nil)).To(Succeed())
		Eventually(openSignals, 12*time.Second).Should(Equal(int32(1)))
	})

	It("refuses to switch to File while signals are open, and keeps running", func() {
		s := strategy(ns, "stay", v1.BackendStrategyState, "BTCUSDT")
		Expect(direct.Create(ctx, s)).To(Succeed())
		Eventually(func() error { return get(ctx, runnerPod(s)) }, timeout).Should(Succeed())
		Expect(stateOn(s, v1.BackendStrategyState).WriteSignal(ctx, key(s, "BTCUSDT"), openSignal(s, "BTCUSDT"))).To(Succeed())

		change(ctx, s, func(s *v1.Strategy) { s.Spec.Persistence.Backend = v1.BackendFile })
		Eventually(condition(ctx, s, v1.ConditionDegraded), timeout).Should(And(
			haveStatus(metav1.ConditionTrue, controller.ReasonBackendSwitchRefus),
			HaveField("Message", ContainSubstring("1 signals are open"))))
		Expect(get(ctx, s)).To(Succeed())
		Expect(s.Status.ActiveBackend).To(Equal(v1.BackendStrategyState))
		pod := runnerPod(s)
		Expect(get(ctx, pod)).To(Succeed())
		Expect(pod.Spec.Containers[0].Args).To(ContainElement("--backend=StrategyState"))
	})

	It("keeps the state of a deleted Strategy with retention Retain", func() {
		s := strategy(ns, "keeper", v1.BackendStrategyState, "BTCUSDT")
		Expect(direct.Create(ctx, s)).To(Succeed())
		Eventually(func() error { return get(ctx, runnerPod(s)) }, timeout).Should(Succeed())
		Expect(stateOn(s, v1.BackendStrategyState).WriteSignal(ctx, key(s, "BTCUSDT"), openSignal(s, "BTCUSDT"))).To(Succeed())
		Expect(direct.Delete(ctx, s)).To(Succeed())
		Eventually(func() bool { return apierrors.IsNotFound(get(ctx, s)) }, timeout).Should(BeTrue())
		sig, err := stateOn(s, v1.BackendStrategyState).ReadSignal(ctx, key(s, "BTCUSDT"))
		Expect(err).NotTo(HaveOccurred())
		Expect(sig).NotTo(BeNil(), "a Strategy created again under this name resumes the open signal")
	})

	It("makes a store object deleted by hand again, since the runner cannot", func() {
		s := strategy(ns, "mended", v1.BackendStrategyState, "BTCUSDT")
		Expect(direct.Create(ctx, s)).To(Succeed())
		Eventually(func() error { return get(ctx, runnerPod(s)) }, timeout).Should(Succeed())
		state := &v1.StrategyState{ObjectMeta: metav1.ObjectMeta{Namespace: ns,
			Name: strategystatestore.ObjectName(domain.StateKey(key(s, "BTCUSDT")))}}
		ledger := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns,
			Name: domain.ConfigMapName(domain.History, key(s, "BTCUSDT"))}}
		for _, obj := range []client.Object{state, ledger} {
			Expect(get(ctx, obj)).To(Succeed())
			uid := obj.GetUID()
			Expect(direct.Delete(ctx, obj)).To(Succeed())
			Eventually(func() types.UID { _ = get(ctx, obj); return obj.GetUID() }, timeout).
				ShouldNot(Or(Equal(uid), BeEmpty()), "%T %s was not made again", obj, obj.GetName())
		}
	})

	It("archives a ledger past its live limit and warns of a store object near its size limit", func() {
		s := strategy(ns, "archived", v1.BackendConfigMap, "BTCUSDT")
		s.Spec.History.LiveEntries = 10
		Expect(direct.Create(ctx, s)).To(Succeed())
		Eventually(func() error { return get(ctx, runnerPod(s)) }, timeout).Should(Succeed())
		Eventually(condition(ctx, s, v1.ConditionStorageNearLimit), timeout).
			Should(haveStatus(metav1.ConditionFalse, controller.ReasonWithinLimits))

		By("a runner records 25 closed signals: the ledger passes 10 entries")
		p := stateOn(s, v1.BackendConfigMap)
		defer func() { _ = p.Close() }()
		k := key(s, "BTCUSDT")
		for i := range 25 {
			id := fmt.Sprintf("signal-%02d", i)
			at := int64(i) * 60_000
			for _, ev := range []domain.HistoryEvent{{Kind: "opened", At: at}, {Kind: "closed", At: at + 1}} {
				Expect(p.RecordHistory(ctx, k, nil, id, ev)).To(Succeed())
			}
		}
		// One pass, or two if a pass caught the writes half done: the second may come only
		// with the periodic refresh (30 s), past the usual timeout.
		refreshed := timeout + 30*time.Second
		Eventually(func() (int, error) {
			var list corev1.ConfigMapList
			err := direct.List(ctx, &list, client.InNamespace(ns), client.HasLabels{domain.LabelArchive})
			return len(list.Items), err
		}, refreshed).Should(BeNumerically(">=", 1))
		Eventually(func() ([]*domain.HistoryEntry, error) { return domain.ReadHistory(ctx, direct, ns, k) }, refreshed).
			Should(HaveLen(25))
		live, err := p.History.Store(ctx, k)
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() (int, error) { keys, err := live.SortedKeys(ctx); return len(keys), err }, refreshed).
			Should(BeNumerically("<=", 10), "the live ledger is back within its limit")

		By("the risk ConfigMap passes 75 % of its size limit")
		big := v1.RiskPositions{{Key: strings.Repeat("x", configmapstore.MaxDataBytes*8/10)}}
		Expect(p.WriteRisk(ctx, domain.RiskKey(s.EffectiveStrategyName(), s.Spec.ExchangeName), big)).To(Succeed())
		risk := domain.ConfigMapName(domain.Risk, domain.RiskKey(s.EffectiveStrategyName(), s.Spec.ExchangeName))
		Eventually(condition(ctx, s, v1.ConditionStorageNearLimit), timeout).Should(And(
			haveStatus(metav1.ConditionTrue, controller.ReasonObjectNearLimit), HaveField("Message", ContainSubstring(risk))))
		var events eventsv1List
		Eventually(func() []string { return eventReasons(ctx, ns, &events) }, timeout).
			Should(ContainElements(controller.ReasonArchivedHistory, controller.ReasonObjectNearLimit))
		for _, e := range events.Items {
			if e.Reason == controller.ReasonObjectNearLimit {
				Expect(e.Type).To(Equal(corev1.EventTypeWarning))
			}
		}
	})

	It("shows a crash-looping runner as Failed with its own message, warns once per failure, and does not flap", func() {
		s := strategy(ns, "crashing", v1.BackendConfigMap, "BTCUSDT")
		Expect(direct.Create(ctx, s)).To(Succeed())
		pod := runnerPod(s)
		Eventually(func() error { return get(ctx, pod) }, timeout).Should(Succeed())
		Expect(pod.Spec.Containers[0].TerminationMessagePolicy).To(Equal(corev1.TerminationMessageFallbackToLogsOnError))
		Expect(pod.Spec.Containers[0].Args).To(ContainElement("--termination-message-path=/dev/termination-log"))

		// setStatus reports the runner as a kubelet would: restarts, its state now, and how
		// it ended last.
		setStatus := func(restarts int32, state corev1.ContainerState, lastMessage string) {
			Expect(get(ctx, pod)).To(Succeed())
			pod.Status.Phase = corev1.PodRunning
			pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
			if state.Running != nil {
				pod.Status.Conditions[0].Status = corev1.ConditionTrue
			}
			pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: controller.ContainerName, RestartCount: restarts,
				State: state, LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: 1, Reason: "Error", Message: lastMessage}}}}
			Expect(direct.Status().Update(ctx, pod)).To(Succeed())
		}
		backOff := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}
		justStarted := corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}
		const failure = "restoring: store signal BTCUSDT: fenced: a newer writer holds this store"

		By("the runner fails, is restarted, and fails again the same way")
		setStatus(1, backOff, failure)
		Eventually(condition(ctx, s, v1.ConditionDegraded), timeout).Should(And(
			haveStatus(metav1.ConditionTrue, controller.ReasonRunnerFailing), HaveField("Message", failure)))
		cur := s.DeepCopy()
		Expect(get(ctx, cur)).To(Succeed())
		Expect(cur.Status.Phase).To(Equal(v1.StrategyFailed))
		for i := int32(2); i <= 4; i++ {
			setStatus(i, justStarted, failure) // running again, not yet for long
			setStatus(i, backOff, failure)
		}
		Consistently(condition(ctx, s, v1.ConditionReady), 2*time.Second).
			Should(haveStatus(metav1.ConditionFalse, controller.ReasonRunnerFailing), "Ready flapped with the restarts")

		By("it fails differently: one more Warning, naming the new failure")
		setStatus(5, backOff, "invalid settings: --speed must be positive, got -1")
		Eventually(message(ctx, s, v1.ConditionDegraded), timeout).
			Should(ContainSubstring("--speed must be positive"))
		// A Degraded Warning for each distinct failure (a stale cache may repeat one).
		var events eventsv1List
		Eventually(func() []string {
			eventReasons(ctx, ns, &events)
			notes := map[string]bool{}
			for _, e := range events.Items {
				if e.Regarding.Name == s.Name && e.Reason == controller.ReasonRunnerFailing && e.Type == corev1.EventTypeWarning &&
					strings.HasPrefix(e.Note, v1.ConditionDegraded) {
					notes[e.Note] = true
				}
			}
			return slices.Sorted(maps.Keys(notes))
		}, timeout).Should(Equal([]string{
			"Degraded=True: invalid settings: --speed must be positive, got -1",
			"Degraded=True: " + failure,
		}))

		By("its backend lost state a replica holds: the reason says so")
		behind := domain.ErrPrimaryBehind.Error() + ": replica copy records fencing token 4, the backend only 0"
		setStatus(6, backOff, behind)
		Eventually(condition(ctx, s, v1.ConditionDegraded), timeout).Should(And(
			haveStatus(metav1.ConditionTrue, controller.ReasonPrimaryBehindReplica), HaveField("Message", behind)))
		Expect(condition(ctx, s, v1.ConditionReady)()).To(haveStatus(metav1.ConditionFalse,
			controller.ReasonPrimaryBehindReplica))

		By("it runs long enough: Running and Ready, no longer Degraded")
		setStatus(5, corev1.ContainerState{Running: &corev1.ContainerStateRunning{
			StartedAt: metav1.NewTime(time.Now().Add(-time.Minute))}}, "invalid settings: --speed must be positive, got -1")
		Eventually(condition(ctx, s, v1.ConditionReady), timeout).Should(haveStatus(metav1.ConditionTrue, controller.ReasonRunning))
		Expect(condition(ctx, s, v1.ConditionDegraded)()).To(BeNil())
	})

	It("removes the state with retention Delete, after the pod is gone", func() {
		s := strategy(ns, "cleaner", v1.BackendConfigMap, "BTCUSDT")
		s.Spec.Retention = v1.DeleteState
		Expect(direct.Create(ctx, s)).To(Succeed())
		Eventually(func() error { return get(ctx, runnerPod(s)) }, timeout).Should(Succeed())
		Eventually(func() []string { _ = get(ctx, s); return s.Finalizers }, timeout).Should(ContainElement(controller.FinalizerDeleteState))
		Expect(stateOn(s, v1.BackendConfigMap).WriteSignal(ctx, key(s, "BTCUSDT"), openSignal(s, "BTCUSDT"))).To(Succeed())

		Expect(direct.Delete(ctx, s)).To(Succeed())
		Eventually(func() bool { return apierrors.IsNotFound(get(ctx, s)) }, timeout).Should(BeTrue())
		Expect(apierrors.IsNotFound(get(ctx, runnerPod(s)))).To(BeTrue(), "the pod went first")
		var cms corev1.ConfigMapList
		Expect(direct.List(ctx, &cms, client.InNamespace(ns), client.HasLabels{names.LabelDomain})).To(Succeed())
		Expect(cms.Items).To(BeEmpty())
	})

	It("refuses the runner of one strategy another strategy's state (403)", func() {
		a := strategy(ns, "alpha", v1.BackendStrategyState, "BTCUSDT")
		b := strategy(ns, "beta", v1.BackendStrategyState, "BTCUSDT")
		Expect(direct.Create(ctx, a)).To(Succeed())
		Expect(direct.Create(ctx, b)).To(Succeed())
		for _, s := range []*v1.Strategy{a, b} {
			Eventually(condition(ctx, s, v1.ConditionPersistenceReady), timeout).Should(haveStatus(metav1.ConditionTrue, controller.ReasonBackendReady))
		}

		asA, err := client.New(userConfig("system:serviceaccount:"+ns+":"+controller.RunnerName(a),
			"system:serviceaccounts", "system:serviceaccounts:"+ns, "system:authenticated"),
			client.Options{Scheme: testenv.Scheme()})
		Expect(err).NotTo(HaveOccurred())

		stateName := func(s *v1.Strategy) types.NamespacedName {
			return types.NamespacedName{Namespace: ns, Name: strategystatestore.ObjectName(domain.StateKey(key(s, "BTCUSDT")))}
		}
		var own, other v1.StrategyState
		Expect(asA.Get(ctx, stateName(a), &own)).To(Succeed())
		err = asA.Get(ctx, stateName(b), &other)
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "got %v", err)

		By("A's runner writes its own state through the store, and no one else's")
		mine := domain.New(domain.StrategyStateBackend(asA, domain.KubeOptions{Namespace: ns}))
		Expect(mine.WriteSignal(ctx, key(a, "BTCUSDT"), openSignal(a, "BTCUSDT"))).To(Succeed())
		err = mine.WriteSignal(ctx, key(b, "BTCUSDT"), openSignal(b, "BTCUSDT"))
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "got %v", err)
		Expect(apierrors.IsForbidden(asA.List(ctx, &v1.StrategyStateList{}, client.InNamespace(ns)))).To(BeTrue())
		Expect(apierrors.IsForbidden(asA.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			Name: "sneaky", Namespace: ns}}))).To(BeTrue())
		var lease coordinationv1.Lease
		Expect(asA.Get(ctx, types.NamespacedName{Namespace: ns, Name: controller.LeaseName(a)}, &lease)).To(Succeed())
		Expect(apierrors.IsForbidden(asA.Get(ctx, types.NamespacedName{Namespace: ns, Name: controller.LeaseName(b)}, &lease))).To(BeTrue())
	})
})

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	Expect(err).NotTo(HaveOccurred())
	return data
}
