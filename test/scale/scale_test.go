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

// Package scale measures the operator at scale: the manager binary, as a process of its
// own, against a real API server (make bench).
package scale

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/localcluster"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

// The local cluster's envtest logs through controller-runtime's logger; the figures are
// what the benchmark prints.
func init() { ctrllog.SetLogger(logr.Discard()) }

// symbols are the symbols the Strategies trade, the first n of them each.
var symbols = []string{"BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "AVAXUSDT"}

// The sizes make bench runs: time against the number of Strategies at one symbol each,
// and memory at 10,000 StrategyStates. Run each once (-benchtime 1x).

// BenchmarkScale1000Strategies: 1,000 Strategies of one symbol each.
func BenchmarkScale1000Strategies(b *testing.B) { benchScale(b, 1000, 1) }

// BenchmarkScale5000Strategies: 5,000 Strategies of one symbol each.
func BenchmarkScale5000Strategies(b *testing.B) { benchScale(b, 5000, 1) }

// BenchmarkScale10000States: 5,000 Strategies of two symbols each, 10,000 StrategyStates.
func BenchmarkScale10000States(b *testing.B) { benchScale(b, 5000, 2) }

// BenchmarkScale runs the size SCALE_STRATEGIES Strategies of SCALE_SYMBOLS symbols each
// (default 1) and is skipped without them.
func BenchmarkScale(b *testing.B) {
	n, syms := envSize(b)
	benchScale(b, n, syms)
}

// envSize is the size SCALE_STRATEGIES and SCALE_SYMBOLS (default 1) name; it skips the
// benchmark without them.
func envSize(b *testing.B) (n, syms int) {
	n, err := envInt("SCALE_STRATEGIES", 0)
	switch {
	case err != nil || n < 0:
		b.Fatalf("SCALE_STRATEGIES: want a number of Strategies: %v", err)
	case n == 0:
		b.Skip("a size of one's own: set SCALE_STRATEGIES (and SCALE_SYMBOLS); make bench runs the named sizes")
	}
	syms, err = envInt("SCALE_SYMBOLS", 1)
	if err != nil || syms < 1 || syms > len(symbols) {
		b.Fatalf("SCALE_SYMBOLS: want 1 to %d: %v", len(symbols), err)
	}
	return n, syms
}

func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	return strconv.Atoi(v)
}

// benchScale applies n Strategies of syms symbols each on the StrategyState backend at
// once, and reports the seconds until every one is reconciled (its pod, identity and
// state objects made, its status set for its generation), that figure as Strategies per
// second, and the manager's peak resident memory. The manager is bin/manager, or the
// binary SCALE_MANAGER names (to measure one build beside another).
func benchScale(b *testing.B, n, syms int) {
	run := startScale(b, n, syms, func(context.Context, *localcluster.Cluster, client.Client) []string { return nil })
	b.ReportMetric(run.reconciled.Seconds(), "s-to-reconcile")
	b.ReportMetric(float64(n)/run.reconciled.Seconds(), "strategies/s")
	b.ReportMetric(run.applied.Seconds(), "s-to-apply")
	b.ReportMetric(float64(peakRSS(b, run.mgr.Process.Pid))/(1<<20), "MiB-peak-rss")
	// CPU time, which other work on the machine does not inflate as it does the time.
	managerCPU, clusterCPU := cpuSeconds(b, run.mgr.Process.Pid)
	b.ReportMetric(managerCPU, "manager-cpu-s")
	b.ReportMetric(clusterCPU, "cluster-cpu-s")
}

// scaleRun is a local cluster whose manager has reconciled the Strategies applied to it.
type scaleRun struct {
	cluster *localcluster.Cluster
	c       client.Client
	ns      string
	mgr     *exec.Cmd
	// Strategies are the names of the Strategies, each of symbols.
	strategies []string
	symbols    []string
	// applied is how long applying the Strategies took, reconciled how long until the
	// manager had reconciled every one, from the start of applying.
	applied, reconciled time.Duration
}

// startScale starts a local cluster and the manager (with the flags managerArgs gives
// once the cluster runs), applies n Strategies of syms symbols each at once on the
// StrategyState backend, and waits until every one is reconciled; the benchmark's timer
// runs from the first Strategy applied to the last one reconciled. Everything stops when
// the benchmark ends.
func startScale(b *testing.B, n, syms int,
	managerArgs func(context.Context, *localcluster.Cluster, client.Client) []string) *scaleRun {
	root := testenv.RepoRoot()
	cluster, err := localcluster.Start(testenv.BinaryDir(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cluster.Stop() })
	ctx := context.Background()
	if err := cluster.InstallCRDs(ctx, filepath.Join(root, "config", "crd")); err != nil {
		b.Fatal(err)
	}
	cfg := rest.CopyConfig(cluster.Config)
	cfg.QPS, cfg.Burst = -1, 0
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "scale"}}
	if err := c.Create(ctx, ns); err != nil {
		b.Fatal(err)
	}

	bin := os.Getenv("SCALE_MANAGER")
	if bin == "" {
		bin = filepath.Join(root, "bin", "manager")
	}
	mgr, err := cluster.StartManager(bin, os.Stderr, append([]string{"--zap-log-level=error"},
		managerArgs(ctx, cluster, c)...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = mgr.Process.Kill(); _ = mgr.Wait() })
	run := &scaleRun{cluster: cluster, c: c, ns: ns.Name, mgr: mgr, symbols: symbols[:syms]}
	for i := 1; i <= n; i++ {
		run.strategies = append(run.strategies, fmt.Sprintf("s%05d", i))
	}

	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var next atomic.Int64
	errs := make(chan error, n)
	for range 32 {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				s := &v1.Strategy{
					ObjectMeta: metav1.ObjectMeta{Name: run.strategies[i-1], Namespace: ns.Name},
					Spec: v1.StrategySpec{ExchangeName: "simulated", Symbols: run.symbols,
						Persistence: v1.PersistenceSpec{Backend: v1.BackendStrategyState}},
				}
				if err := c.Create(ctx, s); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	run.applied = time.Since(start)

	// Generous: a regression shows in the figure, a hang ends the run.
	limit := 2*time.Minute + time.Duration(n*syms)*100*time.Millisecond
	deadline := time.Now().Add(limit)
	// Every 500 ms per 1,000 Strategies: each look lists them all, and the API server
	// serving that list shares the machine with the manager it measures.
	poll := time.Duration((n+999)/1000) * 500 * time.Millisecond
	done := 0
	for done < n {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d reconciled after %s", done, n, limit)
		}
		time.Sleep(poll)
		done = reconciled(ctx, b, c, ns.Name)
	}
	run.reconciled = time.Since(start)
	b.StopTimer()
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(ns.Name)); err != nil {
		b.Fatal(err)
	}
	if len(pods.Items) != n {
		b.Fatalf("%d pods for %d strategies", len(pods.Items), n)
	}
	var states metav1.PartialObjectMetadataList
	states.SetGroupVersionKind(v1.GroupVersion.WithKind("StrategyStateList"))
	if err := c.List(ctx, &states, client.InNamespace(ns.Name)); err != nil {
		b.Fatal(err)
	}
	if len(states.Items) != n*syms {
		b.Fatalf("%d StrategyStates for %d strategies of %d symbols", len(states.Items), n, syms)
	}
	return run
}

// userHZ is the unit of the CPU times in /proc/<pid>/stat (USER_HZ, 100 on Linux).
const userHZ = 100

// cpuSeconds is the CPU time the manager (pid) has used, and that of the other processes
// this one started (etcd, kube-apiserver, kube-controller-manager).
func cpuSeconds(b *testing.B, manager int) (managerCPU, clusterCPU float64) {
	dirs, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		b.Fatal(err)
	}
	parent, ticks := map[int]int{}, map[int]int64{}
	for _, path := range dirs {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // ended meanwhile
		}
		// pid (comm) state ppid … utime stime: fields after the command's closing parenthesis.
		pidText, tail, _ := strings.Cut(string(data), " ")
		_, after, ok := strings.Cut(tail, ") ")
		f := strings.Fields(after)
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		parent[pid], ticks[pid] = ppid, utime+stime
	}
	self := os.Getpid()
	for pid, t := range ticks {
		if pid == manager {
			managerCPU = float64(t) / userHZ
			continue
		}
		for p := parent[pid]; p > 1; p = parent[p] {
			if p == self {
				clusterCPU += float64(t) / userHZ
				break
			}
		}
	}
	return managerCPU, clusterCPU
}

// reconciled counts the Strategies whose status was set for their generation with the
// persistence in place.
func reconciled(ctx context.Context, b *testing.B, c client.Client, ns string) int {
	var list v1.StrategyList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, s := range list.Items {
		if s.Status.ObservedGeneration == s.Generation && s.Status.PodName != "" &&
			meta.IsStatusConditionTrue(s.Status.Conditions, v1.ConditionPersistenceReady) {
			n++
		}
	}
	return n
}

// peakRSS is a process's peak resident set (VmHWM), in bytes.
func peakRSS(b *testing.B, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if value, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc status")
	return 0
}
