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
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/controller"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/testenv"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// The database backends, against a Redis, a PostgreSQL and a MongoDB-protocol server the
// suite starts.
var _ = Describe("Database backends", Ordered, func() {
	var redisURL, postgresURL, mongoURL string
	BeforeAll(func(ctx SpecContext) {
		r, err := testenv.StartRedis(ctx)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(r.Stop)
		p, err := testenv.StartPostgres(ctx)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(p.Stop)
		m, err := testenv.StartMongo(ctx)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(m.Stop)
		redisURL, postgresURL, mongoURL = r.URL, p.URL, m.URL("trading")
	})

	var ctx context.Context
	var ns string
	// used are the namespaces of the spec under way. Its Strategies are deleted after it,
	// while its servers still run: the suite's workers would otherwise spend their time
	// trying to reach the servers stopped after this container (a MongoDB client waits out
	// its server selection), and the specs that follow would wait for it.
	var used []string
	BeforeEach(func() {
		ctx = context.Background()
		ns = newNamespace(ctx)
		used = []string{ns}
	})
	AfterEach(func() {
		for _, n := range used {
			Expect(direct.DeleteAllOf(ctx, &v1.Strategy{}, client.InNamespace(n))).To(Succeed())
			Eventually(func() []v1.Strategy {
				var list v1.StrategyList
				Expect(direct.List(ctx, &list, client.InNamespace(n))).To(Succeed())
				return list.Items
			}, timeout).Should(BeEmpty(), "the Strategies of namespace %s are not gone", n)
		}
	})

	// urlOf is the URL of the suite's server of database backend b.
	urlOf := func(b v1.PersistenceBackend) string {
		return map[v1.PersistenceBackend]string{v1.BackendRedis: redisURL, v1.BackendPostgreSQL: postgresURL,
			v1.BackendMongoDB: mongoURL}[b]
	}

	// connection makes a Secret holding url under key "url", labelled for Strategies when
	// labelled is true.
	connectionIn := func(namespace, name, url string, labelled bool) v1.SecretKeyRef {
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
			StringData: map[string]string{"url": url}}
		if labelled {
			secret.Labels = map[string]string{v1.ConnectionSecretLabel: "true"}
		}
		Expect(direct.Create(ctx, secret)).To(Succeed())
		return v1.SecretKeyRef{Name: name, Key: "url"}
	}
	connection := func(name, url string, labelled bool) v1.SecretKeyRef {
		return connectionIn(ns, name, url, labelled)
	}
	on := func(s *v1.Strategy, b v1.PersistenceBackend, ref v1.SecretKeyRef) *v1.Strategy {
		s.Spec.Persistence = v1.PersistenceSpec{Backend: b}
		s.Spec.Persistence.SetDatabase(b, &v1.DatabasePersistence{URLSecretRef: ref})
		return s
	}
	// stateIn reads and writes the state of s in the database at url, as the runner does.
	stateIn := func(b v1.PersistenceBackend, url string) *domain.Persistence {
		db, err := domain.OpenDatabase(ctx, b, url)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(db.Close)
		return domain.New(db.Backend(domain.NoFencing))
	}

	It("runs a Redis strategy with the URL from its Secret in the runner's environment only", func() {
		s := on(strategy(ns, "cached", "", "BTCUSDT"), v1.BackendRedis, connection("redis", redisURL, true))
		Expect(direct.Create(ctx, s)).To(Succeed())
		Eventually(condition(ctx, s, v1.ConditionPersistenceReady), timeout).
			Should(haveStatus(metav1.ConditionTrue, controller.ReasonBackendReady))
		pod := runnerPod(s)
		Eventually(func() error { return get(ctx, pod) }, timeout).Should(Succeed())
		c := pod.Spec.Containers[0]
		Expect(c.Args).To(ContainElement("--backend=Redis"))
		Expect(c.Env).To(ContainElement(corev1.EnvVar{Name: domain.StoreURLEnv, ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "redis"},
				Key: "url"}}}))
		spec, err := json.Marshal(pod.Spec)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(spec)).NotTo(ContainSubstring(redisURL), "the URL is in the pod's spec")

		Expect(stateIn(v1.BackendRedis, redisURL).WriteSignal(ctx, key(s, "BTCUSDT"), openSignal(s, "BTCUSDT"))).
			To(Succeed())
		change(ctx, s, func(s *v1.Strategy) { s.Spec.Suspend = true }) // a pass of its own reads the state again
		Eventually(func() int32 { _ = get(ctx, s); return ptr.Deref(s.Status.OpenSignals, -1) }, timeout).
			Should(Equal(int32(1)))
		Expect(s.Status.ActiveDatabase).To(Equal(&v1.SecretKeyRef{Name: "redis", Key: "url"}))
		Expect(condition(ctx, s, v1.ConditionStoreDurable)()).To(haveStatus(metav1.ConditionTrue, controller.ReasonDurable))
	})

	It("gives the runner its cache and replicas, each replica's URL from its own labelled Secret", func() {
		s := on(strategy(ns, "layered", "", "BTCUSDT"), v1.BackendRedis, connection("redis", redisURL, true))
		s.Spec.Persistence.Cache = &v1.StoreCache{MaxEntries: ptr.To[int32](500)}
		s.Spec.Persistence.Replicas = []v1.StoreReplica{{Name: "analytics", Backend: v1.BackendPostgreSQL,
			URLSecretRef: connection("pg", postgresURL, true), QueueSize: ptr.To[int32](64)}}
		Expect(direct.Create(ctx, s)).To(Succeed())
		pod := runnerPod(s)
		Eventually(func() error { return get(ctx, pod) }, timeout).Should(Succeed())
		c := pod.Spec.Containers[0]
		Expect(c.Args).To(ContainElements("--cache-max-entries=500", "--replicas=analytics:PostgreSQL:64"))
		Expect(c.Env).To(ContainElement(corev1.EnvVar{Name: "STORE_REPLICA_ANALYTICS_URL",
			ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "pg"}, Key: "url"}}}))
		spec, err := json.Marshal(pod.Spec)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(spec)).NotTo(ContainSubstring(postgresURL), "the replica's URL is in the pod's spec")

		By("a replica whose Secret is not labelled for Strategies keeps the runner from starting")
		unlabelled := on(strategy(ns, "layered-unlabelled", "", "BTCUSDT"), v1.BackendRedis,
			v1.SecretKeyRef{Name: "redis", Key: "url"})
		unlabelled.Spec.Persistence.Replicas = []v1.StoreReplica{{Name: "copy", Backend: v1.BackendPostgreSQL,
			URLSecretRef: connection("pg-other", postgresURL, false)}}
		Expect(direct.Create(ctx, unlabelled)).To(Succeed())
		Eventually(condition(ctx, unlabelled, v1.ConditionPersistenceReady), timeout).Should(And(
			haveStatus(metav1.ConditionFalse, controller.ReasonSecretRefused),
			HaveField("Message", And(ContainSubstring("replica copy"), ContainSubstring("pg-other")))))
		Consistently(func() bool { return apierrors.IsNotFound(get(ctx, runnerPod(unlabelled))) }, "2s").Should(BeTrue())
	})

	It("warns in StoreDurable when the database may lose acknowledged writes", func(sctx SpecContext) {
		volatile, err := testenv.StartRedis(sctx, "--appendonly", "no")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(volatile.Stop)
		s := on(strategy(ns, "volatile", "", "BTCUSDT"), v1.BackendRedis, connection("redis", volatile.URL, true))
		Expect(direct.Create(ctx, s)).To(Succeed())
		Eventually(condition(ctx, s, v1.ConditionStoreDurable), timeout).Should(And(
			haveStatus(metav1.ConditionFalse, controller.ReasonWritesMayBeLost),
			HaveField("Message", ContainSubstring("appendonly is off"))))
		Expect(condition(ctx, s, v1.ConditionPersistenceReady)()).To(haveStatus(metav1.ConditionTrue,
			controller.ReasonBackendReady))
	})

	It("refuses a Secret not labelled for Strategies, and says why", func() {
		s := on(strategy(ns, "unlabelled", "", "BTCUSDT"), v1.BackendRedis, connection("other", redisURL, false))
		Expect(direct.Create(ctx, s)).To(Succeed())
		Eventually(condition(ctx, s, v1.ConditionPersistenceReady), timeout).Should(And(
			haveStatus(metav1.ConditionFalse, controller.ReasonSecretRefused),
			HaveField("Message", ContainSubstring(v1.ConnectionSecretLabel+"=true"))))
		Consistently(func() bool { return apierrors.IsNotFound(get(ctx, runnerPod(s))) }, "2s").Should(BeTrue())
	})

	It("reports a database it cannot reach, naming the server and never the password", func() {
		s := on(strategy(ns, "unreachable", "", "BTCUSDT"), v1.BackendPostgreSQL,
			connection("pg", "postgres://trader:hunter2@127.0.0.1:1/strategies?connect_timeout=2", true))
		Expect(direct.Create(ctx, s)).To(Succeed())
		Eventually(condition(ctx, s, v1.ConditionPersistenceReady), timeout).Should(And(
			haveStatus(metav1.ConditionFalse, controller.ReasonConnectionFailed),
			HaveField("Message", And(ContainSubstring("127.0.0.1"), ContainSubstring("postgresql store"),
				Not(ContainSubstring("hunter2"))))))
		Expect(apierrors.IsNotFound(get(ctx, runnerPod(s)))).To(BeTrue())
	})

	It("moves an open signal from StrategyState to PostgreSQL, MongoDB, Redis, then ConfigMap", func() {
		s := strategy(ns, "traveller", v1.BackendStrategyState, "BTCUSDT", "ETHUSDT")
		Expect(direct.Create(ctx, s)).To(Succeed())
		Eventually(func() error { return get(ctx, runnerPod(s)) }, timeout).Should(Succeed())
		sig := openSignal(s, "BTCUSDT")
		levels := v1.PartialData{sig.ID: {ProfitLevels: []float64{10}, LossLevels: []float64{}}}
		positions := testenv.FixtureValue[v1.RiskPositions](GinkgoT(), "risk-positions.json")
		kube := stateOn(s, v1.BackendStrategyState)
		Expect(kube.WriteSignal(ctx, key(s, "BTCUSDT"), sig)).To(Succeed())
		Expect(kube.RecordHistory(ctx, key(s, "BTCUSDT"), sig, sig.ID, domain.HistoryEvent{Kind: "opened", At: 1})).
			To(Succeed())
		Expect(kube.WritePartial(ctx, key(s, "BTCUSDT"), sig.ID, levels)).To(Succeed())
		rk := domain.RiskKey(s.EffectiveStrategyName(), s.Spec.ExchangeName)
		Expect(kube.WriteRisk(ctx, rk, positions)).To(Succeed())

		holds := func(p *domain.Persistence, where string) {
			got, err := p.ReadSignal(ctx, key(s, "BTCUSDT"))
			Expect(err).NotTo(HaveOccurred())
			Expect(json.Marshal(got)).To(MatchJSON(mustJSON(sig)), "the signal in %s", where)
			partial, err := p.ReadPartial(ctx, key(s, "BTCUSDT"), sig.ID)
			Expect(err).NotTo(HaveOccurred())
			Expect(partial[sig.ID].ProfitLevels).To(Equal([]float64{10}), "the partial levels in %s", where)
			risk, err := p.ReadRisk(ctx, rk)
			Expect(err).NotTo(HaveOccurred())
			Expect(risk).To(HaveLen(len(positions)), "the risk positions in %s", where)
			ledger, err := p.History.Store(ctx, key(s, "BTCUSDT"))
			Expect(err).NotTo(HaveOccurred())
			entry, err := ledger.Read(ctx, sig.ID)
			Expect(err).NotTo(HaveOccurred(), "the ledger entry in %s", where)
			Expect(entry.Events).To(HaveLen(1), "the ledger entry in %s", where)
		}
		moveTo := func(b v1.PersistenceBackend, ref *v1.SecretKeyRef) {
			change(ctx, s, func(s *v1.Strategy) {
				s.Spec.Persistence = v1.PersistenceSpec{Backend: b}
				if ref != nil {
					on(s, b, *ref)
				}
			})
			Eventually(func() string {
				_ = get(ctx, s)
				return fmt.Sprint(s.Status.ActiveBackend, s.Status.StaleBackend)
			}, timeout).Should(Equal(string(b)), "the move to %s, and the removal of the old copy", b)
			Eventually(func() []string { return runnerArgs(ctx, runnerPod(s)) }, timeout).
				Should(ContainElement("--backend=" + string(b)))
		}

		pg := connection("pg", postgresURL, true)
		moveTo(v1.BackendPostgreSQL, &pg)
		holds(stateIn(v1.BackendPostgreSQL, postgresURL), "PostgreSQL")
		db, err := domain.OpenDatabase(ctx, v1.BackendPostgreSQL, postgresURL)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(db.Close)
		floor, err := domain.HighestToken(ctx, db.Backend(domain.NoFencing),
			domain.StrategyContexts(s.EffectiveStrategyName(), s.Spec.ExchangeName, s.Spec.Symbols))
		Expect(err).NotTo(HaveOccurred())
		Expect(floor).To(BeNumerically(">", 0), "the move records no fencing floor in the state's new home")
		Eventually(func() []v1.StrategyState {
			var states v1.StrategyStateList
			Expect(direct.List(ctx, &states, client.InNamespace(ns))).To(Succeed())
			return states.Items
		}, timeout).Should(BeEmpty(), "the old copy on StrategyState is removed once the move is recorded")
		Eventually(func() int32 { _ = get(ctx, s); return ptr.Deref(s.Status.OpenSignals, -1) }, timeout).
			Should(Equal(int32(1)))

		mg := connection("mongo", mongoURL, true)
		moveTo(v1.BackendMongoDB, &mg)
		holds(stateIn(v1.BackendMongoDB, mongoURL), "MongoDB")
		gone, err := stateIn(v1.BackendPostgreSQL, postgresURL).ReadSignal(ctx, key(s, "BTCUSDT"))
		Expect(err).NotTo(HaveOccurred())
		Expect(gone).To(BeNil(), "the old copy in PostgreSQL is removed once the move is recorded")

		rd := connection("redis", redisURL, true)
		moveTo(v1.BackendRedis, &rd)
		holds(stateIn(v1.BackendRedis, redisURL), "Redis")
		gone, err = stateIn(v1.BackendMongoDB, mongoURL).ReadSignal(ctx, key(s, "BTCUSDT"))
		Expect(err).NotTo(HaveOccurred())
		Expect(gone).To(BeNil(), "the old copy in MongoDB is removed once the move is recorded")

		moveTo(v1.BackendConfigMap, nil)
		holds(stateOn(s, v1.BackendConfigMap), "ConfigMaps")
		Expect(s.Status.ActiveDatabase).To(BeNil())
		gone, err = stateIn(v1.BackendRedis, redisURL).ReadSignal(ctx, key(s, "BTCUSDT"))
		Expect(err).NotTo(HaveOccurred())
		Expect(gone).To(BeNil(), "the old copy in Redis is removed once the move is recorded")
	})

	It("keeps trading where it is when the database it should move to cannot be reached", func() {
		s := strategy(ns, "stayer", v1.BackendStrategyState, "BTCUSDT")
		Expect(direct.Create(ctx, s)).To(Succeed())
		pod := runnerPod(s)
		Eventually(func() error { return get(ctx, pod) }, timeout).Should(Succeed())
		uid := pod.UID
		Expect(stateOn(s, v1.BackendStrategyState).WriteSignal(ctx, key(s, "BTCUSDT"), openSignal(s, "BTCUSDT"))).
			To(Succeed())

		ref := connection("pg", "postgres://trader:hunter2@127.0.0.1:1/strategies?connect_timeout=2", true)
		change(ctx, s, func(s *v1.Strategy) { on(s, v1.BackendPostgreSQL, ref) })
		Eventually(condition(ctx, s, v1.ConditionDegraded), timeout).Should(And(
			haveStatus(metav1.ConditionTrue, controller.ReasonBackendSwitchRefus),
			HaveField("Message", And(ContainSubstring("cannot use PostgreSQL"), Not(ContainSubstring("hunter2"))))))
		Consistently(func() types.UID { _ = get(ctx, pod); return pod.UID }, "3s").Should(Equal(uid),
			"the runner was stopped for a move that cannot happen")
		Expect(get(ctx, s)).To(Succeed())
		Expect(s.Status.ActiveBackend).To(Equal(v1.BackendStrategyState))
		Expect(condition(ctx, s, v1.ConditionPersistenceReady)()).To(haveStatus(metav1.ConditionTrue,
			controller.ReasonBackendReady))
	})

	It("promotes a replica to the backend when the primary database is lost, and only when ordered", func() {
		primary, err := testenv.StartRedis(ctx) // a server of its own: it is lost for good
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(primary.Stop)
		s := on(strategy(ns, "promoted", "", "BTCUSDT"), v1.BackendRedis, connection("primary", primary.URL, true))
		s.Spec.UpdatePolicy = v1.UpdateWhenFlat // a change waits until flat, which a lost database cannot tell
		standby := connection("standby", postgresURL, true)
		s.Spec.Persistence.Replicas = []v1.StoreReplica{{Name: "standby", Backend: v1.BackendPostgreSQL,
			URLSecretRef: standby}}
		Expect(direct.Create(ctx, s)).To(Succeed())
		Eventually(func() []string { return runnerArgs(ctx, runnerPod(s)) }, timeout).
			Should(ContainElement("--backend=Redis"))

		By("the runner's copy of an open signal reaches the replica, under its fencing token; then the primary is lost")
		replica, err := domain.OpenDatabase(ctx, v1.BackendPostgreSQL, postgresURL)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(replica.Close)
		sig := openSignal(s, "BTCUSDT")
		copied := domain.New(replica.Backend(driver.Fencing{Writer: "runner", Token: 7}))
		Expect(copied.WriteSignal(ctx, key(s, "BTCUSDT"), sig)).To(Succeed())
		primary.Stop()
		moved := func() v1.PersistenceBackend { _ = get(ctx, s); return s.Status.ActiveBackend }
		kept := func() {
			got, err := stateIn(v1.BackendPostgreSQL, postgresURL).ReadSignal(ctx, key(s, "BTCUSDT"))
			Expect(err).NotTo(HaveOccurred())
			Expect(json.Marshal(got)).To(MatchJSON(mustJSON(sig)), "the replica's copy of the signal")
		}

		By("the spec names the replica as the backend: without the order the operator waits on the lost primary")
		change(ctx, s, func(s *v1.Strategy) { on(s, v1.BackendPostgreSQL, standby) })
		Consistently(moved, "4s").Should(Equal(v1.BackendRedis), "the state moved from a database it cannot read")
		kept()

		By("ordered by the annotation, the replica becomes the backend, with its copy of the state")
		change(ctx, s, func(s *v1.Strategy) {
			s.Annotations = map[string]string{controller.AnnotationPrimaryLost: "primary"}
		})
		Eventually(moved, timeout).Should(Equal(v1.BackendPostgreSQL))
		Expect(s.Status.StaleBackend).To(BeEmpty(), "the operator would try to empty a database that is lost")
		Eventually(func() []string { return runnerArgs(ctx, runnerPod(s)) }, timeout).
			Should(ContainElement("--backend=PostgreSQL"))
		Eventually(func() int32 { _ = get(ctx, s); return ptr.Deref(s.Status.OpenSignals, -1) }, timeout).
			Should(Equal(int32(1)))
		kept()
		owner, _, found, err := replica.ReadOwner(ctx, s.EffectiveStrategyName(), s.Spec.ExchangeName)
		Expect(err).NotTo(HaveOccurred())
		Expect(found).To(BeTrue(), "the promoted database records no owner")
		Expect(owner.UID).To(Equal(string(s.UID)))
		Eventually(func() map[string]string { _ = get(ctx, s); return s.Annotations }, timeout).
			ShouldNot(HaveKey(controller.AnnotationPrimaryLost), "the order stays, to promote again later")
	})

	It("refuses a promotion ordered on a Strategy that stands down for the owner of the state", func() {
		primary, err := testenv.StartRedis(ctx)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(primary.Stop)
		other := newNamespace(ctx)
		used = append(used, other)
		shared := func(namespace, name string) *v1.Strategy {
			s := on(strategy(namespace, name, "", "BTCUSDT"), v1.BackendRedis,
				connectionIn(namespace, "primary", primary.URL, true))
			s.Spec.StrategyName = "promoted-by-intruder"
			return s
		}
		owner := shared(ns, "owner")
		owner.Spec.Persistence.Replicas = []v1.StoreReplica{{Name: "standby", Backend: v1.BackendPostgreSQL,
			URLSecretRef: connection("standby", postgresURL, true)}}
		Expect(direct.Create(ctx, owner)).To(Succeed())
		Eventually(func() error { return get(ctx, runnerPod(owner)) }, timeout).Should(Succeed())
		replica, err := domain.OpenDatabase(ctx, v1.BackendPostgreSQL, postgresURL)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(replica.Close)
		recorded := func() string {
			o, _, found, err := replica.ReadOwner(ctx, owner.Spec.StrategyName, owner.Spec.ExchangeName)
			Expect(err).NotTo(HaveOccurred())
			if !found {
				return ""
			}
			return o.UID
		}
		Eventually(recorded, timeout).Should(Equal(string(owner.UID)), "the replica records no owner")
		intruder := shared(other, "intruder")
		Expect(direct.Create(ctx, intruder)).To(Succeed())
		Eventually(condition(ctx, intruder, v1.ConditionPersistenceReady), timeout).
			Should(haveStatus(metav1.ConditionFalse, controller.ReasonStateClaimed))
		copied := domain.New(replica.Backend(driver.Fencing{Writer: "runner", Token: 7}))
		Expect(copied.WriteSignal(ctx, key(owner, "BTCUSDT"), openSignal(owner, "BTCUSDT"))).To(Succeed())
		primary.Stop()

		standby := connectionIn(other, "standby", postgresURL, true)
		change(ctx, intruder, func(s *v1.Strategy) {
			on(s, v1.BackendPostgreSQL, standby)
			s.Annotations = map[string]string{controller.AnnotationPrimaryLost: "primary"}
		})
		Eventually(condition(ctx, intruder, v1.ConditionDegraded), timeout).Should(And(
			haveStatus(metav1.ConditionTrue, controller.ReasonBackendSwitchRefus),
			HaveField("Message", ContainSubstring("Strategy "+ns+"/owner"))))
		Consistently(recorded, "2s").Should(Equal(string(owner.UID)), "a Strategy that does not own the state took "+
			"the replica")
		Expect(get(ctx, intruder)).To(Succeed())
		Expect(intruder.Status.ActiveBackend).To(Equal(v1.BackendRedis))
	})

	It("refuses to promote a database that holds none of the strategy's state", func() {
		primary, err := testenv.StartRedis(ctx)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(primary.Stop)
		s := on(strategy(ns, "unpromoted", "", "BTCUSDT"), v1.BackendRedis, connection("primary", primary.URL, true))
		Expect(direct.Create(ctx, s)).To(Succeed())
		Eventually(func() error { return get(ctx, runnerPod(s)) }, timeout).Should(Succeed())
		primary.Stop()
		change(ctx, s, func(s *v1.Strategy) {
			on(s, v1.BackendMongoDB, connection("empty", mongoURL, true))
			s.Annotations = map[string]string{controller.AnnotationPrimaryLost: "primary"}
		})
		Eventually(condition(ctx, s, v1.ConditionDegraded), timeout).Should(And(
			haveStatus(metav1.ConditionTrue, controller.ReasonBackendSwitchRefus),
			HaveField("Message", ContainSubstring("holds no state a runner of this strategy wrote"))))
		Expect(s.Status.ActiveBackend).To(Equal(v1.BackendRedis))
		refused, err := domain.OpenDatabase(ctx, v1.BackendMongoDB, mongoURL)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(refused.Close)
		_, _, found, err := refused.ReadOwner(ctx, s.EffectiveStrategyName(), s.Spec.ExchangeName)
		Expect(err).NotTo(HaveOccurred())
		Expect(found).To(BeFalse(), "a refused promotion recorded an owner in the database it refused")
	})

	// The live ledger and its archive, on every database backend: the oldest finished
	// signals move to the archive, and the archive keeps what spec.history keeps.
	for _, b := range []v1.PersistenceBackend{v1.BackendRedis, v1.BackendPostgreSQL, v1.BackendMongoDB} {
		It("keeps a live ledger in "+string(b)+" bounded, and its archive within spec.history's retention", func() {
			url := urlOf(b)
			s := on(strategy(ns, "busy", "", "BTCUSDT"), b, connectionIn(ns, "busy", url, true))
			s.Spec.StrategyName = "busy-" + strings.ToLower(string(b))
			s.Spec.History.LiveEntries = 10
			s.Spec.History.MaxAge = &metav1.Duration{Duration: time.Hour}
			state := stateIn(b, url)
			k := key(s, "BTCUSDT")
			// done-00..05 ended in 1970, past the hour spec.history keeps; the others now.
			recent := time.Now().UnixMilli()
			for i := range 12 {
				id := fmt.Sprintf("done-%02d", i)
				at := int64(i) * 60_000
				if i >= 6 {
					at += recent
				}
				Expect(state.RecordHistory(ctx, k, nil, id, domain.HistoryEvent{Kind: "opened", At: at})).
					To(Succeed())
				Expect(state.RecordHistory(ctx, k, nil, id, domain.HistoryEvent{Kind: domain.EventClosed,
					At: at + 30_000})).To(Succeed())
			}
			Expect(state.RecordHistory(ctx, k, nil, "still-open", domain.HistoryEvent{Kind: "opened", At: 0})).
				To(Succeed())

			Expect(direct.Create(ctx, s)).To(Succeed())
			keys := func(d domain.Domain) []string {
				db, err := domain.OpenDatabase(ctx, b, url)
				Expect(err).NotTo(HaveOccurred())
				defer db.Close()
				drv, err := db.Backend(domain.NoFencing)(ctx, d, k)
				Expect(err).NotTo(HaveOccurred())
				_, err = drv.Init(ctx, false)
				Expect(err).NotTo(HaveOccurred())
				got, err := drv.Keys(ctx)
				Expect(err).NotTo(HaveOccurred())
				return got
			}
			// 13 entries past a limit of 10: the 8 oldest finished move, 5 stay (the open one
			// among them). Of the 8, the 6 that ended in 1970 are past the hour the archive keeps.
			Eventually(func() []string { return keys(domain.HistoryArchive) }, timeout).Should(ConsistOf(
				"done-06", "done-07"))
			// The archive is written before the live ledger loses anything: its removals may
			// still be under way.
			Eventually(func() []string { return keys(domain.History) }, timeout).Should(ConsistOf(
				"done-08", "done-09", "done-10", "done-11", "still-open"))
			Eventually(func() []string {
				var evs eventsv1List
				eventReasons(ctx, ns, &evs)
				notes := make([]string, 0, len(evs.Items))
				for _, e := range evs.Items {
					notes = append(notes, e.Note)
				}
				return notes
			}, timeout).Should(ContainElement(MatchRegexp(`^deleted \d+ archived signals of BTCUSDT past spec.history's retention$`)))
		})
	}

	// One database may be shared by Strategies of many namespaces (and clusters), and its
	// rows are keyed as backtest-kit keys them, by strategy and exchange: the database
	// records which Strategy owns them, and no other uses or deletes them unless ordered to.
	for _, b := range []v1.PersistenceBackend{v1.BackendRedis, v1.BackendPostgreSQL, v1.BackendMongoDB} {
		It("gives a state identity in "+string(b)+" to one Strategy across namespaces, and hands it over only when "+
			"ordered", func() {
			url := urlOf(b)
			other := newNamespace(ctx)
			used = append(used, other)
			shared := func(namespace, name string) *v1.Strategy {
				s := on(strategy(namespace, name, "", "BTCUSDT"), b, connectionIn(namespace, name, url, true))
				s.Spec.StrategyName = "shared-" + strings.ToLower(string(b))
				return s
			}
			owner := shared(ns, "owner")
			Expect(direct.Create(ctx, owner)).To(Succeed())
			Eventually(condition(ctx, owner, v1.ConditionPersistenceReady), timeout).
				Should(haveStatus(metav1.ConditionTrue, controller.ReasonBackendReady))
			Eventually(func() error { return get(ctx, runnerPod(owner)) }, timeout).Should(Succeed())
			state := stateIn(b, url)
			Expect(state.WriteSignal(ctx, key(owner, "BTCUSDT"), openSignal(owner, "BTCUSDT"))).To(Succeed())
			db, err := domain.OpenDatabase(ctx, b, url)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(db.Close)
			recorded := func() string {
				o, _, found, err := db.ReadOwner(ctx, owner.Spec.StrategyName, owner.Spec.ExchangeName)
				Expect(err).NotTo(HaveOccurred())
				if !found {
					return ""
				}
				return o.Namespace + "/" + o.Name + "/" + o.UID
			}
			Expect(recorded()).To(Equal(ns + "/owner/" + string(owner.UID)))
			refused := func(s *v1.Strategy) {
				Eventually(condition(ctx, s, v1.ConditionPersistenceReady), timeout).Should(And(
					haveStatus(metav1.ConditionFalse, controller.ReasonStateClaimed),
					HaveField("Message", And(ContainSubstring("Strategy "+ns+"/owner"),
						ContainSubstring(controller.AnnotationTakeOverFrom+"="+string(owner.UID))))))
				Consistently(func() bool { return apierrors.IsNotFound(get(ctx, runnerPod(s))) }, "2s").
					Should(BeTrue(), "a runner pod was made for a Strategy that does not own its state")
			}

			By("a Strategy of another namespace on the same rows is refused, and its retention Delete deletes nothing")
			intruder := shared(other, "intruder")
			intruder.Spec.Retention = v1.DeleteState
			Expect(direct.Create(ctx, intruder)).To(Succeed())
			refused(intruder)

			By("an order to take over from an owner of this cluster that still exists is refused too")
			change(ctx, intruder, func(s *v1.Strategy) {
				s.Annotations = map[string]string{controller.AnnotationTakeOverFrom: string(owner.UID)}
			})
			Consistently(recorded, "3s").Should(Equal(ns+"/owner/"+string(owner.UID)), "a live owner lost its state")
			refused(intruder)
			Expect(direct.Delete(ctx, intruder)).To(Succeed())
			Eventually(func() bool { return apierrors.IsNotFound(get(ctx, intruder)) }, timeout).Should(BeTrue())
			Expect(state.ReadSignal(ctx, key(owner, "BTCUSDT"))).NotTo(BeNil(), "the owner's signal was deleted")
			Expect(recorded()).To(Equal(ns + "/owner/" + string(owner.UID)))

			By("the owner deleted with retention Retain: its record stays, and another namespace still needs the order")
			Expect(direct.Delete(ctx, owner)).To(Succeed())
			Eventually(func() bool { return apierrors.IsNotFound(get(ctx, owner)) }, timeout).Should(BeTrue())
			heir := shared(other, "heir")
			heir.Spec.Retention = v1.DeleteState
			Expect(direct.Create(ctx, heir)).To(Succeed())
			refused(heir)

			By("ordered by the annotation, it takes the state over and runs with the owner's open signal")
			change(ctx, heir, func(s *v1.Strategy) {
				s.Annotations = map[string]string{controller.AnnotationTakeOverFrom: string(owner.UID)}
			})
			Eventually(condition(ctx, heir, v1.ConditionPersistenceReady), timeout).
				Should(haveStatus(metav1.ConditionTrue, controller.ReasonBackendReady))
			Eventually(func() error { return get(ctx, runnerPod(heir)) }, timeout).Should(Succeed())
			Expect(recorded()).To(Equal(other + "/heir/" + string(heir.UID)))
			Eventually(func() int32 { _ = get(ctx, heir); return ptr.Deref(heir.Status.OpenSignals, -1) }, timeout).
				Should(Equal(int32(1)))

			By("the new owner's retention Delete removes the rows and the record")
			Expect(direct.Delete(ctx, heir)).To(Succeed())
			Eventually(func() bool { return apierrors.IsNotFound(get(ctx, heir)) }, timeout).Should(BeTrue())
			Expect(state.ReadSignal(ctx, key(owner, "BTCUSDT"))).To(BeNil())
			Expect(recorded()).To(BeEmpty())

			By("with no owner recorded, the first Strategy takes it; one of its own namespace takes over when it is gone")
			first := shared(ns, "first")
			Expect(direct.Create(ctx, first)).To(Succeed())
			Eventually(recorded, timeout).Should(Equal(ns + "/first/" + string(first.UID)))
			Expect(direct.Delete(ctx, first)).To(Succeed())
			Eventually(func() bool { return apierrors.IsNotFound(get(ctx, first)) }, timeout).Should(BeTrue())
			next := shared(ns, "next")
			Expect(direct.Create(ctx, next)).To(Succeed())
			Eventually(recorded, timeout).Should(Equal(ns + "/next/" + string(next.UID)))
			Eventually(func() error { return get(ctx, runnerPod(next)) }, timeout).Should(Succeed())

			By("an owner of another cluster, which this operator cannot see, is taken over only by order")
			foreign := domain.Owner{Cluster: "elsewhere", Namespace: ns, Name: "abroad", UID: "uid-elsewhere"}
			adopter := shared(ns, "adopter")
			adopter.Spec.StrategyName += "-abroad"
			Expect(db.RecordOwner(ctx, adopter.Spec.StrategyName, adopter.Spec.ExchangeName, foreign, "")).To(Succeed())
			Expect(direct.Create(ctx, adopter)).To(Succeed())
			Eventually(condition(ctx, adopter, v1.ConditionPersistenceReady), timeout).Should(And(
				haveStatus(metav1.ConditionFalse, controller.ReasonStateClaimed),
				HaveField("Message", ContainSubstring("of cluster elsewhere"))))
			change(ctx, adopter, func(s *v1.Strategy) {
				s.Annotations = map[string]string{controller.AnnotationTakeOverFrom: foreign.UID}
			})
			Eventually(condition(ctx, adopter, v1.ConditionPersistenceReady), timeout).
				Should(haveStatus(metav1.ConditionTrue, controller.ReasonBackendReady))
		})
	}

	It("refuses a block that does not match the backend (CEL)", func() {
		s := on(strategy(ns, "mismatch", "", "BTCUSDT"), v1.BackendRedis, v1.SecretKeyRef{Name: "x", Key: "url"})
		s.Spec.Persistence.Backend = v1.BackendPostgreSQL
		err := direct.Create(ctx, s)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(And(ContainSubstring("persistence.redis is required when persistence.backend is Redis"),
			ContainSubstring("persistence.postgresql is required when persistence.backend is PostgreSQL")))
		kube := strategy(ns, "cached-kube", v1.BackendStrategyState, "BTCUSDT")
		kube.Spec.Persistence.Cache = &v1.StoreCache{}
		err = direct.Create(ctx, kube)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring("persistence.cache and persistence.replicas need a database backend"))
		m := on(strategy(ns, "mongo-without-block", "", "BTCUSDT"), v1.BackendMongoDB, v1.SecretKeyRef{Name: "x", Key: "url"})
		m.Spec.Persistence.MongoDB = nil
		err = direct.Create(ctx, m)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring("persistence.mongodb is required when persistence.backend is MongoDB"))
	})
})
