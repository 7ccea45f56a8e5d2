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

// Package soak drives one symbol through thousands of signals on the Kubernetes backends,
// with the manager binary running beside it, and checks that nothing grows: object sizes,
// the runner's heap and goroutines. make test runs 1,000 signals per backend; make soak
// runs 10,000 (SOAK_SIGNALS).
package soak

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/localcluster"
	"github.com/strategyops/strategy-operator/internal/market"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
	"github.com/strategyops/strategy-operator/internal/runner"
	"github.com/strategyops/strategy-operator/internal/strategy"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

// Bounds the test holds every object to: live objects (the ones runners write) stay under
// a quarter of the API server's 1 MiB; a sealed archive under its own cap.
const (
	maxLiveBytes    = 256 << 10
	maxArchiveBytes = domain.MaxArchiveBytes + 16<<10
	// The runner's heap may move by this much between the first tenth of the signals and
	// the end (the garbage collector's own slack), and its goroutines by this many (a
	// connection's reader and writer coming and going).
	heapSlack      = 4 << 20
	goroutineSlack = 2
	// While it runs, the live ledger may pass its limit until the operator's next pass,
	// but never by this much: an operator that stopped archiving would reach 1,000 keys.
	maxLiveKeys = 2 * v1.DefaultLiveEntries
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func signals(t *testing.T) int {
	n := 1000
	if v := os.Getenv("SOAK_SIGNALS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 100 {
			t.Fatalf("SOAK_SIGNALS=%q: want a whole number of at least 100", v)
		}
	}
	return n
}

func TestSoak(t *testing.T) {
	root := testenv.RepoRoot()
	cluster, err := localcluster.Start(testenv.BinaryDir(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cluster.Stop() }()
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
	defer func() { _ = mgr.Process.Kill(); _ = mgr.Wait() }()
	cfg := rest.CopyConfig(cluster.Config)
	cfg.QPS, cfg.Burst = -1, 0
	cfg.Timeout = 30 * time.Second // as the runner's store client: a request never answered is retried
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	n := signals(t)
	for _, b := range []v1.PersistenceBackend{v1.BackendConfigMap, v1.BackendStrategyState} {
		if only := os.Getenv("SOAK_BACKEND"); only != "" && only != string(b) {
			continue // one backend only, when asked
		}
		t.Run(string(b), func(t *testing.T) { soak(t, c, b, n) })
	}
}

// closes counts the runner's "Signal closed" log records.
type closes struct {
	slog.Handler
	n *atomic.Int64
}

func (h closes) Enabled(context.Context, slog.Level) bool { return true }

func (h closes) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "Signal "+runner.KindClose {
		h.n.Add(1)
	}
	return nil
}

// script proposes a long signal every minute from t0 for the minutes given; each opens,
// expires one candle later, and the next opens on the candle after.
func script(t *testing.T, minutes int) strategy.Strategy {
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
	s, err := strategy.New("scripted", map[string]string{"file": path})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type usage struct {
	heap       uint64
	goroutines int
}

func measure() usage {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return usage{heap: m.HeapAlloc, goroutines: runtime.NumGoroutine()}
}

func soak(t *testing.T, c client.Client, b v1.PersistenceBackend, n int) {
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "soak-" + strings.ToLower(string(b))}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	s := &v1.Strategy{ObjectMeta: metav1.ObjectMeta{Name: "soak", Namespace: ns.Name},
		Spec: v1.StrategySpec{ExchangeName: "simulated", Symbols: []string{"BTCUSDT"}, Suspend: true,
			Persistence: v1.PersistenceSpec{Backend: b}}}
	if err := c.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the operator to make the store objects", func() bool {
		return c.Get(ctx, client.ObjectKeyFromObject(s), s) == nil &&
			meta.IsStatusConditionTrue(s.Status.Conditions, v1.ConditionPersistenceReady)
	})

	// The runner: the engine over the backend with a runner's rights, fenced.
	opts := domain.KubeOptions{Namespace: ns.Name, Fencing: kubestore.Fencing{Writer: "soak-runner", Token: 1}}
	backend := domain.ConfigMapBackend(c, opts)
	if b == v1.BackendStrategyState {
		backend = domain.StrategyStateBackend(c, opts)
	}
	p := domain.New(backend)
	defer func() { _ = p.Close() }()
	var closed atomic.Int64
	e := runner.New(runner.Config{StrategyName: "soak", ExchangeName: "simulated", Symbols: []string{"BTCUSDT"},
		Source: market.Simulated{Seed: 7}, Strategy: script(t, 2*n+10), Persist: p, Limits: v1.DefaultSignalLimits,
		Start: t0, Log: slog.New(closes{n: &closed})})
	if err := e.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	k := domain.StrategyKey("BTCUSDT", "soak", "simulated")
	ledger := client.ObjectKey{Namespace: ns.Name, Name: domain.ConfigMapName(domain.History, k)}

	start, now := time.Now(), t0
	var first usage
	maxKeys, maxUsage := 0, 0
	for closed.Load() < int64(n) {
		now = now.Add(20 * time.Minute)
		// A write that keeps failing fails the test with its error, rather than hanging it.
		stepCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		_, err := e.Step(stepCtx, now)
		cancel()
		if err != nil {
			t.Fatalf("after %d signals: %v", closed.Load(), err)
		}
		var cm metav1.PartialObjectMetadata
		cm.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMap"))
		if err := c.Get(ctx, ledger, &cm); err != nil {
			t.Fatal(err)
		}
		keys, _ := strconv.Atoi(cm.Annotations[kubestore.AnnotationKeys])
		use, _ := strconv.Atoi(cm.Annotations[kubestore.AnnotationUsage])
		maxKeys, maxUsage = max(maxKeys, keys), max(maxUsage, use)
		if first.heap == 0 && closed.Load() >= int64(n/10) {
			first = measure()
		}
	}
	last := measure()
	t.Logf("%s: %d signals in %s; runner heap %.1f MiB at signal %d, %.1f MiB at %d; goroutines %d and %d",
		b, closed.Load(), time.Since(start).Round(time.Second), float64(first.heap)/(1<<20), n/10,
		float64(last.heap)/(1<<20), n, first.goroutines, last.goroutines)
	t.Logf("%s: the live ledger held at most %d entries, %d%% of its size limit", b, maxKeys, maxUsage)
	if last.heap > first.heap+heapSlack {
		t.Errorf("the runner's heap grew from %d to %d bytes between signal %d and %d", first.heap, last.heap, n/10, n)
	}
	if maxKeys > maxLiveKeys || maxUsage >= maxLiveBytes*100/(1<<20) {
		t.Errorf("the live ledger reached %d entries and %d%% of its size limit; bounds %d and %d%%",
			maxKeys, maxUsage, maxLiveKeys, maxLiveBytes*100/(1<<20))
	}
	if last.goroutines > first.goroutines+goroutineSlack {
		t.Errorf("the runner's goroutines grew from %d to %d", first.goroutines, last.goroutines)
	}

	// The whole history is readable, every signal opened and closed once.
	var history []*domain.HistoryEntry
	waitFor(t, "the whole history to read back", func() bool {
		var err error
		history, err = domain.ReadHistory(ctx, c, ns.Name, k)
		return err == nil && len(history) == int(closed.Load())
	})
	for _, h := range history {
		if len(h.Events) != 2 || h.Events[0].Kind != runner.KindOpen || h.Events[1].Kind != runner.KindClose {
			t.Fatalf("signal %s reads as %+v, want opened then closed", h.ID, h.Events)
		}
	}
	largestLive, largestArchive := largest(ctx, t, c, ns.Name)
	t.Logf("%s: largest live object %s (%d bytes), largest archive %s (%d bytes)", b,
		largestLive.name, largestLive.size, largestArchive.name, largestArchive.size)
	if largestLive.size > maxLiveBytes || largestArchive.size > maxArchiveBytes {
		t.Errorf("an object passed its bound: live %d (bound %d), archive %d (bound %d)",
			largestLive.size, maxLiveBytes, largestArchive.size, maxArchiveBytes)
	}
}

type sized struct {
	name string
	size int
}

// largest returns the largest live store object and the largest ledger archive in ns,
// each measured as the JSON the API server stores.
func largest(ctx context.Context, t *testing.T, c client.Client, ns string) (live, archive sized) {
	t.Helper()
	var cms corev1.ConfigMapList
	var states v1.StrategyStateList
	in := client.InNamespace(ns)
	if err := errors.Join(c.List(ctx, &cms, in), c.List(ctx, &states, in)); err != nil {
		t.Fatal(err)
	}
	objs := make([]client.Object, 0, len(cms.Items)+len(states.Items))
	for i := range cms.Items {
		objs = append(objs, &cms.Items[i])
	}
	for i := range states.Items {
		objs = append(objs, &states.Items[i])
	}
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
	return live, archive
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
