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

// Package soak drives one symbol through thousands of signals on every backend, each with
// a real runner process (bin/runner) and, where the operator tends the state, the manager
// binary beside it, and checks that nothing grows: the live ledger and its archive stay
// within spec.history's bounds, and the runner's live heap (go_gc_heap_live_bytes, which
// its metrics endpoint serves) and goroutines stay flat after warm-up. make test runs 1,000
// signals per backend; make soak runs 10,000 (SOAK_SIGNALS).
package soak

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/childproc"
	"github.com/strategyops/strategy-operator/internal/localcluster"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
	"github.com/strategyops/strategy-operator/internal/runner"
	"github.com/strategyops/strategy-operator/internal/strategy"
	"github.com/strategyops/strategy-operator/internal/testenv"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// Bounds the test holds every backend to.
const (
	// Live objects (the ones runners write) stay under a quarter of the API server's 1 MiB;
	// a sealed archive under its own cap.
	maxLiveBytes    = 256 << 10
	maxArchiveBytes = domain.MaxArchiveBytes + 16<<10
	// The runner's live heap near the end may be at most this many times what it was after
	// the first tenth of the signals: a heap that doubled fails. Its goroutines may move
	// by goroutineSlack (a connection's reader and writer coming and going). Each is the
	// least of the samples in a window of signals (see window): a scrape's own goroutines
	// and a large value in flight when the collector marked come and go.
	heapGrowth     = 1.5
	goroutineSlack = 2
	// The live ledger may pass its limit until the next archiving pass, but never by this
	// much: a runner or operator that stopped archiving would reach the number of signals.
	maxLiveKeys = 2 * v1.DefaultLiveEntries
	// A sealed archive ConfigMap goes whole or stays, so the Kubernetes backends may keep
	// up to one archive's entries past spec.history.archivedEntries.
	archiveSlack = 100
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func signals(t *testing.T) int {
	n := 1000
	if v := os.Getenv("SOAK_SIGNALS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1000 {
			t.Fatalf("SOAK_SIGNALS=%q: want a whole number of at least 1000", v)
		}
	}
	return n
}

// soakEnv is what every backend's soak shares: the cluster, the manager beside it, the
// runner binary and the script of signals.
type soakEnv struct {
	cluster *localcluster.Cluster
	c       client.Client
	runner  string
	script  string
	n       int
}

func TestSoak(t *testing.T) {
	root := testenv.RepoRoot()
	cluster, err := localcluster.Start(testenv.BinaryDir(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Stop() })
	ctx := context.Background()
	if err := cluster.InstallCRDs(ctx, filepath.Join(root, "config", "crd")); err != nil {
		t.Fatal(err)
	}
	managerLog, err := os.Create(filepath.Join(t.TempDir(), "manager.log"))
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := cluster.StartManager(filepath.Join(root, "bin", "manager"), managerLog, "--zap-log-level=error")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mgr.Process.Kill(); _ = mgr.Wait() })
	cfg := rest.CopyConfig(cluster.Config)
	cfg.QPS, cfg.Burst = -1, 0
	cfg.Timeout = 30 * time.Second
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	n := signals(t)
	env := &soakEnv{cluster: cluster, c: c, runner: filepath.Join(root, "bin", "runner"), script: script(t, 2*n+10), n: n}
	// The backends soak side by side: the Kubernetes ones wait on the API server, the
	// others on their database or disk.
	for _, b := range []v1.PersistenceBackend{v1.BackendFile, v1.BackendConfigMap, v1.BackendStrategyState,
		v1.BackendRedis, v1.BackendPostgreSQL, v1.BackendMongoDB} {
		if only := os.Getenv("SOAK_BACKENDS"); only != "" && !slices.Contains(strings.Split(only, ","), string(b)) {
			continue // the backends asked for only
		}
		t.Run(string(b), func(t *testing.T) {
			t.Parallel()
			env.soak(t, b)
		})
	}
}

// runLimit is how long the runner may take to reach --until: what the test's own deadline
// (go test -timeout, SOAK_TIMEOUT) leaves after the checks that follow, so a machine kept
// busy by other work slows the soak without failing it. Without a deadline, a pace no
// working runner falls below on a 2-core machine.
func runLimit(t *testing.T, n int) time.Duration {
	const checks = 5 * time.Minute // the ledger and archive checks after the run
	if deadline, ok := t.Deadline(); ok {
		return max(time.Minute, time.Until(deadline)-checks)
	}
	return max(20*time.Minute, time.Duration(n)*600*time.Millisecond)
}

// script writes a script proposing a long signal every minute from t0 for the minutes
// given; each opens, expires one candle later, and the next opens on the candle after.
func script(t *testing.T, minutes int) string {
	path := filepath.Join(t.TempDir(), "script.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := range minutes {
		line, _ := json.Marshal(strategy.ScriptLine{At: t0.Add(time.Duration(i) * time.Minute), Position: "long",
			TakeProfitPercent: 5, StopLossPercent: 5, MinuteEstimatedTime: new(int64(1))})
		_, _ = w.Write(append(line, '\n'))
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		t.Fatal(err)
	}
	return path
}

func (e *soakEnv) soak(t *testing.T, b v1.PersistenceBackend) {
	ctx := context.Background()
	n, keep := e.n, max(100, e.n/2) // spec.history.archivedEntries: the archive keeps half the signals
	ns := "soak-" + strings.ToLower(string(b))
	k := domain.StrategyKey("BTCUSDT", "soak", "simulated")
	until := t0.Add(time.Duration(2*n+10) * time.Minute)
	args := []string{"--strategy-name=soak", "--exchange=simulated", "--symbols=BTCUSDT",
		"--backend=" + string(b), "--strategy=scripted", "--option=file=" + e.script,
		"--start=" + t0.Format(time.RFC3339), "--until=" + until.Format(time.RFC3339), "--speed=3000",
		"--metrics-bind-address=127.0.0.1:0"} // the runner picks the port and logs it
	var env []string
	var backend domain.Backend // the state as the test reads it
	home := domain.HomeOf(b)
	switch home {
	case domain.OnVolume:
		dir := t.TempDir()
		args = append(args, "--data-dir="+dir, "--history-archived-entries="+strconv.Itoa(keep))
		backend = domain.FileBackend(dir)
	default:
		args = append(args, "--namespace="+ns, "--lease=soak-runner")
		var url string
		if home == domain.InDatabase {
			url = testenv.StartDatabase(t, string(b), "soak")
			env = append(env, domain.StoreURLEnv+"="+url)
			db, err := domain.OpenDatabase(ctx, b, url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(db.Close)
			backend = db.Backend(domain.NoFencing)
		} else {
			var err error
			if backend, err = domain.KubeBackend(b, e.c, domain.KubeOptions{Namespace: ns}); err != nil {
				t.Fatal(err)
			}
		}
		e.strategy(ctx, t, ns, b, url, keep)
	}

	runnerLog := &testenv.Output{}
	cmd := exec.Command(e.runner, args...)
	cmd.Env = append(append(os.Environ(), "KUBECONFIG="+e.cluster.Kubeconfig), env...)
	cmd.Stdout, cmd.Stderr, cmd.SysProcAttr = runnerLog, runnerLog, childproc.SysProcAttr()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited, gone := make(chan error, 1), make(chan struct{})
	go func() { exited <- cmd.Wait(); close(gone) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-gone }) // before its folder or server goes

	// Scrape the runner as it runs; on the Kubernetes backends watch the live ledger's size.
	var samples []sample
	addr := ""
	maxKeys, maxUsage := 0, 0
	limit := runLimit(t, n)
	ledger := client.ObjectKey{Namespace: ns, Name: domain.ConfigMapName(domain.History, k)}
	var runErr error
	for done := false; !done; {
		select {
		case runErr = <-exited:
			done = true
		case <-time.After(100 * time.Millisecond):
		}
		if addr == "" {
			if served := testenv.LogRecords(runnerLog.String(), "Serving metrics and probes"); len(served) > 0 {
				addr, _ = served[0]["address"].(string)
			}
		} else if s, err := scrape(addr); err == nil && s.heap > 0 {
			samples = append(samples, s)
		}
		if home == domain.InObjects {
			var cm metav1.PartialObjectMetadata
			cm.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMap"))
			if err := e.c.Get(ctx, ledger, &cm); err == nil {
				keys, _ := strconv.Atoi(cm.Annotations[kubestore.AnnotationKeys])
				use, _ := strconv.Atoi(cm.Annotations[kubestore.AnnotationUsage])
				maxKeys, maxUsage = max(maxKeys, keys), max(maxUsage, use)
			}
		}
		if time.Since(start) > limit {
			t.Fatalf("the runner did not reach --until in %s (the test's deadline, SOAK_TIMEOUT, less the checks)", limit)
		}
	}
	logged := runnerLog.String()
	if runErr != nil {
		t.Fatalf("the runner: %v; its log:\n%s", runErr, testenv.Tail(logged))
	}
	first, err := window(samples, 0.1*float64(n), 0.2*float64(n))
	if err != nil {
		t.Fatal(err)
	}
	last, err := window(samples, 0.8*float64(n), 0.95*float64(n))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: the runner reached --until in %s; live heap %.1f MiB at signals %d-%d, %.1f MiB at %d-%d; goroutines "+
		"%.0f and %.0f", b, time.Since(start).Round(time.Second), first.heap/(1<<20), n/10, n/5, last.heap/(1<<20),
		n*8/10, n*95/100, first.goroutines, last.goroutines)
	if last.heap > heapGrowth*first.heap {
		t.Errorf("the runner's live heap grew from %.0f to %.0f bytes between signals %d and %d (bound: x%.1f)",
			first.heap, last.heap, n/10, n*8/10, heapGrowth)
	}
	if last.goroutines > first.goroutines+goroutineSlack {
		t.Errorf("the runner's goroutines grew from %.0f to %.0f", first.goroutines, last.goroutines)
	}
	if home == domain.InObjects {
		t.Logf("%s: the live ledger held at most %d entries, %d%% of its size limit", b, maxKeys, maxUsage)
		if maxKeys > maxLiveKeys || maxUsage >= maxLiveBytes*100/(1<<20) {
			t.Errorf("the live ledger reached %d entries and %d%% of its size limit; bounds %d and %d%%",
				maxKeys, maxUsage, maxLiveKeys, maxLiveBytes*100/(1<<20))
		}
		e.objectSizes(ctx, t, ns, b)
	}
	e.ledgerBounded(ctx, t, b, backend, ns, k, keep)
}

// ledgerBounded checks the ledger the soak left, once archiving has caught up (the
// operator's next pass on a database; on File the runner's pass at --until): the live
// ledger within twice spec.history.liveEntries, the archive within archivedEntries, and
// every signal kept opened, then closed, once.
func (e *soakEnv) ledgerBounded(ctx context.Context, t *testing.T, b v1.PersistenceBackend, backend domain.Backend,
	ns string, k domain.Key, keep int) {
	var live, archived []*domain.HistoryEntry
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var err error
		if live, archived, err = e.ledger(ctx, b, backend, ns, k); err != nil {
			t.Fatal(err)
		}
		if len(live) <= maxLiveKeys && len(archived) <= keep+archiveSlack || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	t.Logf("%s: the ledger keeps %d live and %d archived signals (spec.history: %d live, %d archived)", b,
		len(live), len(archived), v1.DefaultLiveEntries, keep)
	if len(live) > maxLiveKeys || len(archived) > keep+archiveSlack || len(archived) < keep/2 {
		t.Errorf("the ledger keeps %d live and %d archived signals; bounds %d and %d (and at least %d archived)",
			len(live), len(archived), maxLiveKeys, keep+archiveSlack, keep/2)
	}
	for _, h := range append(live, archived...) {
		if len(h.Events) != 2 || h.Events[0].Kind != runner.KindOpen || h.Events[1].Kind != runner.KindClose {
			t.Fatalf("signal %s reads as %+v, want opened then closed", h.ID, h.Events)
		}
	}
}

// ledger reads the live ledger and the archive of k.
func (e *soakEnv) ledger(ctx context.Context, b v1.PersistenceBackend, backend domain.Backend, ns string,
	k domain.Key) (live, archived []*domain.HistoryEntry, err error) {
	read := func(d domain.Domain) ([]*domain.HistoryEntry, error) {
		drv, err := backend(ctx, d, k)
		if err != nil {
			return nil, err
		}
		defer func() { _ = drv.Close() }()
		if _, err := drv.Init(ctx, false); err != nil {
			return nil, err
		}
		all, err := driver.ReadAll(ctx, drv) // one query where the driver can
		if err != nil {
			return nil, err
		}
		out := make([]*domain.HistoryEntry, 0, len(all))
		for key, got := range all {
			var h domain.HistoryEntry
			if err := json.Unmarshal(got.Value, &h); err != nil {
				return nil, fmt.Errorf("%s %s: %w", d, key, err)
			}
			h.ID = key
			out = append(out, &h)
		}
		return out, nil
	}
	if live, err = read(domain.History); err != nil {
		return nil, nil, err
	}
	if domain.HomeOf(b) != domain.InObjects {
		archived, err = read(domain.HistoryArchive)
		return live, archived, err
	}
	// The Kubernetes backends seal their archives into ConfigMaps of their own.
	all, err := domain.ReadHistory(ctx, e.c, ns, k)
	if err != nil {
		return nil, nil, err
	}
	for _, h := range all {
		if !containsID(live, h.ID) {
			archived = append(archived, h)
		}
	}
	return live, archived, nil
}

func containsID(list []*domain.HistoryEntry, id string) bool {
	for _, h := range list {
		if h.ID == id {
			return true
		}
	}
	return false
}

// strategy makes the Strategy whose state the runner writes, so that the operator makes
// its store objects (or claims its rows) and tends its ledger. On the Kubernetes backends
// it is suspended: the live ledger's growth wakes the operator. A database's ledger is
// tended on the operator's periodic pass over a Strategy that runs (a suspended one's state
// does not grow), so there the Strategy runs: its pod, on a cluster without nodes, never
// starts, and the soak's runner holds its Lease.
func (e *soakEnv) strategy(ctx context.Context, t *testing.T, ns string, b v1.PersistenceBackend, url string,
	keep int) {
	if err := e.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	s := &v1.Strategy{ObjectMeta: metav1.ObjectMeta{Name: "soak", Namespace: ns},
		Spec: v1.StrategySpec{ExchangeName: "simulated", Symbols: []string{"BTCUSDT"}, Suspend: url == "",
			Persistence: v1.PersistenceSpec{Backend: b}, History: v1.HistorySpec{ArchivedEntries: int32(keep)}}}
	if url != "" {
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "soak-db",
			Labels: map[string]string{v1.ConnectionSecretLabel: "true"}}, StringData: map[string]string{"url": url}}
		if err := e.c.Create(ctx, secret); err != nil {
			t.Fatal(err)
		}
		s.Spec.Persistence.SetDatabase(b, &v1.DatabasePersistence{
			URLSecretRef: v1.SecretKeyRef{Name: secret.Name, Key: "url"}})
	}
	if err := e.c.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the operator to make the state ready", func() bool {
		return e.c.Get(ctx, client.ObjectKeyFromObject(s), s) == nil &&
			meta.IsStatusConditionTrue(s.Status.Conditions, v1.ConditionPersistenceReady)
	})
}

// objectSizes checks the largest live store object and ledger archive in ns, each
// measured as the JSON the API server stores.
func (e *soakEnv) objectSizes(ctx context.Context, t *testing.T, ns string, b v1.PersistenceBackend) {
	t.Helper()
	var cms corev1.ConfigMapList
	var states v1.StrategyStateList
	in := client.InNamespace(ns)
	if err := errors.Join(e.c.List(ctx, &cms, in), e.c.List(ctx, &states, in)); err != nil {
		t.Fatal(err)
	}
	objs := make([]client.Object, 0, len(cms.Items)+len(states.Items))
	for i := range cms.Items {
		objs = append(objs, &cms.Items[i])
	}
	for i := range states.Items {
		objs = append(objs, &states.Items[i])
	}
	var live, archive sized
	for _, o := range objs {
		data, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		cur := sized{fmt.Sprintf("%T %s", o, o.GetName()), len(data)}
		if _, ok := o.GetLabels()[domain.LabelArchive]; ok {
			if cur.size > archive.size {
				archive = cur
			}
		} else if cur.size > live.size {
			live = cur
		}
	}
	t.Logf("%s: largest live object %s (%d bytes), largest archive %s (%d bytes)", b, live.name, live.size,
		archive.name, archive.size)
	if live.size > maxLiveBytes || archive.size > maxArchiveBytes {
		t.Errorf("an object passed its bound: live %d (bound %d), archive %d (bound %d)", live.size, maxLiveBytes,
			archive.size, maxArchiveBytes)
	}
}

type sized struct {
	name string
	size int
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
