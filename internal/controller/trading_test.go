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
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/controller"
	"github.com/strategyops/strategy-operator/internal/handshake"
	"github.com/strategyops/strategy-operator/internal/tradingstatus"
)

var _ = Describe("Whether a strategy trades", func() {
	It("shows what its runner tells on the Lease as the Trading condition, with an event for each new cause", func() {
		ctx := context.Background()
		ns := newNamespace(ctx)
		s := strategy(ns, "refused", v1.BackendConfigMap, "BTCUSDT")
		Expect(direct.Create(ctx, s)).To(Succeed())
		pod := runnerPod(s)
		Eventually(func() error { return get(ctx, pod) }, timeout).Should(Succeed())
		Expect(pod.Spec.Containers[0].Args).NotTo(ContainElement(HavePrefix("--quiet-after")),
			"spec.quietAfter's default is the runner's: an upgrade makes no new pod template")
		markRunning(ctx, pod)
		Eventually(condition(ctx, s, v1.ConditionReady), timeout).Should(haveStatus(metav1.ConditionTrue, controller.ReasonRunning))
		Consistently(condition(ctx, s, v1.ConditionTrading), "2s").Should(BeNil(), "the runner has told nothing yet")

		// tell does what the runner does (package tradingstatus).
		tell := func(uid types.UID, st tradingstatus.Status) {
			st.Pod = string(uid)
			Expect(handshake.Annotate(ctx, direct, types.NamespacedName{Namespace: ns, Name: controller.LeaseName(s)},
				tradingstatus.Annotation, st, "")).To(Succeed())
		}
		warnings := func() []string {
			var list eventsv1.EventList
			Expect(direct.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
			var out []string
			for _, e := range list.Items {
				if e.Type == corev1.EventTypeWarning {
					out = append(out, e.Reason+": "+e.Note)
				}
			}
			return out
		}

		By("a runner of an older pod is not taken for this one's")
		tell("an-older-pod", tradingstatus.Status{Reason: tradingstatus.ReasonNoCandles, Message: "old"})
		Consistently(condition(ctx, s, v1.ConditionTrading), "2s").Should(BeNil())

		By("refused proposals")
		refused := "the strategy's proposals on BTCUSDT are refused (3 or more in a row, none accepted); the last: " +
			"stop loss too far"
		tell(pod.UID, tradingstatus.Status{Reason: tradingstatus.ReasonProposalsRefused, Message: refused})
		Eventually(condition(ctx, s, v1.ConditionTrading), timeout).Should(And(
			haveStatus(metav1.ConditionFalse, tradingstatus.ReasonProposalsRefused), HaveField("Message", refused)))
		Eventually(warnings, timeout).Should(ContainElement("ProposalsRefused: Trading=False: " + refused))
		Expect(condition(ctx, s, v1.ConditionReady)()).To(haveStatus(metav1.ConditionTrue, controller.ReasonRunning),
			"the runner itself is well")

		By("new words for the same cause keep its transition time")
		before := condition(ctx, s, v1.ConditionTrading)().LastTransitionTime
		time.Sleep(1100 * time.Millisecond) // a new transition time would differ by a second
		tell(pod.UID, tradingstatus.Status{Reason: tradingstatus.ReasonProposalsRefused, Message: refused + " (again)"})
		Eventually(condition(ctx, s, v1.ConditionTrading), timeout).Should(HaveField("Message", HaveSuffix("(again)")))
		Expect(condition(ctx, s, v1.ConditionTrading)()).To(HaveField("LastTransitionTime", before))

		By("trading again, then another cause: an event each")
		tell(pod.UID, tradingstatus.Status{Trading: true, Reason: tradingstatus.ReasonTrading, Message: "trading BTCUSDT"})
		Eventually(condition(ctx, s, v1.ConditionTrading), timeout).Should(haveStatus(metav1.ConditionTrue,
			tradingstatus.ReasonTrading))
		tell(pod.UID, tradingstatus.Status{Reason: tradingstatus.ReasonNoCandles, Message: "no candle of BTCUSDT"})
		Eventually(warnings, timeout).Should(ContainElement("NoCandles: Trading=False: no candle of BTCUSDT"))
		Expect(warnings()).To(HaveEach(Not(ContainSubstring("Trading=False: old"))))
		Expect(slices.DeleteFunc(warnings(), func(w string) bool { return !strings.Contains(w, "Trading=False") })).
			To(HaveLen(2), "one warning a cause")

		By("a control-plane outage cost the runner its Lease: told as such, not as a failing runner")
		outage := "could not renew the Lease for 12s: the API server did not answer; standing by to take it again"
		tell(pod.UID, tradingstatus.Status{Reason: tradingstatus.ReasonLeaseNotRenewed, Message: outage})
		Eventually(condition(ctx, s, v1.ConditionReady), timeout).Should(And(
			haveStatus(metav1.ConditionFalse, controller.ReasonControlPlaneOutage), HaveField("Message", ContainSubstring(outage))))
		Expect(condition(ctx, s, v1.ConditionTrading)()).To(haveStatus(metav1.ConditionFalse,
			tradingstatus.ReasonLeaseNotRenewed))
		Expect(condition(ctx, s, v1.ConditionDegraded)()).To(BeNil(), "an outage is not the runner's failure")
		Expect(get(ctx, s)).To(Succeed())
		Expect(s.Status.Phase).To(Equal(v1.StrategyRunning))
		tell(pod.UID, tradingstatus.Status{Trading: true, Reason: tradingstatus.ReasonTrading, Message: "trading BTCUSDT"})
		Eventually(condition(ctx, s, v1.ConditionReady), timeout).Should(haveStatus(metav1.ConditionTrue, controller.ReasonRunning))

		By("draining every symbol, asked for, is no warning; a suspended strategy has no runner to tell")
		tell(pod.UID, tradingstatus.Status{Reason: tradingstatus.ReasonDrainingAll, Message: "every symbol is drained"})
		Eventually(condition(ctx, s, v1.ConditionTrading), timeout).Should(haveStatus(metav1.ConditionFalse,
			tradingstatus.ReasonDrainingAll))
		Consistently(warnings, "2s").ShouldNot(ContainElement(ContainSubstring("every symbol is drained")))
		change(ctx, s, func(s *v1.Strategy) { s.Spec.Suspend = true })
		Eventually(condition(ctx, s, v1.ConditionTrading), timeout).Should(BeNil())
	})
})
