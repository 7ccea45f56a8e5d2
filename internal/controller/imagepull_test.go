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
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/controller"
)

var _ = Describe("A runner image the node cannot pull", func() {
	It("shows the Strategy Pending with ImagePullFailed and the node's account, then Running once pulled", func() {
		ctx := context.Background()
		ns := newNamespace(ctx)
		s := strategy(ns, "unpullable", v1.BackendConfigMap, "BTCUSDT")
		Expect(direct.Create(ctx, s)).To(Succeed())
		pod := runnerPod(s)
		Eventually(func() error { return get(ctx, pod) }, 30*time.Second).Should(Succeed())

		By("the kubelet's ImagePullBackOff")
		const why = `Back-off pulling image "registry.example.com/runner:v9": manifest unknown`
		pod.Status.Phase = corev1.PodPending
		// After an earlier failure of the runner: the pull is what to say now.
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: controller.ContainerName,
			Image: "registry.example.com/runner:v9", RestartCount: 2,
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}},
			State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: why}}}}
		Expect(direct.Status().Update(ctx, pod)).To(Succeed())
		Eventually(condition(ctx, s, v1.ConditionReady), 30*time.Second).
			Should(And(haveStatus(metav1.ConditionFalse, controller.ReasonImagePullFailed),
				HaveField("Message", And(ContainSubstring("registry.example.com/runner:v9"), ContainSubstring(why)))))

		By("pulled and running (for longer than a recovering runner must)")
		Expect(get(ctx, pod)).To(Succeed())
		pod.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{
			StartedAt: metav1.NewTime(time.Now().Add(-time.Hour))}}
		Expect(direct.Status().Update(ctx, pod)).To(Succeed())
		markRunning(ctx, pod)
		Eventually(condition(ctx, s, v1.ConditionReady), 30*time.Second).
			Should(haveStatus(metav1.ConditionTrue, controller.ReasonRunning))
	})
})
