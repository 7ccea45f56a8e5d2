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
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
	"github.com/strategyops/strategy-operator/internal/testenv"
)

const strategies = 1000

// BenchmarkScale1000Strategies applies 1,000 Strategies at once and reports the seconds
// until every one is reconciled (its pod, identity and state objects made, its status
// set for its generation) and the manager's peak resident memory. Run it once
// (-benchtime 1x): make bench holds the time to 60 s.
func BenchmarkScale1000Strategies(b *testing.B) {
	root := testenv.RepoRoot()
	cluster, err := localcluster.Start(testenv.BinaryDir(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cluster.Stop() }()
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

	mgr, err := cluster.StartManager(filepath.Join(root, "bin", "manager"), os.Stderr, "--zap-log-level=error")
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = mgr.Process.Kill(); _ = mgr.Wait() }()

	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var next atomic.Int64
	errs := make(chan error, strategies)
	for range 32 {
		wg.Go(func() {
			for i := next.Add(1); i <= strategies; i = next.Add(1) {
				s := &v1.Strategy{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s%04d", i), Namespace: ns.Name},
					Spec: v1.StrategySpec{ExchangeName: "simulated", Symbols: []string{"BTCUSDT"},
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
	applied := time.Since(start)

	deadline := time.Now().Add(5 * time.Minute)
	done := 0
	for done < strategies {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d reconciled after 5 minutes", done, strategies)
		}
		time.Sleep(500 * time.Millisecond)
		done = reconciled(ctx, b, c, ns.Name)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(ns.Name)); err != nil {
		b.Fatal(err)
	}
	if len(pods.Items) != strategies {
		b.Fatalf("%d pods for %d strategies", len(pods.Items), strategies)
	}
	peak := peakRSS(b, mgr.Process.Pid)
	b.ReportMetric(elapsed.Seconds(), "s-to-reconcile")
	b.ReportMetric(applied.Seconds(), "s-to-apply")
	b.ReportMetric(float64(peak)/(1<<20), "MiB-peak-rss")
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
