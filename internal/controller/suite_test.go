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
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/controller"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

// The suite runs the controller in a manager against a real API server. envtest has no
// kubelet and no garbage collector: specs set pod status themselves where they need a
// running pod, and never wait for owner references to delete anything.

const runnerImage = "strategy-runner:test"

// unmanagedLabel marks Strategies the suite's manager leaves alone, for specs that drive a
// reconciler of their own.
const unmanagedLabel = "test.strategyops.dev/unmanaged"

var (
	env    *testenv.Environment
	cancel context.CancelFunc
	// direct reads the API server without a cache.
	direct client.Client
)

func TestController(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Strategy controller")
}

var _ = BeforeSuite(func() {
	var err error
	env, err = testenv.Start(testenv.New())
	Expect(err).NotTo(HaveOccurred())
	direct = env.Client

	// The controller runs as a user bound to exactly the generated ClusterRole: a missing
	// permission fails the specs, and a permission the code stops using shows in review.
	asManager := managerUser(context.Background(), "strategy-operator-manager")
	stateClient, err := client.New(asManager, client.Options{Scheme: testenv.Scheme()})
	Expect(err).NotTo(HaveOccurred())
	// The manager's own cache and client options (cmd/manager): what the cache leaves out
	// must not be missed.
	mgr, err := ctrl.NewManager(asManager, ctrl.Options{
		Scheme:  testenv.Scheme(),
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   controller.CacheOptions(nil),
		Client:  controller.ClientOptions(),
	})
	Expect(err).NotTo(HaveOccurred())
	selector, err := labels.Parse("!" + unmanagedLabel)
	Expect(err).NotTo(HaveOccurred())
	Expect((&controller.StrategyReconciler{
		Client:      mgr.GetClient(),
		StateClient: stateClient,
		Scheme:      mgr.GetScheme(),
		Recorder:    mgr.GetEventRecorder("strategy-operator"),
		RunnerImage: runnerImage,
		// The images of the specs that run a process of the user's.
		AllowedImages: []string{"registry.example.com/bots/*"},
		Selector:      selector,
		Cluster:       "envtest",
		// Several workers, as the manager runs by default: with one, a Strategy made by
		// a spec waits behind the periodic passes of every Strategy the suite made before
		// it (envtest deletes no namespace), and a pass that waits out an unreachable
		// database holds up all the rest.
		MaxConcurrentReconciles: 4,
	}).SetupWithManager(mgr)).To(Succeed())

	var ctx context.Context
	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
})

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

var nsCount atomic.Int64

// newNamespace makes a namespace for one spec.
func newNamespace(ctx context.Context) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ctrl-%d", nsCount.Add(1))}}
	Expect(direct.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// strategy builds a Strategy of name in ns on backend, trading symbols on the "simulated"
// exchange.
func strategy(ns, name string, backend v1.PersistenceBackend, symbols ...string) *v1.Strategy {
	return &v1.Strategy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1.StrategySpec{ExchangeName: "simulated", Symbols: symbols,
			Persistence: v1.PersistenceSpec{Backend: backend}},
	}
}

// get reads obj fresh from the API server.
func get(ctx context.Context, obj client.Object) error {
	return direct.Get(ctx, client.ObjectKeyFromObject(obj), obj)
}

// condition returns a Strategy's condition of type t, reading it fresh.
func condition(ctx context.Context, s *v1.Strategy, t string) func() *metav1.Condition {
	return func() *metav1.Condition {
		var cur v1.Strategy
		if err := direct.Get(ctx, client.ObjectKeyFromObject(s), &cur); err != nil {
			return nil
		}
		for i := range cur.Status.Conditions {
			if cur.Status.Conditions[i].Type == t {
				return &cur.Status.Conditions[i]
			}
		}
		return nil
	}
}

// message returns the message of a Strategy's condition of type t, reading it fresh; empty
// while there is no such condition.
func message(ctx context.Context, s *v1.Strategy, t string) func() string {
	return func() string {
		if c := condition(ctx, s, t)(); c != nil {
			return c.Message
		}
		return ""
	}
}

func haveStatus(status metav1.ConditionStatus, reason string) OmegaMatcher {
	return And(Not(BeNil()), HaveField("Status", status), HaveField("Reason", reason))
}

// markRunning plays the kubelet: the pod runs and is ready.
func markRunning(ctx context.Context, pod *corev1.Pod) {
	Expect(get(ctx, pod)).To(Succeed())
	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	Expect(direct.Status().Update(ctx, pod)).To(Succeed())
}

func runnerPod(s *v1.Strategy) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: controller.RunnerName(s)}}
}

// timeout is how long a spec waits for the operator to act. Passing specs wait far less;
// on a machine whose cores other processes keep busy a pass can wait behind the periodic
// refreshes of the Strategies the suite made before (envtest deletes no namespace, so
// they all live on), so the bound is generous.
const timeout = 60 * time.Second

type eventsv1List = eventsv1.EventList

// eventReasons lists the reasons of the events in ns.
func eventReasons(ctx context.Context, ns string, list *eventsv1.EventList) []string {
	if err := direct.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil
	}
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Reason)
	}
	return out
}

// change patches a Strategy's spec (no resourceVersion: the controller writes its status
// at the same time).
func change(ctx context.Context, s *v1.Strategy, mutate func(*v1.Strategy)) {
	Expect(get(ctx, s)).To(Succeed())
	base := s.DeepCopy()
	mutate(s)
	Expect(direct.Patch(ctx, s, client.MergeFrom(base))).To(Succeed())
}

// runnerArgs are the runner's arguments in the pod as it is now, nil while there is none.
func runnerArgs(ctx context.Context, pod *corev1.Pod) []string {
	var cur corev1.Pod
	if err := direct.Get(ctx, client.ObjectKeyFromObject(pod), &cur); err != nil || len(cur.Spec.Containers) == 0 {
		return nil
	}
	return cur.Spec.Containers[0].Args
}

// managerRole is the manager's ClusterRole as config/rbac/role.yaml has it.
func managerRole() *rbacv1.ClusterRole {
	role, err := testenv.ManagerRole()
	Expect(err).NotTo(HaveOccurred())
	return role
}

// managerUser makes a user with the manager's ClusterRole, bound cluster-wide (the
// default install), and returns its client configuration.
func managerUser(ctx context.Context, name string) *rest.Config {
	role := managerRole()
	role.Name = name
	Expect(direct.Create(ctx, role)).To(Succeed())
	Expect(direct.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}},
	})).To(Succeed())
	return userConfig(name, "system:authenticated")
}

// userConfig is the client configuration of a user of the test API server.
func userConfig(name string, groups ...string) *rest.Config {
	user, err := env.Env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	Expect(err).NotTo(HaveOccurred())
	cfg := user.Config()
	cfg.QPS, cfg.Burst = env.Config.QPS, env.Config.Burst // as fast as the suite's own client
	return cfg
}
