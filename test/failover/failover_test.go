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

// Package failover is the drill of the loss of a whole cluster (make failover-drill, part
// of make test): two local clusters, each with its own control plane and manager, share
// one database; a strategy trades in cluster a; a's control plane and manager are
// SIGKILLed while a's runner runs on, still reaching the database; a person orders cluster
// b to take the state over; a's runner is fenced; a comes back and stays out; and b's
// ledger is the one an uninterrupted run of the same feed writes. It runs on PostgreSQL,
// Redis and MongoDB side by side (one cluster loss for the three) and prints, per
// database, the time from the order to resumed trading and the acknowledged writes lost.
package failover

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/controller"
	"github.com/strategyops/strategy-operator/internal/jsonx"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/testenv"
	"github.com/strategyops/strategy-operator/internal/testenv/runstate"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// The feed: a day of simulated minute candles on two symbols. Cluster a trades it at 300
// times the speed of the clock (a candle every 200 ms), so that the takeover comes long
// before its end whatever the machine's load; cluster b at 1,200 (a candle every 50 ms).
// Simulated time stands still while no runner trades, and each run resumes at the candle
// its state reached, so the ledger does not depend on the speeds.
const (
	strategyName = "drill"
	exchange     = "simulated"
)

var (
	feedStart = time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	feedUntil = feedStart.Add(24 * time.Hour)
	symbols   = []string{"BTCUSDT", "ETHUSDT"}
	feedArgs  = []string{"--start=" + feedStart.Format(time.RFC3339), "--until=" + feedUntil.Format(time.RFC3339)}
)

// In cluster a the runner keeps trading for three minutes without its API server (its
// renew deadline), so that fencing alone, not the Lease, must stop it after the takeover.
var (
	argsA = []string{"--speed=300", "--lease-duration=4m", "--renew-deadline=3m"}
	argsB = []string{"--speed=1200"}
)

const wait = 2 * time.Minute // how long any one step may take on a loaded machine

func TestClusterLoss(t *testing.T) {
	root := testenv.RepoRoot()
	bin := func(name string) string {
		path := filepath.Join(root, "bin", name)
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("%v (run make build)", err)
		}
		return path
	}
	runner := bin("runner")
	want := reference(t, runner)
	a, b := startCluster(t, "a", bin("manager")), startCluster(t, "b", bin("manager"))
	backends := []v1.PersistenceBackend{v1.BackendPostgreSQL, v1.BackendRedis, v1.BackendMongoDB}
	drills := make([]*drill, 0, len(backends))
	for _, backend := range backends {
		drills = append(drills, newDrill(t, backend, runner))
	}
	each := func(step func(d *drill)) {
		var wg sync.WaitGroup
		for _, d := range drills {
			wg.Go(func() { step(d) })
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}

	t.Log("A strategy trades in cluster a on each database")
	each(func(d *drill) { d.inA, d.nodeA = d.apply(t, a, argsA) })
	each(func(d *drill) { d.tradesIn(t, d.nodeA, 4) })
	// Two rolling restarts: each new holder of a's Lease takes a larger token, so that b's
	// Lease, new, counts fewer holders than a's, and b writes above a only because the
	// token is raised past what the database records.
	each(func(d *drill) {
		d.nodeA.restart(t)
		d.nodeA.restart(t)
	})

	t.Log("The same Strategy applied to cluster b waits: cluster a's owns the state")
	each(func(d *drill) {
		d.inB, d.nodeB = d.apply(t, b, argsB)
		d.standsDown(t, b, d.inB, "of cluster a")
	})

	t.Log("Cluster a's control plane and manager are SIGKILLed; its runners run on")
	a.lose(t)
	time.Sleep(2 * time.Second) // a's runners trade on, cut off
	each(func(d *drill) {
		if d.cutOff = d.nodeA.current(); d.cutOff == nil || !d.cutOff.running() {
			t.Errorf("%s: cluster a's runner stopped with its control plane; its log:\n%s", d.backend, d.nodeA.logs())
		}
	})

	t.Log("A person orders cluster b to take the state over")
	each(func(d *drill) {
		d.orderedAt = time.Now()
		var s v1.Strategy
		if err := b.c.Get(t.Context(), client.ObjectKeyFromObject(d.inB), &s); err != nil {
			t.Error(err)
			return
		}
		base := s.DeepCopy()
		metav1.SetMetaDataAnnotation(&s.ObjectMeta, controller.AnnotationTakeOverFrom, string(d.inA.UID))
		if err := b.c.Patch(t.Context(), &s, client.MergeFrom(base)); err != nil {
			t.Error(err)
		}
	})
	each(func(d *drill) { d.resumes(t) })
	each(func(d *drill) { d.fenced(t) })

	t.Log("Cluster a comes back, and stays out")
	a.recover(t)
	each(func(d *drill) {
		d.standsDown(t, a, d.inA, "of cluster b")
		d.podGone(t, a)
	})

	t.Log("Cluster b trades the feed to its end")
	each(func(d *drill) { d.finishes(t, want) })
	for _, d := range drills {
		t.Logf("%-10s  order to resumed trading %6s (the operator's pod %s, the Lease %s); a's runner (token %d) "+
			"fenced %s after b's took token %d; acknowledged writes lost: %d of %d seen", d.backend,
			d.resumedAt.Sub(d.orderedAt).Round(10*time.Millisecond), d.podAt.Sub(d.orderedAt).Round(10*time.Millisecond),
			d.leaseAt.Sub(d.orderedAt).Round(10*time.Millisecond), d.tokenA, d.fencedAfter.Round(10*time.Millisecond),
			d.tokenB, d.lost, d.seenCount())
	}
}

// drill is one database's run of the drill.
type drill struct {
	backend      v1.PersistenceBackend
	ns, url      string
	runner       string
	p            *domain.Persistence // reads the stores unfenced
	inA, inB     *v1.Strategy
	nodeA, nodeB *node
	cutOff       *life // the runner of cluster a that ran on when a was lost

	orderedAt, podAt, leaseAt, resumedAt time.Time
	fencedAfter                          time.Duration
	lost                                 int
	tokenA, tokenB                       int64 // the fencing tokens of a's runner cut off, and of b's

	mu   sync.Mutex
	seen map[string]*domain.HistoryEntry // every version of a ledger entry read while trading, by its JSON
}

func newDrill(t *testing.T, backend v1.PersistenceBackend, runner string) *drill {
	url := testenv.StartDatabase(t, string(backend), "drill")
	db, err := domain.OpenDatabase(t.Context(), backend, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	d := &drill{backend: backend, ns: "drill-" + strings.ToLower(string(backend)), url: url, runner: runner,
		p: domain.New(db.Backend(domain.NoFencing)), seen: map[string]*domain.HistoryEntry{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { d.watchLedger(ctx) })
	// Stopped before the database (cleanups run last first).
	t.Cleanup(func() { cancel(); wg.Wait() })
	return d
}

// watchLedger reads the ledger every 100 ms until ctx ends, keeping every version of every
// entry it sees: each is a write the database acknowledged.
func (d *drill) watchLedger(ctx context.Context) {
	for ctx.Err() == nil {
		if entries, err := runstate.Ledgers(ctx, d.p, strategyName, exchange, symbols); err == nil {
			d.mu.Lock()
			for _, list := range entries {
				for _, e := range list {
					d.seen[canonical(e)] = e
				}
			}
			d.mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (d *drill) seenCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.seen)
}

// apply makes the drill's namespace, connection Secret and Strategy in cl (the same
// manifests in either cluster, as a person keeping a standby cluster would apply them),
// with extra runner flags, and plays the node of its runner pod.
func (d *drill) apply(t *testing.T, cl *cluster, extra []string) (*v1.Strategy, *node) {
	ctx := t.Context()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: d.ns, Name: "drill-db",
		Labels: map[string]string{v1.ConnectionSecretLabel: "true"}}, StringData: map[string]string{"url": d.url}}
	s := &v1.Strategy{ObjectMeta: metav1.ObjectMeta{Namespace: d.ns, Name: strategyName},
		Spec: v1.StrategySpec{ExchangeName: exchange, Symbols: symbols, Persistence: v1.PersistenceSpec{Backend: d.backend},
			Args: append(append([]string{}, feedArgs...), extra...)}}
	s.Spec.Persistence.SetDatabase(d.backend, &v1.DatabasePersistence{
		URLSecretRef: v1.SecretKeyRef{Name: secret.Name, Key: "url"}})
	for _, obj := range []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: d.ns}}, secret, s} {
		if err := cl.c.Create(ctx, obj); err != nil {
			t.Errorf("%s: creating %T in cluster %s: %v", d.backend, obj, cl.name, err)
			return s, nil
		}
	}
	return s, runPod(t, cl, client.ObjectKey{Namespace: d.ns, Name: controller.RunnerName(s)}, d.runner)
}

// tradesIn waits until n's runner holds its Lease and the drill has read versions
// versions of ledger entries (an opened signal, then closed, is two).
func (d *drill) tradesIn(t *testing.T, n *node, versions int) {
	ok := eventually(func() bool {
		_, _, acquired := n.logged("Acquired the lease")
		return acquired && d.seenCount() >= versions
	})
	if !ok {
		t.Errorf("%s: the runner of cluster %s did not trade within %s; its log:\n%s\nthe manager's:\n%s", d.backend,
			n.cl.name, wait, n.logs(), testenv.Tail(n.cl.log.String()))
	}
}

// standsDown waits until s in cl says its state belongs to another Strategy (of the
// cluster named in owner) and cl has no runner pod for it.
func (d *drill) standsDown(t *testing.T, cl *cluster, s *v1.Strategy, owner string) {
	var cond *metav1.Condition
	ok := eventually(func() bool {
		var cur v1.Strategy
		if cl.c.Get(t.Context(), client.ObjectKeyFromObject(s), &cur) != nil {
			return false
		}
		cond = meta.FindStatusCondition(cur.Status.Conditions, v1.ConditionPersistenceReady)
		return cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == controller.ReasonStateClaimed &&
			strings.Contains(cond.Message, owner)
	})
	if !ok {
		t.Errorf("%s: in cluster %s the Strategy's %s is %+v, want %s naming a Strategy %s", d.backend, cl.name,
			v1.ConditionPersistenceReady, cond, controller.ReasonStateClaimed, owner)
	}
}

// podGone checks that cl has no runner pod for the drill's Strategy, and makes none for a
// while: its operator does not start trading the state again.
func (d *drill) podGone(t *testing.T, cl *cluster) {
	key := client.ObjectKey{Namespace: d.ns, Name: controller.RunnerName(d.inA)}
	gone := func() bool { return apierrors.IsNotFound(cl.c.Get(t.Context(), key, &corev1.Pod{})) }
	if !eventually(gone) {
		t.Errorf("%s: cluster %s kept the runner pod of a Strategy whose state another cluster took", d.backend, cl.name)
		return
	}
	// A change of the Strategy makes its operator pass over it again at once (its periodic
	// pass comes only every half minute).
	var s v1.Strategy
	if err := cl.c.Get(t.Context(), client.ObjectKeyFromObject(d.inA), &s); err != nil {
		t.Error(err)
		return
	}
	base := s.DeepCopy()
	metav1.SetMetaDataLabel(&s.ObjectMeta, "drill", "passed-over")
	if err := cl.c.Patch(t.Context(), &s, client.MergeFrom(base)); err != nil {
		t.Error(err)
		return
	}
	for range 20 {
		time.Sleep(250 * time.Millisecond)
		if !gone() {
			t.Errorf("%s: cluster %s made a runner pod again for a state another cluster took", d.backend, cl.name)
			return
		}
	}
}

// resumes waits for cluster b's runner to trade, and records when its pod was made, it
// took its Lease and it traded.
func (d *drill) resumes(t *testing.T) {
	ok := eventually(func() bool {
		if d.podAt.IsZero() {
			if l := d.nodeB.first(); l != nil {
				d.podAt = l.started
			}
		}
		var traded bool
		d.leaseAt, _, _ = d.nodeB.logged("Acquired the lease")
		d.resumedAt, _, traded = d.nodeB.logged("Trading")
		return traded
	})
	if !ok {
		t.Errorf("%s: cluster b's runner did not trade within %s of the order; its log:\n%s\nthe manager's:\n%s",
			d.backend, wait, d.nodeB.logs(), testenv.Tail(d.nodeB.cl.log.String()))
	}
}

// fenced waits for cluster a's runner, cut off but reaching the database, to be refused
// by the stores cluster b's runner fenced, and to stop.
func (d *drill) fenced(t *testing.T) {
	l := d.cutOff
	select {
	case <-l.exited:
	case <-time.After(wait):
		t.Errorf("%s: cluster a's runner still runs %s after the takeover; its log:\n%s", d.backend, wait, d.nodeA.logs())
		return
	}
	out := l.out.String()
	if l.cmd.ProcessState.ExitCode() == 0 || !strings.Contains(out, driver.ErrFenced.Error()) {
		t.Errorf("%s: cluster a's runner exited %d, not refused as fenced; its log:\n%s", d.backend,
			l.cmd.ProcessState.ExitCode(), testenv.Tail(out))
		return
	}
	took, rec, _ := d.nodeB.logged("Acquired the lease")
	d.fencedAfter = l.ended.Sub(took)
	d.tokenB = int64(rec["fencingToken"].(float64))
	if recs := testenv.LogRecords(out, "Acquired the lease"); len(recs) > 0 {
		d.tokenA = int64(recs[0]["fencingToken"].(float64))
	}
	if d.tokenA < 3 || d.tokenB <= d.tokenA {
		t.Errorf("%s: cluster a's runner wrote with token %d (want 3 or more, after two restarts), b's with %d", d.backend,
			d.tokenA, d.tokenB)
	}
}

// finishes waits for cluster b's runner to reach the end of the feed and compares the
// state it left with the uninterrupted run's (want), and every ledger write seen on the
// way with the final ledger.
func (d *drill) finishes(t *testing.T, want map[string]string) {
	if !eventuallyWithin(2*wait, d.nodeB.finished) {
		t.Errorf("%s: cluster b's runner did not reach the end of the feed; its log:\n%s", d.backend, d.nodeB.logs())
		return
	}
	ctx := t.Context()
	entries, err := runstate.Ledgers(ctx, d.p, strategyName, exchange, symbols)
	if err != nil {
		t.Error(err)
		return
	}
	got, err := runstate.Of(ctx, entries, d.p, strategyName, exchange, symbols)
	if err != nil {
		t.Error(err)
		return
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: %s differs from the uninterrupted run:\n got  %s\n want %s", d.backend, id, got[id], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d entries, the uninterrupted run has %d", d.backend, len(got), len(want))
	}
	final := map[string]*domain.HistoryEntry{}
	for _, list := range entries {
		for _, e := range list {
			final[e.ID] = e
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range d.seen {
		if !extends(final[e.ID], e) {
			d.lost++
			t.Errorf("%s: an acknowledged write was lost: %s read as %s, and ends as %s", d.backend, e.ID,
				canonical(e), canonical(final[e.ID]))
		}
	}
}

// extends reports whether the ledger entry got holds every event of seen, in its order.
func extends(got, seen *domain.HistoryEntry) bool {
	if got == nil || len(got.Events) < len(seen.Events) {
		return false
	}
	for i := range seen.Events {
		if canonical(got.Events[i]) != canonical(seen.Events[i]) {
			return false
		}
	}
	return true
}

func canonical(v any) string {
	s, err := jsonx.Canonical(v)
	if err != nil {
		return err.Error()
	}
	return s
}

// reference runs the feed once, straight through, on the File backend.
func reference(t *testing.T, runner string) map[string]string {
	dir := t.TempDir()
	args := []string{"--strategy-name=" + strategyName, "--exchange=" + exchange,
		"--symbols=" + strings.Join(symbols, ","), "--backend=File", "--data-dir=" + dir,
		"--start=" + feedStart.Format(time.RFC3339), "--until=" + feedUntil.Format(time.RFC3339), "--speed=1000000"}
	if out, err := exec.Command(runner, args...).CombinedOutput(); err != nil {
		t.Fatalf("the uninterrupted run: %v\n%s", err, testenv.Tail(string(out)))
	}
	p := domain.New(domain.FileBackend(dir))
	defer func() { _ = p.Close() }()
	entries, err := runstate.Ledgers(t.Context(), p, strategyName, exchange, symbols)
	if err != nil {
		t.Fatal(err)
	}
	closed := 0
	for sym, list := range entries {
		if len(list) >= v1.DefaultLiveEntries { // the live ledgers are compared: none may be archived
			t.Fatalf("the feed leaves %d signals on %s, past the live ledger's %d", len(list), sym, v1.DefaultLiveEntries)
		}
		for _, e := range list {
			if raw, _ := json.Marshal(e); strings.Contains(string(raw), `"kind":"closed"`) {
				closed++
			}
		}
	}
	if closed < 5 {
		t.Fatalf("the feed closes %d signals: the drill would prove little", closed)
	}
	want, err := runstate.Of(t.Context(), entries, p, strategyName, exchange, symbols)
	if err != nil {
		t.Fatal(err)
	}
	return want
}

func eventually(ok func() bool) bool { return eventuallyWithin(wait, ok) }

func eventuallyWithin(within time.Duration, ok func() bool) bool {
	for deadline := time.Now().Add(within); ; time.Sleep(200 * time.Millisecond) {
		if ok() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}
