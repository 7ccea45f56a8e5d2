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
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/childproc"
	"github.com/strategyops/strategy-operator/internal/handshake"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

// asMainEnv makes the test binary run Main() instead of the tests, so that the lease
// tests drive the runner as separate processes they can signal.
const asMainEnv = "RUNNER_TEST_AS_MAIN"

// stallEnv makes a runner started by a test stop itself (SIGSTOP) right after it acquires
// the Lease, before it takes its fencing token: the stall of a GC pause or a starved CPU.
const stallEnv = "RUNNER_TEST_STALL_AFTER_ACQUIRE"

// stallTokenEnv makes a runner started by a test stop itself (SIGSTOP) right after it
// takes its fencing token, before it touches its state.
const stallTokenEnv = "RUNNER_TEST_STALL_AFTER_TOKEN"

var env *testenv.Environment

func TestMain(m *testing.M) {
	if os.Getenv(asChildEnv) != "" && os.Getenv(StateSocketEnv) != "" { // runner exec started it
		childMain(os.Getenv(asChildEnv))
	}
	if os.Getenv(asMainEnv) == "1" {
		stall := func() { _ = syscall.Kill(os.Getpid(), syscall.SIGSTOP) }
		if os.Getenv(stallEnv) == "1" {
			afterAcquire = stall
		}
		if os.Getenv(stallTokenEnv) == "1" {
			afterToken = stall
		}
		Main()
		os.Exit(0)
	}
	testenv.RunMain(m, &env)
}

const leaseName = "lease-test-runner"

var leaseKey = domain.StrategyKey("BTCUSDT", "lease-test", "simulated")

// leaseNamespace makes a namespace with the store objects the operator would make for a
// ConfigMap strategy "lease-test" on BTCUSDT.
func leaseNamespace(ctx context.Context, t *testing.T) string {
	ns := env.Namespace(ctx, t)
	createStoreObjects(ctx, t, ns, v1.BackendConfigMap, leaseKey.StrategyName, []string{leaseKey.Symbol})
	return ns
}

// process is a runner started by a test, with its JSON log lines.
type process struct {
	cmd  *exec.Cmd
	out  testenv.Output
	done chan struct{}
}

func (p *process) log() string { return p.out.String() }

// waitLog waits until the runner logs a line with msg and returns that line's fields.
func (p *process) waitLog(t *testing.T, msg string, within time.Duration) map[string]any {
	t.Helper()
	return p.waitLogN(t, msg, 1, within)
}

// waitLogN waits until the runner logs its nth line with msg and returns that line's fields.
func (p *process) waitLogN(t *testing.T, msg string, n int, within time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if records := testenv.LogRecords(p.log(), msg); len(records) >= n {
			return records[n-1]
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.dumpStacks()
	t.Fatalf("the runner did not log %q %d times within %s; its log, with its goroutines' stacks at the end:\n%s",
		msg, n, within, p.log())
	return nil
}

// dumpStacks makes a runner that still runs print every goroutine's stack into its log and
// exit (the Go runtime's answer to SIGQUIT), so that a runner stuck somewhere says where.
func (p *process) dumpStacks() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

func (p *process) logged(msg string) bool {
	return len(testenv.LogRecords(p.log(), msg)) > 0
}

// exit waits for the runner to end and returns its exit code.
func (p *process) exit(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		p.dumpStacks()
		_ = p.cmd.Process.Kill()
		t.Fatalf("the runner did not exit within %s; its log, with its goroutines' stacks at the end:\n%s", within,
			p.log())
		return -1
	}
}

func startRunner(t *testing.T, kubeconfig, ns string, env ...string) *process {
	t.Helper()
	return startProcess(t, kubeconfig, []string{"--strategy-name=lease-test", "--exchange=simulated",
		"--symbols=BTCUSDT", "--backend=ConfigMap", "--namespace=" + ns, "--lease=" + leaseName,
		"--start=2026-11-01T00:00:00Z", "--speed=600",
		"--lease-duration=4s", "--renew-deadline=" + renewDeadline.String(), "--retry-period=500ms"}, env...)
}

// renewDeadline is the renew deadline of the runners startRunner starts.
const renewDeadline = 3 * time.Second

// startProcess starts this test binary as the runner with args, and env added to its
// environment; the test's cleanup kills it if it still runs.
func startProcess(t *testing.T, kubeconfig string, args []string, env ...string) *process {
	t.Helper()
	p, err := launch(kubeconfig, args, env...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.kill)
	return p
}

// launch starts this test binary as the runner, tied to this process's life.
func launch(kubeconfig string, args []string, env ...string) (*process, error) {
	p := &process{done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], args...)
	p.cmd.Env = append(append(os.Environ(), asMainEnv+"=1", "KUBECONFIG="+kubeconfig), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.SysProcAttr = childproc.SysProcAttr()
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = p.cmd.Wait() // the exit code is read from ProcessState
		close(p.done)
	}()
	return p, nil
}

// kill kills the runner if it still runs and waits for it.
func (p *process) kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func token(fields map[string]any) int64 { return int64(fields["fencingToken"].(float64)) }

// TestOneWriterPerLease: of two runners of one strategy only the Lease holder trades; on
// SIGTERM it stops cleanly and releases the Lease, and the other takes over at once with a
// larger fencing token; a runner whose Lease was taken is refused its next write and
// exits non-zero.
func TestOneWriterPerLease(t *testing.T) {
	ctx := context.Background()
	ns := leaseNamespace(ctx, t)
	kubeconfig := env.Kubeconfig(t)

	a := startRunner(t, kubeconfig, ns)
	acquired := a.waitLog(t, "Acquired the lease", 20*time.Second)
	tokenA := token(acquired)
	// Fenced, A records on the Lease what it trades, for the operator (package handshake).
	want := handshake.Record{Holder: acquired["identity"].(string), Symbols: []string{"BTCUSDT"}}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var lease coordinationv1.Lease
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: leaseName}, &lease); err != nil {
			t.Fatal(err)
		}
		var got handshake.Record
		_ = json.Unmarshal([]byte(lease.Annotations[handshake.Annotation]), &got)
		if reflect.DeepEqual(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Lease records %+v, want %+v", got, want)
		}
	}
	b := startRunner(t, kubeconfig, ns)
	time.Sleep(6 * time.Second) // longer than the lease duration: A keeps renewing
	if b.logged("Acquired the lease") {
		t.Fatalf("a second runner acquired a held Lease; its log:\n%s", b.log())
	}

	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := a.exit(t, 10*time.Second); code != 0 {
		t.Fatalf("runner A exited %d on SIGTERM, want 0; its log:\n%s", code, a.log())
	}
	a.waitLog(t, "Runner stopped cleanly", time.Second)
	var lease coordinationv1.Lease
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: leaseName}, &lease); err != nil {
		t.Fatal(err)
	}
	// B may have taken it already; what must not be there is A.
	if h := ptr.Deref(lease.Spec.HolderIdentity, ""); h == a.waitLog(t, "Acquired the lease", 0)["identity"] {
		t.Fatalf("runner A stopped but still holds the Lease")
	}
	// Released, the Lease goes to B within a retry period, not after the lease duration.
	tokenB := token(b.waitLog(t, "Acquired the lease", 2*time.Second))
	if tokenB <= tokenA {
		t.Fatalf("runner B's fencing token %d is not above A's %d", tokenB, tokenA)
	}

	// Another writer takes the Lease and writes with its larger token: B's next write is
	// refused, and B stops at once with a non-zero exit.
	thief := domain.New(domain.ConfigMapBackend(env.Client, domain.KubeOptions{Namespace: ns,
		Fencing: kubestore.Fencing{Writer: "thief", Token: env.StealLease(ctx, t, ns, leaseName)}}))
	defer func() { _ = thief.Close() }()
	if err := thief.WriteSnapshot(ctx, leaseKey, &v1.StrategySnapshot{}); err != nil {
		t.Fatal(err)
	}
	if code := b.exit(t, 2*time.Second); code == 0 {
		t.Fatalf("runner B exited 0 after it was fenced; its log:\n%s", b.log())
	}
	if stopped := b.waitLog(t, "Runner stopped", 0); !strings.Contains(fmt.Sprint(stopped["error"]), "fenc") {
		t.Fatalf("runner B stopped for another reason than fencing: %v", stopped["error"])
	}
}

// stopped reports whether the process is stopped by a signal (state T in /proc).
func (p *process) stopped() bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	rest := bytes.TrimSpace(stat[bytes.LastIndexByte(stat, ')')+1:])
	return len(rest) > 0 && rest[0] == 'T'
}

func holder(ctx context.Context, t *testing.T, ns string) string {
	t.Helper()
	var lease coordinationv1.Lease
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: leaseName}, &lease); err != nil {
		t.Fatal(err)
	}
	return ptr.Deref(lease.Spec.HolderIdentity, "")
}

// recordedWriter is the writer and token recorded on the strategy snapshot's ConfigMap.
func recordedWriter(ctx context.Context, t *testing.T, ns string) kubestore.Fencing {
	t.Helper()
	b := domain.ConfigMapBackend(env.Client, domain.KubeOptions{Namespace: ns})
	drv, err := b(ctx, domain.Strategy, leaseKey)
	if err != nil {
		t.Fatal(err)
	}
	f, err := drv.(*kubestore.Driver).RecordedFencing(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// waitRecorded waits until the store records token as its writer's: the runner of r,
// holding the Lease with token, writes.
func waitRecorded(ctx context.Context, t *testing.T, r *process, ns string, token int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for f := recordedWriter(ctx, t, ns); f.Token != token; f = recordedWriter(ctx, t, ns) {
		if time.Now().After(deadline) {
			t.Fatalf("the store records token %d, want %d; the runner's log:\n%s", f.Token, token, r.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStalledHolderWritesNothing: a runner that stalls (the whole process) between
// acquiring the Lease and taking its fencing token, long enough for another runner to
// take the Lease and write, writes nothing when it wakes and exits non-zero; the new
// holder trades on untouched.
func TestStalledHolderWritesNothing(t *testing.T) {
	ctx := context.Background()
	ns := leaseNamespace(ctx, t)
	kubeconfig := env.Kubeconfig(t)

	a := startRunner(t, kubeconfig, ns, stallEnv+"=1")
	deadline := time.Now().Add(20 * time.Second)
	for !a.stopped() {
		if time.Now().After(deadline) {
			t.Fatalf("runner A did not stall after acquiring; its log:\n%s", a.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	identityA := holder(ctx, t, ns)

	b := startRunner(t, kubeconfig, ns)
	identityB := b.waitLog(t, "Acquired the lease", 20*time.Second)["identity"].(string)
	if identityB == identityA {
		t.Fatal("both runners have one identity")
	}
	for recordedWriter(ctx, t, ns).Writer != identityB {
		if time.Now().After(deadline.Add(20 * time.Second)) {
			t.Fatalf("runner B never wrote; its log:\n%s", b.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	tokenB := recordedWriter(ctx, t, ns).Token

	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if code := a.exit(t, 10*time.Second); code == 0 {
		t.Fatalf("the stalled runner exited 0 after waking without the Lease; its log:\n%s", a.log())
	}
	if a.logged("Acquired the lease") || a.logged("Signal opened") {
		t.Fatalf("the stalled runner went on to trade after waking; its log:\n%s", a.log())
	}
	// B is still the holder and the only writer, and goes on writing.
	time.Sleep(2 * time.Second)
	if h := holder(ctx, t, ns); h != identityB {
		t.Fatalf("the Lease is held by %q, want runner B %q", h, identityB)
	}
	if f := recordedWriter(ctx, t, ns); f.Writer != identityB || f.Token != tokenB {
		t.Fatalf("the store records writer %q token %d, want runner B %q token %d", f.Writer, f.Token, identityB, tokenB)
	}
	if b.logged("Runner stopped") {
		t.Fatalf("runner B stopped; its log:\n%s", b.log())
	}
}

// TestFencingTokenBoundToHolder: the token is taken from a read of the Lease in which the
// runner is the holder, never below the stores' recorded token; a runner that is no
// longer the holder gets none, even when its read comes late (a slow API server).
func TestFencingTokenBoundToHolder(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(ctx, t)
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	leases := cs.CoordinationV1().Leases(ns)
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: leaseName},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: new("runner-b"), LeaseTransitions: new(int32(4))}}
	if _, err := leases.Create(ctx, lease, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	recorded := func(n int64) func(context.Context) (int64, error) {
		return func(context.Context) (int64, error) { return n, nil }
	}

	if _, _, err := fencingToken(ctx, leases, leaseName, "runner-a", recorded(0)); !errors.Is(err, errNotHolder) {
		t.Fatalf("a runner that no longer holds the Lease got %v, want errNotHolder", err)
	}
	if tok, _, err := fencingToken(ctx, leases, leaseName, "runner-b", recorded(2)); err != nil || tok != 5 {
		t.Fatalf("the holder got token %d (%v), want the transitions plus one, 5", tok, err)
	}
	// The stores saw token 9 (the Lease was made again since): the holder's token is 10,
	// and the Lease now counts from there, so the next holder's is larger still.
	if tok, _, err := fencingToken(ctx, leases, leaseName, "runner-b", recorded(9)); err != nil || tok != 10 {
		t.Fatalf("the holder got token %d (%v), want one above the recorded 9", tok, err)
	}
	got, err := leases.Get(ctx, leaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := ptr.Deref(got.Spec.LeaseTransitions, 0); n != 9 || ptr.Deref(got.Spec.HolderIdentity, "") != "runner-b" {
		t.Fatalf("the Lease has %d transitions held by %q, want 9 held by runner-b",
			n, ptr.Deref(got.Spec.HolderIdentity, ""))
	}
}

// TestTokenAboveRecordedAfterLeaseRecreated: a Lease deleted and made again starts
// counting from zero, but a new runner's token still lands above the newest token the
// stores recorded, so it is not fenced; the runner after it is above it again.
func TestTokenAboveRecordedAfterLeaseRecreated(t *testing.T) {
	ctx := context.Background()
	ns := leaseNamespace(ctx, t)
	kubeconfig := env.Kubeconfig(t)

	// An earlier holder wrote with token 7; then the Lease was deleted (kubectl delete lease).
	const recorded = 7
	old := domain.New(domain.ConfigMapBackend(env.Client, domain.KubeOptions{Namespace: ns,
		Fencing: kubestore.Fencing{Writer: "earlier-runner", Token: recorded}}))
	if err := old.WriteSnapshot(ctx, leaseKey, &v1.StrategySnapshot{}); err != nil {
		t.Fatal(err)
	}
	_ = old.Close()
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: leaseName}}
	if err := env.Client.Delete(ctx, lease); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}

	a := startRunner(t, kubeconfig, ns)
	tokenA := token(a.waitLog(t, "Acquired the lease", 20*time.Second))
	if tokenA <= recorded {
		t.Fatalf("the new runner's token %d is not above the recorded %d", tokenA, recorded)
	}
	// Its writes are accepted: the store records its token.
	waitRecorded(ctx, t, a, ns, tokenA)
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := a.exit(t, 10*time.Second); code != 0 {
		t.Fatalf("runner A exited %d on SIGTERM; its log:\n%s", code, a.log())
	}
	b := startRunner(t, kubeconfig, ns)
	if tokenB := token(b.waitLog(t, "Acquired the lease", 20*time.Second)); tokenB <= tokenA {
		t.Fatalf("the next runner's token %d is not above %d", tokenB, tokenA)
	}
}

// TestLeaseLostStopsTrading: a runner whose Lease another holder took stops within the
// renew deadline, even when that holder writes nothing, names the holder, and exits
// non-zero (an outage is another matter: TestOutageKeepsItsPlace).
func TestLeaseLostStopsTrading(t *testing.T) {
	ctx := context.Background()
	ns := leaseNamespace(ctx, t)
	r := startRunner(t, env.Kubeconfig(t), ns)
	r.waitLog(t, "Acquired the lease", 20*time.Second)
	env.StealLease(ctx, t, ns, leaseName)
	if code := r.exit(t, 6*time.Second); code == 0 {
		t.Fatalf("the runner exited 0 after losing its Lease; its log:\n%s", r.log())
	}
	if lost := r.waitLog(t, "Lost the lease: stopped trading", 0); lost["holder"] != "thief" {
		t.Fatalf("the runner says it lost the Lease to %v, want thief", lost["holder"])
	}
	if stopped := r.waitLog(t, "Runner stopped", 0); !strings.Contains(stopped["error"].(string),
		`lost the lease to another holder "thief"`) {
		t.Fatalf("the runner stopped with %q", stopped["error"])
	}
}

// startRedis starts a Redis server for t (testenv.StartRedis, with extra settings).
func startRedis(t *testing.T, extra ...string) *testenv.Redis {
	t.Helper()
	rs, err := testenv.StartRedis(t.Context(), extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Stop)
	return rs
}

// startPostgres starts a PostgreSQL server for t.
func startPostgres(t *testing.T) *testenv.Postgres {
	t.Helper()
	pg, err := testenv.StartPostgres(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	return pg
}

// startMongo starts a MongoDB-protocol server for t.
func startMongo(t *testing.T) *testenv.Mongo {
	t.Helper()
	m, err := testenv.StartMongo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}
