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
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/controller"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

// scopedLabel marks the Strategies of the namespace-scoped manager.
const scopedLabel = "test.strategyops.dev/scoped"

var _ = Describe("A namespace-scoped install", func() {
	It("runs the Strategies of its namespaces with permissions bound there only, and no others", func() {
		ctx := context.Background()
		watched, other := newNamespace(ctx), newNamespace(ctx)

		By("the shipped RoleBinding binds the manager's rules in the watched namespace only")
		role := managerRole()
		role.Name = "strategy-operator-manager-role"
		Expect(direct.Create(ctx, role)).To(Succeed())
		data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "namespaced", "watched-namespace", "role_binding.yaml"))
		Expect(err).NotTo(HaveOccurred())
		var binding rbacv1.RoleBinding
		Expect(yaml.UnmarshalStrict(data, &binding)).To(Succeed())
		binding.Namespace = watched
		Expect(direct.Create(ctx, &binding)).To(Succeed())
		sa := binding.Subjects[0]
		cfg := userConfig("system:serviceaccount:"+sa.Namespace+":"+sa.Name, "system:serviceaccounts",
			"system:authenticated")
		asManager, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
		Expect(err).NotTo(HaveOccurred())
		Expect(apierrors.IsForbidden(asManager.List(ctx, &v1.StrategyList{}))).To(BeTrue(), "nothing cluster-wide")

		By("a manager watching that namespace")
		mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: testenv.Scheme(),
			Metrics: metricsserver.Options{BindAddress: "0"}, Cache: controller.CacheOptions([]string{watched}),
			Controller: config.Controller{SkipNameValidation: new(true)}}) // the suite's manager runs one too
		Expect(err).NotTo(HaveOccurred())
		selector, err := labels.Parse(scopedLabel)
		Expect(err).NotTo(HaveOccurred())
		Expect((&controller.StrategyReconciler{Client: mgr.GetClient(), StateClient: asManager, Scheme: mgr.GetScheme(),
			Recorder: mgr.GetEventRecorder("strategy-operator"), RunnerImage: runnerImage, Selector: selector,
		}).SetupWithManager(mgr)).To(Succeed())
		mctx, stop := context.WithCancel(ctx)
		DeferCleanup(stop)
		go func() {
			defer GinkgoRecover()
			Expect(mgr.Start(mctx)).To(Succeed())
		}()

		scoped := func(ns, name string) *v1.Strategy {
			s := strategy(ns, name, v1.BackendStrategyState, "BTCUSDT")
			s.Labels = map[string]string{unmanagedLabel: "true", scopedLabel: "true"}
			Expect(direct.Create(ctx, s)).To(Succeed())
			return s
		}
		mine, elsewhere := scoped(watched, "mine"), scoped(other, "elsewhere")
		Eventually(func() error { return get(ctx, runnerPod(mine)) }, timeout).Should(Succeed())
		Eventually(condition(ctx, mine, v1.ConditionPersistenceReady), timeout).
			Should(haveStatus(metav1.ConditionTrue, controller.ReasonBackendReady))
		Consistently(func() v1.StrategyStatus { _ = get(ctx, elsewhere); return elsewhere.Status }, 3*time.Second).
			Should(BeZero(), "a namespace it does not watch is left alone")
		Expect(apierrors.IsForbidden(asManager.Get(ctx, client.ObjectKeyFromObject(elsewhere), &v1.Strategy{}))).
			To(BeTrue(), "and it could not act there: its rules are bound in the watched namespace only")
	})
})
