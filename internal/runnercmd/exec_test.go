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

package runnercmd

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/pkg/stateapi"
)

// asChildEnv makes the test binary the user's process of runner exec (a process that has
// the state socket in its environment: the runner passes its environment on) instead of
// running the tests: "exit-7" writes one snapshot and exits 7; "loop" writes a snapshot every 20 ms
// until SIGTERM, then says so and exits 0; "stubborn" loops too, ignoring SIGTERM.
const asChildEnv = "RUNNER_TEST_AS_CHILD"

// childMain is the user's process: a client of the state API on its socket.
func childMain(mode string) {
	socket := os.Getenv(StateSocketEnv)
	c := stateapi.UnixClient(socket)
	q := url.Values{"symbol": {strings.Split(os.Getenv(SymbolsEnv), ",")[0]},
		"strategyName": {os.Getenv(StrategyNameEnv)}, "exchangeName": {os.Getenv(ExchangeNameEnv)}}
	write := func(n int) int {
		req, _ := http.NewRequest(http.MethodPut, "http://state/v1/strategy/strategy?"+q.Encode(),
			strings.NewReader(fmt.Sprintf(`{"isPaused":false,"retryOpenCount":%d}`, n)))
		resp, err := c.Do(req)
		if err != nil {
			fmt.Println("child: write failed:", err)
			return 0
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			fmt.Printf("child: write answered %d %s\n", resp.StatusCode, body)
		}
		return resp.StatusCode
	}
	if os.Getenv(domain.StoreURLEnv) != "" {
		fmt.Println("child: sees the runner's database URL")
	}
	terms := make(chan os.Signal, 1)
	signal.Notify(terms, syscall.SIGTERM)
	if write(1) == http.StatusNoContent {
		fmt.Println("child: wrote 1")
	}
	if mode == "exit-7" {
		os.Exit(7)
	}
	for n := 2; ; n++ {
		select {
		case <-terms:
			if mode == "loop" {
				fmt.Println("child: got SIGTERM")
				os.Exit(0)
			}
		case <-time.After(20 * time.Millisecond):
			write(n)
		}
	}
}

// startExec starts runner exec on the ConfigMap backend of strategy lease-test in ns, with
// this test binary as the user's process in mode.
func startExec(t *testing.T, kubeconfig, ns, mode string) *process {
	t.Helper()
	return startProcess(t, kubeconfig, []string{"exec", "--strategy-name=lease-test", "--exchange=simulated",
		"--symbols=BTCUSDT", "--backend=ConfigMap", "--namespace=" + ns, "--lease=" + leaseName,
		"--lease-duration=6s", "--renew-deadline=3s", "--retry-period=500ms", "--grace-period=800ms",
		"--", os.Args[0]}, asChildEnv+"="+mode, domain.StoreURLEnv+"=redis://secret@nowhere/0")
}

// snapshotCount reads the retry count the child last wrote, through the ConfigMap backend.
func snapshotCount(ctx context.Context, t *testing.T, ns string) int {
	t.Helper()
	p := domain.New(domain.ConfigMapBackend(env.Client, domain.KubeOptions{Namespace: ns}))
	defer func() { _ = p.Close() }()
	snap, err := p.ReadSnapshot(ctx, leaseKey)
	if err != nil {
		t.Fatal(err)
	}
	if snap == nil {
		return 0
	}
	return int(snap.RetryOpenCount)
}

// TestExecExitStatus: the user's process writes its state through the endpoint, into the
// strategy's ConfigMap, without the runner's database URL in its environment; runner exec
// exits with its status.
func TestExecExitStatus(t *testing.T) {
	ctx := context.Background()
	ns := leaseNamespace(ctx, t)
	p := startExec(t, env.Kubeconfig(t), ns, "exit-7")
	if code := p.exit(t, 30*time.Second); code != 7 {
		t.Fatalf("runner exec exited %d, want the process's 7; its log:\n%s", code, p.log())
	}
	if !strings.Contains(p.log(), "child: wrote 1") || strings.Contains(p.log(), "database URL") {
		t.Fatalf("the process could not write, or saw the runner's database URL; the log:\n%s", p.log())
	}
	if n := snapshotCount(ctx, t, ns); n != 1 {
		t.Fatalf("the ConfigMap holds retry count %d, want the process's 1", n)
	}
}

// TestExecLeaseLost: when another holder takes the Lease, runner exec stops serving writes
// and stops the process (SIGTERM) before a new holder could start one, and exits non-zero;
// nothing the process sends afterwards lands.
func TestExecLeaseLost(t *testing.T) {
	ctx := context.Background()
	ns := leaseNamespace(ctx, t)
	p := startExec(t, env.Kubeconfig(t), ns, "loop")
	p.waitLog(t, "Started the strategy's process", 20*time.Second)
	for deadline := time.Now().Add(10 * time.Second); snapshotCount(ctx, t, ns) < 5; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the process did not write; the log:\n%s", p.log())
		}
	}
	env.StealLease(ctx, t, ns, leaseName)
	start := time.Now()
	if code := p.exit(t, 10*time.Second); code == 0 {
		t.Fatalf("runner exec exited 0 after losing the Lease; its log:\n%s", p.log())
	}
	// The holder notices within a retry period and a renew deadline (3.5s), and gives its
	// process the grace period (0.8s); a new holder could take the Lease only a lease
	// duration (6s) after the last renewal.
	if waited := time.Since(start); waited > 6*time.Second {
		t.Errorf("runner exec took %s to stop after losing the Lease", waited)
	}
	if !strings.Contains(p.log(), "child: got SIGTERM") {
		t.Fatalf("the process was not sent SIGTERM; the log:\n%s", p.log())
	}
	last := snapshotCount(ctx, t, ns)
	time.Sleep(300 * time.Millisecond)
	if n := snapshotCount(ctx, t, ns); n != last {
		t.Fatalf("the state changed after runner exec stopped: %d, then %d", last, n)
	}
}

// TestExecForwardsSIGTERM: SIGTERM to runner exec reaches the process; one that ignores it
// is killed after the grace period, and runner exec exits with its status (128 + 9).
func TestExecForwardsSIGTERM(t *testing.T) {
	ctx := context.Background()
	ns := leaseNamespace(ctx, t)
	p := startExec(t, env.Kubeconfig(t), ns, "stubborn")
	p.waitLog(t, "Started the strategy's process", 20*time.Second)
	for deadline := time.Now().Add(10 * time.Second); snapshotCount(ctx, t, ns) < 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the process did not write; the log:\n%s", p.log())
		}
	}
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.exit(t, 10*time.Second); code != 128+int(syscall.SIGKILL) {
		t.Fatalf("runner exec exited %d, want %d (its process killed); its log:\n%s", code, 128+int(syscall.SIGKILL),
			p.log())
	}
	if waited := time.Since(start); waited < 800*time.Millisecond {
		t.Errorf("the process was killed after %s, before its grace period", waited)
	}
	p.waitLog(t, "The strategy's process did not stop within the grace period; killing it", 0)
}

// TestExecHelpListsItsFlags: runner exec --help prints the flags runner exec takes and
// exits 0; runner exec without a command says how to give one and exits 2.
func TestExecHelpListsItsFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		says []string
	}{
		{[]string{"exec", "--help"}, 0, []string{"runner exec [flags] -- <command…>", "-strategy-name", "-data-dir"}},
		{[]string{"exec", "-h", "--backend=File"}, 0, []string{"runner exec [flags] -- <command…>", "-grace-period"}},
		{[]string{"exec", "--backend=File"}, 2, []string{"usage: runner exec [flags] -- <command"}},
	} {
		p := startProcess(t, env.Kubeconfig(t), c.args)
		if code := p.exit(t, 30*time.Second); code != c.code {
			t.Errorf("runner %s exited %d, want %d; it printed:\n%s", strings.Join(c.args, " "), code, c.code, p.log())
		}
		for _, want := range c.says {
			if !strings.Contains(p.log(), want) {
				t.Errorf("runner %s does not say %q; it printed:\n%s", strings.Join(c.args, " "), want, p.log())
			}
		}
	}
}

// TestExecSecondOnAFolderIsRefused: a second runner exec on the folder of a File strategy
// that another runs is refused before its process starts, with the strategy's folder and
// the holder of its lock named.
func TestExecSecondOnAFolderIsRefused(t *testing.T) {
	dir := t.TempDir()
	args := []string{"exec", "--strategy-name=folder-test", "--exchange=simulated", "--symbols=BTCUSDT",
		"--backend=File", "--data-dir=" + dir, "--grace-period=800ms", "--", os.Args[0]}
	kubeconfig := env.Kubeconfig(t)
	first := startProcess(t, kubeconfig, args, asChildEnv+"=loop")
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(first.log(), "child: wrote 1"); {
		time.Sleep(50 * time.Millisecond)
		if time.Now().After(deadline) {
			t.Fatalf("the first runner's process never wrote; its log:\n%s", first.log())
		}
	}
	second := startProcess(t, kubeconfig, args, asChildEnv+"=loop")
	if code := second.exit(t, 20*time.Second); code != 1 {
		t.Fatalf("the second runner exec exited %d, want 1; its log:\n%s", code, second.log())
	}
	host, _ := os.Hostname()
	for _, want := range []string{"the strategy's folder " + dir + " is in use by another runner",
		fmt.Sprintf("held by process %d on host %s", first.cmd.Process.Pid, host)} {
		if !strings.Contains(second.log(), want) {
			t.Errorf("the second runner does not say %q; its log:\n%s", want, second.log())
		}
	}
	if strings.Contains(second.log(), "child: wrote") {
		t.Errorf("the second runner's process ran; its log:\n%s", second.log())
	}
}
