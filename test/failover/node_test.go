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

package failover

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strategyops/strategy-operator/internal/childproc"
	"github.com/strategyops/strategy-operator/internal/localcluster"
	"github.com/strategyops/strategy-operator/internal/podprocess"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

// cluster is one of the drill's clusters: its control plane and the manager beside it.
type cluster struct {
	name    string
	lc      *localcluster.Cluster
	c       client.Client        // an administrator's, giving up on a request after a few seconds
	cs      kubernetes.Interface // the same
	bin     string               // the manager binary
	log     *testenv.Output
	manager *exec.Cmd
}

// startCluster starts a control plane with the CRDs and a manager named name
// (--cluster-name), stopped when t ends.
func startCluster(t *testing.T, name, managerBin string) *cluster {
	t.Helper()
	lc, err := localcluster.Start(testenv.BinaryDir(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lc.Stop() })
	if err := lc.InstallCRDs(t.Context(), filepath.Join(testenv.RepoRoot(), "config", "crd")); err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(lc.Config)
	cfg.QPS, cfg.Burst, cfg.Timeout = -1, 0, 5*time.Second
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cl := &cluster{name: name, lc: lc, c: c, cs: cs, bin: managerBin, log: &testenv.Output{}}
	cl.startManager(t)
	t.Cleanup(cl.killManager)
	return cl
}

func (cl *cluster) startManager(t *testing.T) {
	t.Helper()
	m, err := cl.lc.StartManager(cl.bin, cl.log, "--cluster-name="+cl.name, "--zap-log-level=error")
	if err != nil {
		t.Fatal(err)
	}
	cl.manager = m
}

func (cl *cluster) killManager() {
	_ = cl.manager.Process.Kill()
	_ = cl.manager.Wait()
}

// lose SIGKILLs the cluster's manager and its whole control plane, as the loss of the
// machines they run on would; the nodes' processes run on.
func (cl *cluster) lose(t *testing.T) {
	t.Helper()
	cl.killManager()
	if err := cl.lc.Kill(); err != nil {
		t.Fatal(err)
	}
}

// recover starts the control plane and the manager of a lost cluster again, on their data.
func (cl *cluster) recover(t *testing.T) {
	t.Helper()
	if err := cl.lc.Restart(); err != nil {
		t.Fatal(err)
	}
	cl.startManager(t)
}

// node runs the runner pod of one Strategy of a cluster as a process of the runner binary,
// as a kubelet would: it starts the process once the operator has made the pod, starts it
// again when it ends (a second after the last start at the soonest; not once it ended the
// feed by itself), and kills it once the pod is gone or replaced. While the API
// server does not answer, the process runs on: a node cut off from its control plane keeps
// its containers, and starts them again.
type node struct {
	cl     *cluster
	key    client.ObjectKey // the pod
	runner string
	dir    string

	mu     sync.Mutex
	lives  []*life
	failed []string // starts that failed, and why
	done   bool     // a life exited 0: the runner reached --until
	// The command line and environment of the pod's last start, by pod UID: a node cut off
	// from its API server starts the container again as it last resolved it.
	resolved      types.UID
	args, environ []string
}

// life is one run of the pod's process.
type life struct {
	cmd     *exec.Cmd
	out     *testenv.Output
	started time.Time
	ended   time.Time // set before exited is closed
	exited  chan struct{}
	stopped bool // stopped by restart, not ended by itself
}

func (l *life) running() bool {
	select {
	case <-l.exited:
		return false
	default:
		return true
	}
}

// runPod plays the node for the pod key of cl until t ends.
func runPod(t *testing.T, cl *cluster, key client.ObjectKey, runner string) *node {
	n := &node{cl: cl, key: key, runner: runner, dir: t.TempDir()}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { n.loop(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if l := n.current(); l != nil && l.running() {
			_ = l.cmd.Process.Kill()
			<-l.exited
		}
	})
	return n
}

func (n *node) loop(ctx context.Context) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var pod *corev1.Pod // as last read
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var read corev1.Pod
		err := n.cl.c.Get(ctx, n.key, &read)
		switch {
		case err == nil && read.DeletionTimestamp == nil:
			pod = &read
		case err == nil || apierrors.IsNotFound(err):
			pod = nil
		} // else the API server does not answer: the node goes on with the pod it knows
		l := n.current()
		switch {
		case pod == nil || l != nil && l.running() && pod.UID != n.resolved: // gone, or replaced
			if l != nil && l.running() {
				_ = l.cmd.Process.Kill()
				<-l.exited
			}
		case n.finished() || l != nil && (l.running() || time.Since(l.started) < time.Second):
			// restartPolicy Always: a life that ended is started again, except the last one
			// of a feed that ended.
		default:
			if err := n.start(ctx, pod); err != nil {
				n.mu.Lock()
				n.failed = append(n.failed, fmt.Sprintf("%s: starting the pod's process: %v",
					time.Now().Format(time.RFC3339Nano), err))
				n.mu.Unlock()
			}
		}
	}
}

// start starts a life of pod's runner: its arguments and environment as a kubelet resolves
// them, with its bind addresses, data folder and termination log moved onto this machine.
func (n *node) start(ctx context.Context, pod *corev1.Pod) error {
	if n.resolved != pod.UID {
		args, env, err := n.resolve(ctx, pod)
		if err != nil {
			return err
		}
		n.resolved, n.args, n.environ = pod.UID, args, env
	}
	l := &life{out: &testenv.Output{}, started: time.Now(), exited: make(chan struct{})}
	l.cmd = exec.Command(n.runner, n.args...)
	l.cmd.Env = append(os.Environ(), n.environ...)
	l.cmd.Stdout, l.cmd.Stderr, l.cmd.SysProcAttr = l.out, l.out, childproc.SysProcAttr()
	if err := l.cmd.Start(); err != nil {
		return err
	}
	go func() {
		_ = l.cmd.Wait()
		l.ended = time.Now()
		close(l.exited)
	}()
	n.mu.Lock()
	n.lives = append(n.lives, l)
	n.mu.Unlock()
	return nil
}

// resolve is the command line and environment of pod's runner, as a kubelet resolves them
// (package podprocess), with the bind addresses, data folder and termination log moved onto
// this machine.
func (n *node) resolve(ctx context.Context, pod *corev1.Pod) (args, env []string, err error) {
	c := pod.Spec.Containers[0]
	env, err = podprocess.ContainerEnv(ctx, n.cl.cs, pod, c, "127.0.0.1")
	if err != nil {
		return nil, nil, err
	}
	vars := map[string]string{}
	for _, kv := range env {
		name, v, _ := strings.Cut(kv, "=")
		vars[name] = v
	}
	for _, a := range c.Args {
		a = podprocess.Expand(a, vars)
		flag, _, _ := strings.Cut(a, "=")
		switch flag {
		case "--metrics-bind-address", "--health-probe-bind-address":
			a = flag + "=0"
		case "--data-dir":
			a = flag + "=" + n.dir
		case "--termination-message-path":
			a = flag + "=" + filepath.Join(n.dir, "termination-log")
		}
		args = append(args, a)
	}
	return args, append(env, "KUBECONFIG="+n.cl.lc.Kubeconfig), nil
}

func (n *node) current() *life {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.lives) == 0 {
		return nil
	}
	l := n.lives[len(n.lives)-1]
	if !l.running() && !l.stopped && l.cmd.ProcessState.ExitCode() == 0 {
		n.done = true
	}
	return l
}

// restart stops the running process as a rolling restart does (SIGTERM: the runner stops
// cleanly and gives up its Lease) and waits until the node's next one holds the Lease.
func (n *node) restart(t *testing.T) {
	l := n.current()
	n.mu.Lock()
	l.stopped = true
	lives := len(n.lives)
	n.mu.Unlock()
	_ = l.cmd.Process.Signal(syscall.SIGTERM)
	for deadline := time.Now().Add(wait); ; time.Sleep(100 * time.Millisecond) {
		n.mu.Lock()
		next, started := n.lives[len(n.lives)-1], len(n.lives) > lives
		n.mu.Unlock()
		if started && len(testenv.LogRecords(next.out.String(), "Acquired the lease")) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("the runner of cluster %s, stopped, did not hold the Lease again within %s; its lives:\n%s",
				n.cl.name, wait, n.logs())
			return
		}
	}
}

func (n *node) finished() bool {
	n.current()
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.done
}

// first is the first life, once there is one.
func (n *node) first() *life {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.lives) == 0 {
		return nil
	}
	return n.lives[0]
}

func (n *node) logs() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var b strings.Builder
	for i, l := range n.lives {
		fmt.Fprintf(&b, "--- life %d:\n%s", i+1, testenv.Tail(l.out.String()))
	}
	for _, f := range n.failed {
		fmt.Fprintln(&b, f)
	}
	return b.String()
}

// logged is when the first of the node's lives logged msg, and the record's fields.
func (n *node) logged(msg string) (time.Time, map[string]any, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, l := range n.lives {
		if recs := testenv.LogRecords(l.out.String(), msg); len(recs) > 0 {
			at, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(recs[0]["time"]))
			return at, recs[0], true
		}
	}
	return time.Time{}, nil, false
}
