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

package runner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/childproc"
	"github.com/strategyops/strategy-operator/internal/market"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
	"github.com/strategyops/strategy-operator/internal/runner"
	"github.com/strategyops/strategy-operator/internal/strategy"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

// The crash-equivalence test runs this test binary again as the runner, once without
// interruption and once killed with SIGKILL at random moments and restarted, and compares
// the two ledgers. childDirEnv names the child's state folder on the File backend;
// childKubeconfigEnv and childNamespaceEnv its API server and namespace on the ConfigMap
// backend.
const (
	childDirEnv        = "RUNNER_CRASH_CHILD_DIR"
	childKubeconfigEnv = "RUNNER_CRASH_CHILD_KUBECONFIG"
	childNamespaceEnv  = "RUNNER_CRASH_CHILD_NAMESPACE"
)

var (
	t0      = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	tEnd    = t0.Add(24 * time.Hour)
	symbols = []string{"BTCUSDT", "ETHUSDT", "SOLUSDT"}
	env     *testenv.Environment
)

func TestMain(m *testing.M) {
	if os.Getenv(childDirEnv) != "" || os.Getenv(childKubeconfigEnv) != "" {
		if err := runChild(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	testenv.RunMain(m, &env)
}

func newEngine(p *domain.Persistence) (*runner.Engine, error) {
	s, err := strategy.New("indicator", map[string]string{"fast": "5", "slow": "20"})
	if err != nil {
		return nil, err
	}
	return runner.New(runner.Config{
		StrategyName: "crossover", ExchangeName: "simulated", Symbols: symbols,
		Source: market.Simulated{Seed: 2026}, Strategy: s, Persist: p,
		Limits: v1.DefaultSignalLimits, Start: t0,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}), nil
}

// childBackend is the backend the child process was started on. On ConfigMap each life
// of the child is a new writer with a larger fencing token, as a restarted runner is.
func childBackend() (domain.Backend, error) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		return domain.FileBackend(dir), nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv(childKubeconfigEnv))
	if err != nil {
		return nil, err
	}
	cfg.QPS = -1 // client-go's default of 5 requests a second would measure the limiter
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		return nil, err
	}
	return domain.ConfigMapBackend(c, domain.KubeOptions{
		Namespace: os.Getenv(childNamespaceEnv), Create: true,
		Fencing: kubestore.Fencing{Writer: fmt.Sprintf("child-%d", os.Getpid()), Token: time.Now().UnixNano()},
	}), nil
}

// runChild restores and processes every candle up to tEnd.
func runChild() error {
	ctx := context.Background()
	b, err := childBackend()
	if err != nil {
		return err
	}
	p := domain.New(b)
	defer func() { _ = p.Close() }()
	e, err := newEngine(p)
	if err != nil {
		return err
	}
	if err := e.Restore(ctx); err != nil {
		return err
	}
	fmt.Print(restoredMark)
	_, err = e.Step(ctx, tEnd)
	return err
}

// restoredMark is what a child prints once it has restored its state, before its first
// candle.
const restoredMark = "restored\n"

// restoreWatch is a child's standard output: done closes once the child says it restored.
type restoreWatch struct {
	once sync.Once
	done chan struct{}
}

func (w *restoreWatch) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(restoredMark)) {
		w.once.Do(func() { close(w.done) })
	}
	return len(p), nil
}

func (w *restoreWatch) restored() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// target is one backend under test: how a child is pointed at a fresh state, and how the
// test reads that state back.
type target struct {
	childEnv func() []string
	backend  domain.Backend
}

func fileTarget(t *testing.T) target {
	dir := t.TempDir()
	return target{childEnv: func() []string { return []string{childDirEnv + "=" + dir} }, backend: domain.FileBackend(dir)}
}

func configMapTarget(t *testing.T) target {
	ns := env.Namespace(context.Background(), t)
	path := env.Kubeconfig(t)
	return target{
		childEnv: func() []string { return []string{childKubeconfigEnv + "=" + path, childNamespaceEnv + "=" + ns} },
		backend:  domain.ConfigMapBackend(env.Client, domain.KubeOptions{Namespace: ns}),
	}
}

func child(tg target) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.SysProcAttr = childproc.SysProcAttr() // dies with the test binary
	cmd.Env = append(os.Environ(), tg.childEnv()...)
	cmd.Stderr = os.Stderr
	return cmd
}

// ledger is everything the strategy did, by symbol: every signal's history entry, and
// the state it ended in.
func ledger(t *testing.T, tg target) map[string]any {
	t.Helper()
	ctx := context.Background()
	p := domain.New(tg.backend)
	defer func() { _ = p.Close() }()
	out := map[string]any{}
	for _, sym := range symbols {
		k := domain.StrategyKey(sym, "crossover", "simulated")
		entries := historyOf(t, p, k)
		sig, err := p.ReadSignal(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		sched, err := p.ReadSchedule(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		// Partial levels and breakeven state: only the open signal's may remain.
		kept := map[string][]string{"partial": keysOf(t, p.Partial, k), "breakeven": keysOf(t, p.Breakeven, k)}
		for d, ids := range kept {
			for _, id := range ids {
				if sig == nil || id != sig.ID {
					t.Errorf("%s: the %s store keeps an entry for signal %s, which is not open", sym, d, id)
				}
			}
		}
		out[sym] = map[string]any{"history": entries, "signal": sig, "schedule": sched, "kept": kept}
	}
	risk, err := p.ReadRisk(ctx, domain.RiskKey("crossover", "simulated"))
	if err != nil {
		t.Fatal(err)
	}
	out["risk"] = risk
	return out
}

func keysOf[T any](t *testing.T, a *domain.Adapter[T], k domain.Key) []string {
	t.Helper()
	s, err := a.Store(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := s.SortedKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func closedSignals(l map[string]any) int {
	n := 0
	for _, sym := range symbols {
		for _, e := range l[sym].(map[string]any)["history"].([]*domain.HistoryEntry) {
			if e.Has(runner.KindClose) {
				n++
			}
		}
	}
	return n
}

// TestCrashEquivalenceFile: the same day of candles, once straight through and once
// with the runner SIGKILLed at random moments (at least 50 times) and restarted, leave
// identical ledgers: no signal lost, none twice, every close at the same price.
func TestCrashEquivalenceFile(t *testing.T) {
	crashEquivalence(t, fileTarget(t), fileTarget(t), 10*time.Millisecond, 80*time.Millisecond)
}

// TestCrashEquivalenceConfigMap is the same on the ConfigMap backend of a real API
// server. A life of the child there needs longer to get going (a client, then reading the
// state back), so it is killed after 60 to 300 ms.
func TestCrashEquivalenceConfigMap(t *testing.T) {
	crashEquivalence(t, configMapTarget(t), configMapTarget(t), 60*time.Millisecond, 300*time.Millisecond)
}

func crashEquivalence(t *testing.T, reference, crashed target, minLife, maxLife time.Duration) {
	if err := child(reference).Run(); err != nil {
		t.Fatalf("the uninterrupted run failed: %v", err)
	}
	want := ledger(t, reference)
	if n := closedSignals(want); n < 10 {
		t.Fatalf("only %d signals closed in a day: the test would prove little", n)
	}

	// A life ends at a random moment between minLife and maxLife after its start, times
	// stretch. A machine kept busy by other work can make every such life too short to
	// restore: after streak lives in a row killed before they restored, the lives double;
	// after streak in a row killed once restored, they halve again (down to the bounds
	// given). The kill timings follow the child's progress, not the machine's speed.
	const streak, maxStretch = 25, 64
	rng := rand.New(rand.NewPCG(testenv.Seed(t), 11)) // the kill timings
	kills, unrestored, restored, stretch, start := 0, 0, 0, 1, time.Now()
	for {
		cmd := child(crashed)
		watch := &restoreWatch{done: make(chan struct{})}
		cmd.Stdout = watch
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run %d failed by itself: %v", kills+1, err)
			}
		case <-time.After(time.Duration(stretch) * (minLife + time.Duration(rng.Int64N(int64(maxLife-minLife))))):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			err := <-done
			var exit *exec.ExitError
			if errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL {
				kills++
				if watch.restored() {
					restored, unrestored = restored+1, 0
				} else {
					restored, unrestored = 0, unrestored+1
				}
				switch {
				case unrestored == streak && stretch == maxStretch:
					t.Fatalf("%d lives in a row of up to %s were killed before they restored", unrestored,
						time.Duration(stretch)*maxLife)
				case unrestored == streak:
					stretch, unrestored = 2*stretch, 0
				case restored == streak && stretch > 1:
					stretch, restored = stretch/2, 0
				}
				if kills > 5000 {
					t.Fatal("5,000 kills and the run is not done: it makes no progress between kills")
				}
				continue
			}
			if err != nil {
				t.Fatalf("run %d: %v", kills+1, err)
			}
		}
		break
	}
	got := ledger(t, crashed)
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Fatalf("the ledgers differ after %d kills:\nuninterrupted: %s\nkilled:        %s", kills, wantJSON, gotJSON)
	}
	t.Logf("%d signals closed; identical ledgers after %d SIGKILLs in %s (lives stretched x%d at the end)",
		closedSignals(got), kills, time.Since(start).Round(time.Millisecond), stretch)
	if kills < 50 {
		t.Fatalf("only %d kills before the run finished: want at least 50", kills)
	}
}
