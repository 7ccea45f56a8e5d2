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

// Command local runs strategy-operator on this machine for a person to try: a real etcd,
// kube-apiserver and kube-controller-manager, a registry holding the images make images
// built, a kubelet that pulls them and runs pods as local processes, the operator installed
// from its manifest (the manager a pod of its image), and the samples. It prints how
// to reach the cluster with kubectl, shows the strategy states once a signal is live, and
// stops everything on Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/strategyops/strategy-operator/internal/localcluster"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "image" {
		if err := imageCommand(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(map[bool]int{true: 2, false: 1}[errors.Is(err, errUsage)])
		}
		return
	}
	assets := flag.String("assets", "", "folder with etcd, kube-apiserver and kubectl (make control-plane builds it)")
	install := flag.String("install", "bin/run-local.yaml",
		"manifest that installs the operator (make run-local renders config/default into it)")
	images := flag.String("images", "bin/images", "OCI image layout with the images (make images writes it)")
	samples := flag.String("samples", "config/samples", "kustomization applied once the manager runs")
	namespace := flag.String("namespace", "default", "namespace the samples go to")
	flag.Parse()
	// envtest and the clients log through controller-runtime: its errors reach the
	// terminal, its chatter does not (nor its warning that no logger was set).
	ctrllog.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	if *assets == "" {
		fmt.Fprintln(os.Stderr, "error: --assets is required (the folder 'make control-plane' prints)")
		os.Exit(2)
	}
	if err := run(*assets, *install, *images, *samples, *namespace); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(assets, install, imageLayout, samples, namespace string) error {
	interrupted, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	// ctx ends on Ctrl-C, or when a part of the control plane dies and cannot be started
	// again (the cause).
	ctx, fail := context.WithCancelCause(interrupted)
	defer fail(nil)
	// stopped returns the failure that ended ctx, or says that Ctrl-C did, when.
	stopped := func(when string) error {
		if cause := context.Cause(ctx); errors.Is(cause, errReaderGone) {
			fmt.Fprintf(os.Stderr, "%s; stopping\n", cause)
			return nil
		}
		if interrupted.Err() == nil {
			return context.Cause(ctx)
		}
		if when != "" {
			step("interrupted " + when + "; stopping")
		}
		return nil
	}
	// Output piped into a reader that died first (make run-local | head, or | tee then
	// Ctrl-C) must not kill this process in the middle of its clean-up: with SIGPIPE
	// caught, writes to the broken pipe just fail, and the first failure stops the run as
	// Ctrl-C does.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	stdout = output{gone: fail}

	dir, err := testenv.OwnedDir("", runDirPrefix) // and sweeps what killed runs left
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()

	step("starting etcd, kube-apiserver and kube-controller-manager")
	cluster, err := localcluster.Start(assets, dir)
	if err != nil {
		return err
	}
	// What died of the control plane is told at once and started again.
	watchCtx, stopWatching := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		err := cluster.Watch(watchCtx, func(msg string) { fmt.Fprintln(os.Stderr, "warning:", msg) })
		if err != nil {
			fail(fmt.Errorf("the control plane: %w", err))
		}
	}()
	defer func() {
		stopWatching()
		<-watched
		step("stopping kube-controller-manager, kube-apiserver and etcd")
		if err := cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "warning: stopping the control plane:", err)
		}
	}()
	// Commands below must finish even when Ctrl-C arrives while they run.
	setup, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	if ctx.Err() != nil {
		return stopped("during setup")
	}
	step("serving the images of " + imageLayout + " from a local registry")
	reg, err := localcluster.StartRegistry(setup, imageLayout, dir)
	if err != nil {
		return err
	}
	defer func() { _ = reg.Stop() }()
	_, _ = fmt.Fprintf(stdout, "registry %s holds %s\n", reg.Host, strings.Join(reg.Images, ", "))

	podLogs := filepath.Join(dir, "kubelet", "logs")
	if ctx.Err() != nil {
		return stopped("during setup")
	}
	step("starting the kubelet that runs pods as local processes (pod logs: " + podLogs + ")")
	kubeletLog, err := os.Create(filepath.Join(dir, "kubelet.log"))
	if err != nil {
		return err
	}
	defer func() { _ = kubeletLog.Close() }()
	// client-go's own lines (client-side throttling, retries) go to the kubelet's log, not
	// the terminal.
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	for name, v := range map[string]string{"logtostderr": "false", "alsologtostderr": "false",
		"stderrthreshold": "FATAL"} {
		if err := klogFlags.Set(name, v); err != nil {
			return err
		}
	}
	klog.SetOutput(kubeletLog)
	kubeletCtx, stopKubelet := context.WithCancel(context.Background())
	_, kubeletDone, err := cluster.StartKubelet(kubeletCtx,
		reg.Host, slog.New(slog.NewTextHandler(kubeletLog, nil)))
	if err != nil {
		stopKubelet()
		return err
	}
	defer func() {
		step("stopping the strategies' processes")
		stopKubelet()
		if err := <-kubeletDone; err != nil {
			fmt.Fprintln(os.Stderr, "warning: the kubelet:", err)
		}
	}()

	if ctx.Err() != nil {
		return stopped("during setup")
	}
	step("installing the operator from " + install + ": the manager runs from its image, as its own ServiceAccount")
	if _, err := cluster.Kubectl(setup, "apply", "--server-side", "-f", install); err != nil {
		return err
	}
	if _, err := cluster.Kubectl(setup, "wait", "--for=condition=Established", "--timeout=60s",
		"crd", "-l", "app.kubernetes.io/part-of=strategy-operator"); err != nil {
		return err
	}
	if _, err := cluster.Kubectl(setup, "rollout", "status", "-n", "strategy-operator-system",
		"deployment/strategy-operator-controller-manager", "--timeout=120s"); err != nil {
		return err
	}

	if ctx.Err() != nil {
		return stopped("during setup")
	}
	stopServers, err := startDatabases(setup, cluster, namespace, dir)
	if err != nil {
		return err
	}
	defer stopServers()

	if ctx.Err() != nil {
		return stopped("during setup")
	}
	step("applying " + samples)
	started := time.Now().Truncate(time.Minute)
	out, err := cluster.ApplyKustomization(setup, namespace, samples)
	if err != nil {
		return err
	}
	_, _ = fmt.Fprint(stdout, out)

	if ctx.Err() != nil {
		return stopped("during setup")
	}
	step("waiting for a live signal")
	if err := waitForSignal(ctx, cluster, namespace, started); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return stopped("while waiting for a live signal")
	}

	// The kubectl plugin (kubectl-strategy) is built beside run-local.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	_, _ = fmt.Fprintf(stdout, `
strategy-operator is running on a local control plane. In another terminal:

  export KUBECONFIG=%s PATH=%s:$PATH
  alias kubectl=%s
  kubectl get strategies
  kubectl get strategystates -o wide
  kubectl strategy status breakout
  kubectl describe strategystate breakout-simulated-btcusdt
  kubectl apply -f config/samples/trading_v1alpha1_strategy_configmap.yaml

Your own bot (docs/backtest-kit-bot.md): put its folder in this registry as an image, and
name it in a Strategy's spec.image:

  make local-image LOCAL_REGISTRY=%s DIR=path/to/my-bot IMAGE=my-bot:v1

Press Ctrl-C to stop everything.
`, cluster.Kubeconfig, filepath.Dir(self), cluster.KubectlPath, reg.Host)

	<-ctx.Done()
	_, _ = fmt.Fprintln(stdout)
	return stopped("")
}

func step(msg string) { _, _ = fmt.Fprintf(stdout, "==> %s\n", msg) }

// errReaderGone: what read run-local's output went away (make run-local | head).
var errReaderGone = errors.New("the reader of run-local's output went away")

// stdout is where run-local prints; run makes it an output, which handles a failed write
// (the writers ignore its errors).
var stdout io.Writer = os.Stdout

// output is standard output that calls gone once a write finds its reader gone.
type output struct{ gone context.CancelCauseFunc }

func (o output) Write(p []byte) (int, error) {
	n, err := os.Stdout.Write(p)
	if errors.Is(err, syscall.EPIPE) {
		o.gone(errReaderGone)
	}
	return n, err
}

// startDatabases starts the Redis, PostgreSQL and MongoDB servers of the database samples, each in a
// folder of its own, and gives their URLs to the samples in labelled Secrets. A server
// that is not installed is left out, with a word on how to get it: its sample then shows
// why it cannot run (PersistenceReady=False).
func startDatabases(ctx context.Context, cluster *localcluster.Cluster, namespace, dir string) (func(), error) {
	var stops []func()
	stop := func() {
		if len(stops) > 0 {
			step("stopping the database servers")
		}
		for _, s := range stops {
			s()
		}
	}
	servers := []struct {
		name, secret string
		start        func(context.Context) (url string, stop func(), err error)
		missing      error
	}{
		{"Redis", "strategy-redis", func(ctx context.Context) (string, func(), error) {
			r, err := testenv.StartRedis(ctx)
			if err != nil {
				return "", nil, err
			}
			return r.URL, r.Stop, nil
		}, testenv.ErrNoRedis},
		{"PostgreSQL", "strategy-postgresql", func(ctx context.Context) (string, func(), error) {
			p, err := testenv.StartPostgres(ctx)
			if err != nil {
				return "", nil, err
			}
			return p.URL, p.Stop, nil
		}, testenv.ErrNoPostgres},
		{"MongoDB", "strategy-mongodb", func(ctx context.Context) (string, func(), error) {
			m, err := testenv.StartMongo(ctx)
			if err != nil {
				return "", nil, err
			}
			return m.URL("strategies"), m.Stop, nil
		}, testenv.ErrNoMongo},
	}
	// Redis keeps its files in the run's folder, which goes with the run (PostgreSQL's must
	// be one its unprivileged user can reach: under /tmp).
	if err := os.Setenv("TMPDIR", dir); err != nil {
		return nil, err
	}
	for _, srv := range servers {
		step("starting a " + srv.name + " server for the " + srv.name + " sample")
		url, stopServer, err := srv.start(ctx)
		if errors.Is(err, srv.missing) {
			fmt.Fprintf(os.Stderr, "warning: %v; the %s sample will say it has no Secret\n", err, srv.name)
			continue
		}
		if err != nil {
			stop()
			return nil, fmt.Errorf("starting %s: %w", srv.name, err)
		}
		stops = append(stops, stopServer)
		secret := filepath.Join(dir, srv.secret+".yaml")
		manifest := fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  labels:\n"+
			"    trading.strategyops.dev/connection: \"true\"\nstringData:\n  url: %q\n", srv.secret, url)
		if err := os.WriteFile(secret, []byte(manifest), 0o600); err != nil {
			stop()
			return nil, err
		}
		if _, err := cluster.Kubectl(ctx, "apply", "-n", namespace, "-f", secret); err != nil {
			stop()
			return nil, err
		}
	}
	return stop, nil
}

// runDirPrefix names the folder each run keeps everything in (etcd's data, certificates,
// logs), under the temporary folder.
const runDirPrefix = "strategy-operator-local-"

// waitForSignal polls until a runner has opened or scheduled a signal (one that began
// after since; the samples' own StrategyState holds an older one), then prints the
// strategies and their states as kubectl shows them.
func waitForSignal(ctx context.Context, cluster *localcluster.Cluster, namespace string, since time.Time) error {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		rows, err := cluster.Kubectl(ctx, "get", "strategystates", "-n", namespace, "-o",
			`jsonpath={range .items[*]}{.spec.signal.pendingAt}{" "}{.spec.scheduledSignal.scheduledAt}{"\n"}{end}`)
		if err == nil && liveSignal(rows, since) {
			out, err := cluster.Kubectl(ctx, "get", "strategies,strategystates", "-n", namespace)
			_, _ = fmt.Fprint(stdout, out)
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no live signal within 3 minutes (last error: %v); see the logs above", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
}

// liveSignal: one of the Unix-millisecond times in rows is after since.
func liveSignal(rows string, since time.Time) bool {
	for f := range strings.FieldsSeq(rows) {
		if ms, err := strconv.ParseInt(f, 10, 64); err == nil && ms >= since.UnixMilli() {
			return true
		}
	}
	return false
}
