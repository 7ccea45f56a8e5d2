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
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/controller"
	"github.com/strategyops/strategy-operator/internal/handshake"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
)

var _ = Describe("Spec changes never strand a trade", func() {
	var ctx context.Context
	var ns string
	BeforeEach(func() {
		ctx = context.Background()
		ns = newNamespace(ctx)
	})

	// running creates s, waits for its pod and its applied state, and opens a signal on sym.
	running := func(s *v1.Strategy, sym string) *domain.Persistence {
		Expect(direct.Create(ctx, s)).To(Succeed())
		Eventually(func() error { return get(ctx, runnerPod(s)) }, timeout).Should(Succeed())
		Eventually(func() *v1.AppliedState { _ = get(ctx, s); return s.Status.Applied }, timeout).ShouldNot(BeNil())
		p := stateOn(s, v1.BackendConfigMap)
		Expect(p.WriteSignal(ctx, key(s, sym), openSignal(s, sym))).To(Succeed())
		return p
	}
	roleNames := func(s *v1.Strategy) []string {
		var role rbacv1.Role
		if direct.Get(ctx, types.NamespacedName{Namespace: ns, Name: controller.RunnerName(s)}, &role) != nil {
			return nil
		}
		var names []string
		for _, r := range role.Rules {
			names = append(names, r.ResourceNames...)
		}
		return names
	}
	args := func(s *v1.Strategy) func() []string {
		return func() []string { return runnerArgs(ctx, runnerPod(s)) }
	}
	// confirm does what the runner of the pod running now does once it holds its Lease
	// and has fenced the state: it records on the Lease what its arguments say it trades
	// and drains (package handshake). envtest runs no runner.
	confirm := func(s *v1.Strategy) {
		pod := runnerPod(s)
		if get(ctx, pod) != nil || !pod.DeletionTimestamp.IsZero() {
			return
		}
		flags := map[string][]string{}
		for _, a := range pod.Spec.Containers[0].Args {
			if name, v, ok := strings.Cut(strings.TrimPrefix(a, "--"), "="); ok && v != "" {
				flags[name] = strings.Split(v, ",")
			}
		}
		key := types.NamespacedName{Namespace: ns, Name: flags["lease"][0]}
		holder := "runner-" + string(pod.UID)
		var lease coordinationv1.Lease
		if direct.Get(ctx, key, &lease) != nil {
			return
		}
		// held, as a live runner holds it: renewed now, for 15 s
		lease.Spec.HolderIdentity, lease.Spec.LeaseDurationSeconds = &holder, new(int32(15))
		lease.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
		if direct.Update(ctx, &lease) != nil {
			return // tried again at the next poll
		}
		Expect(handshake.Write(ctx, direct, key, handshake.Record{Holder: holder, Pod: string(pod.UID),
			Symbols: flags["symbols"], Draining: flags["drain"]})).To(Succeed())
	}
	confirmedArgs := func(s *v1.Strategy) func() []string {
		return func() []string { confirm(s); return args(s)() }
	}

	It("drains a removed symbol with an open signal, then releases it once the signal closed", func() {
		s := strategy(ns, "drainer", v1.BackendConfigMap, "BTCUSDT", "ETHUSDT")
		p := running(s, "ETHUSDT")
		ethSignal := domain.ConfigMapName(domain.Signal, key(s, "ETHUSDT"))

		change(ctx, s, func(s *v1.Strategy) { s.Spec.Symbols = []string{"BTCUSDT"} })
		Eventually(args(s), timeout).Should(ContainElements("--symbols=BTCUSDT", "--drain=ETHUSDT"))
		Eventually(condition(ctx, s, v1.ConditionDraining), timeout).Should(And(
			haveStatus(metav1.ConditionTrue, controller.ReasonDraining), HaveField("Message", ContainSubstring("ETHUSDT"))))
		Expect(roleNames(s)).To(ContainElement(ethSignal), "the runner may still write the drained symbol's state")
		Eventually(func() *int32 { _ = get(ctx, s); return s.Status.OpenSignals }, timeout).Should(HaveValue(BeEquivalentTo(1)))

		// closes records a close of sym's signal at minute at in its ledger, as the runner does.
		closes := func(sym string, at time.Time) {
			sig := openSignal(s, sym)
			Expect(p.RecordHistory(ctx, key(s, sym), sig, sig.ID, domain.HistoryEvent{Kind: domain.EventClosed,
				At: at.UnixMilli(), Price: 101, Reason: "take_profit"})).To(Succeed())
		}
		lastClosed := func() string {
			_ = get(ctx, s)
			if c := s.Status.LastClosedSignal; c != nil {
				return c.Symbol
			}
			return ""
		}
		closes("BTCUSDT", time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC))
		Eventually(lastClosed, timeout).Should(Equal("BTCUSDT"))

		By("the signal closes: the symbol is released once the runner confirms it drains it")
		Expect(p.WriteSignal(ctx, key(s, "ETHUSDT"), nil)).To(Succeed())
		closes("ETHUSDT", time.Date(2026, 11, 20, 11, 0, 0, 0, time.UTC))
		Eventually(lastClosed, timeout).Should(Equal("ETHUSDT"), "a drained symbol's close is the last close")
		Consistently(args(s), 3*time.Second).Should(ContainElement("--drain=ETHUSDT"),
			"no runner has said it opens nothing there: it stays")
		Eventually(confirmedArgs(s), timeout).Should(And(ContainElement("--symbols=BTCUSDT"),
			Not(ContainElement(HavePrefix("--drain")))))
		Eventually(condition(ctx, s, v1.ConditionDraining), timeout).Should(BeNil())
		Expect(roleNames(s)).NotTo(ContainElement(ethSignal))
		Consistently(lastClosed, 3*time.Second).Should(Equal("ETHUSDT"),
			"released, its close stays the last: the status never goes back to an older one")
	})

	It("refuses a new strategyName while a signal is open, saying how to proceed, and applies it once flat", func() {
		s := strategy(ns, "ident", v1.BackendConfigMap, "BTCUSDT")
		p := running(s, "BTCUSDT")
		k := key(s, "BTCUSDT")

		change(ctx, s, func(s *v1.Strategy) { s.Spec.StrategyName = "renamed" })
		Eventually(condition(ctx, s, v1.ConditionUpToDate), timeout).Should(And(
			haveStatus(metav1.ConditionFalse, controller.ReasonIdentityChangeRefused),
			HaveField("Message", And(ContainSubstring("BTCUSDT"), ContainSubstring("Set them back, or let the signals close")))))
		Eventually(args(s), timeout).Should(ContainElements("--strategy-name=ident", "--symbols=", "--drain=BTCUSDT"),
			"the runner keeps watching it, and opens nothing more under it")
		Consistently(args(s), 3*time.Second).Should(ContainElement("--strategy-name=ident"))
		var evs eventsv1List
		Eventually(func() []string { return eventReasons(ctx, ns, &evs) }, timeout).
			Should(ContainElement(controller.ReasonIdentityChangeRefused))

		By("the signal closes: the new identity applies, once the runner confirms it drains the old one")
		Expect(p.WriteSignal(ctx, k, nil)).To(Succeed())
		Eventually(confirmedArgs(s), timeout).Should(ContainElement("--strategy-name=renamed"))
		Eventually(condition(ctx, s, v1.ConditionUpToDate), timeout).Should(haveStatus(metav1.ConditionTrue, controller.ReasonApplied))
	})

	It("holds new risk profiles while a signal is open, so that its position is cleared where it was recorded", func() {
		s := strategy(ns, "profiled", v1.BackendConfigMap, "BTCUSDT")
		s.Spec.RiskProfiles = []string{"first"}
		p := running(s, "BTCUSDT")
		Eventually(confirmedArgs(s), timeout).Should(ContainElement("--risk-profiles=first"))

		change(ctx, s, func(s *v1.Strategy) { s.Spec.RiskProfiles = []string{"second"} })
		Eventually(condition(ctx, s, v1.ConditionUpToDate), timeout).Should(And(
			haveStatus(metav1.ConditionFalse, controller.ReasonIdentityChangeRefused),
			HaveField("Message", And(ContainSubstring("riskProfiles [first]"), ContainSubstring("BTCUSDT")))))
		Eventually(args(s), timeout).Should(ContainElements("--risk-profiles=first", "--symbols=", "--drain=BTCUSDT"),
			"the runner keeps the position where it recorded it, and opens nothing more")
		Consistently(confirmedArgs(s), 3*time.Second).Should(ContainElement("--risk-profiles=first"),
			"the runner confirms it drains: the open signal alone holds the change")
		Expect(get(ctx, s)).To(Succeed())
		Expect(s.Status.Applied.RiskProfiles).To(Equal([]string{"first"}))

		By("meanwhile the old profile is still this Strategy's: another listing it waits")
		other := strategy(ns, "other", v1.BackendConfigMap, "ETHUSDT")
		other.Spec.RiskProfiles = []string{"first"}
		Expect(direct.Create(ctx, other)).To(Succeed())
		Eventually(condition(ctx, other, v1.ConditionReady), timeout).Should(And(
			haveStatus(metav1.ConditionFalse, controller.ReasonStateClaimed),
			HaveField("Message", ContainSubstring(`risk profile "first"`))))
		Consistently(func() bool { return apierrors.IsNotFound(get(ctx, runnerPod(other))) }, 3*time.Second).
			Should(BeTrue(), "no second pod writes the profile that holds the open position")

		By("the signal closes: the new profiles apply, once the runner confirms it drains every symbol")
		Expect(p.WriteSignal(ctx, key(s, "BTCUSDT"), nil)).To(Succeed())
		Eventually(confirmedArgs(s), timeout).Should(ContainElements("--risk-profiles=second", "--symbols=BTCUSDT"))
		Eventually(condition(ctx, s, v1.ConditionUpToDate), timeout).Should(haveStatus(metav1.ConditionTrue, controller.ReasonApplied))
		Eventually(func() error { return get(ctx, runnerPod(other)) }, timeout).Should(Succeed(),
			"the old profile, let go, is the other Strategy's")
	})

	It("keeps the risk profiles an operator that did not record them applied: no drain on the upgrade", func() {
		s := strategy(ns, "upgraded", v1.BackendConfigMap, "BTCUSDT")
		s.Spec.RiskProfiles = []string{"kept"}
		running(s, "BTCUSDT")
		Eventually(confirmedArgs(s), timeout).Should(ContainElement("--risk-profiles=kept"))
		pod := runnerPod(s)
		Expect(get(ctx, pod)).To(Succeed())

		By("status.applied as an older operator wrote it, with a signal open")
		Eventually(func() error {
			if err := get(ctx, s); err != nil {
				return err
			}
			s.Status.Applied.RiskProfiles = nil
			return direct.Status().Update(ctx, s)
		}, timeout).Should(Succeed())
		Eventually(func() []string { _ = get(ctx, s); return s.Status.Applied.RiskProfiles }, timeout).
			Should(Equal([]string{"kept"}), "recorded as the spec's, which the runner uses")
		Expect(s.Status.Applied.Draining).To(BeEmpty())
		Expect(confirmedArgs(s)()).To(And(ContainElement("--risk-profiles=kept"), Not(ContainElement(HavePrefix("--drain")))))
		uid := pod.UID
		Expect(get(ctx, pod)).To(Succeed())
		Expect(pod.UID).To(Equal(uid), "the runner was not replaced")
	})

	It("drains a removed symbol even when it reads flat, so a signal the old runner opens after that read is watched", func() {
		s := strategy(ns, "worst", v1.BackendConfigMap, "BTCUSDT", "ETHUSDT")
		p := running(s, "BTCUSDT")
		Eventually(confirmedArgs(s), timeout).Should(ContainElement("--symbols=BTCUSDT,ETHUSDT"))

		change(ctx, s, func(s *v1.Strategy) { s.Spec.Symbols = []string{"BTCUSDT"} })
		Eventually(args(s), timeout).Should(ContainElements("--symbols=BTCUSDT", "--drain=ETHUSDT"),
			"ETHUSDT read flat, but the runner trading it could still open a signal there")
		By("the old runner opened a signal on ETHUSDT after the operator's read, before it stopped")
		Expect(p.WriteSignal(ctx, key(s, "ETHUSDT"), openSignal(s, "ETHUSDT"))).To(Succeed())
		Consistently(confirmedArgs(s), 3*time.Second).Should(ContainElement("--drain=ETHUSDT"),
			"the signal is watched to its close")

		Expect(p.WriteSignal(ctx, key(s, "ETHUSDT"), nil)).To(Succeed())
		Eventually(confirmedArgs(s), timeout).Should(Not(ContainElement(HavePrefix("--drain"))))
	})

	It("holds every spec change until flat with updatePolicy WhenFlat", func() {
		s := strategy(ns, "patient", v1.BackendConfigMap, "BTCUSDT")
		s.Spec.UpdatePolicy = v1.UpdateWhenFlat
		p := running(s, "BTCUSDT")
		pod := runnerPod(s)
		Expect(get(ctx, pod)).To(Succeed())
		uid := pod.UID

		change(ctx, s, func(s *v1.Strategy) { s.Spec.Args = append(s.Spec.Args, "--speed=2") })
		Eventually(condition(ctx, s, v1.ConditionUpToDate), timeout).
			Should(haveStatus(metav1.ConditionFalse, controller.ReasonWaitingUntilFlat))
		Consistently(func() types.UID { _ = get(ctx, pod); return pod.UID }, 3*time.Second).Should(Equal(uid),
			"the pod with the open signal keeps running")

		Expect(p.WriteSignal(ctx, key(s, "BTCUSDT"), nil)).To(Succeed())
		Eventually(args(s), timeout).Should(ContainElement("--speed=2"), func() string { _ = get(ctx, s); b, _ := json.Marshal(s.Status); return string(b) })
		Eventually(condition(ctx, s, v1.ConditionUpToDate), timeout).Should(haveStatus(metav1.ConditionTrue, controller.ReasonApplied))
		Expect(get(ctx, pod)).To(Succeed())
		Expect(pod.UID).NotTo(Equal(uid))
		Expect(pod.Status.Phase).NotTo(Equal(corev1.PodFailed))
	})
})
