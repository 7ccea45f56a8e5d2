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

// Package runnercmd is the runner, the process inside a strategy pod (cmd/runner, and the Go
// SDK's sdk.Main for a user's own strategies): it restores the strategy's state,
// processes the candles it missed, and runs the signal lifecycle minute by minute. On the
// ConfigMap and StrategyState backends it writes only while it holds the strategy's Lease,
// fenced by a token bound to that holding; on the File backend the state folder's lock
// makes it the only writer. On a database backend it can also cache the state and copy it to
// replicas; `runner rebuild-replicas` (with the same settings) copies every store of the
// strategy to its replicas and waits, and `runner restore-from-replica NAME` copies them
// back from one, after the backend lost state the replica kept. `runner exec -- <command…>` runs a process of the
// user's, in any language, as the strategy: see exec.go.
package runnercmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/clock"
	"github.com/strategyops/strategy-operator/internal/market"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
	"github.com/strategyops/strategy-operator/internal/runner"
	"github.com/strategyops/strategy-operator/internal/runnermetrics"
	"github.com/strategyops/strategy-operator/internal/scheme"
	"github.com/strategyops/strategy-operator/internal/strategy"
	"github.com/strategyops/strategy-operator/internal/version"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// The runner's subcommands: runner exec -- <command…>, runner rebuild-replicas, runner
// restore-from-replica NAME.
const (
	modeExec    = "exec"
	modeRebuild = "rebuild-replicas"
	modeRestore = "restore-from-replica"
)

// Main runs the runner on the process's arguments, with the strategies registered
// (package strategy's built-ins, and any a program registered before), and exits.
func Main() {
	args, mode := os.Args[1:], ""
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-version") {
		fmt.Println(version.String(filepath.Base(os.Args[0])))
		os.Exit(0)
	}
	if len(args) > 0 && (args[0] == modeRebuild || args[0] == modeExec || args[0] == modeRestore) {
		args, mode = args[1:], args[0]
	}
	var replica string
	if mode == modeRestore {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			fmt.Fprintln(os.Stderr, "runner: restore-from-replica needs the replica's name: runner restore-from-replica NAME [flags]")
			os.Exit(2)
		}
		args, replica = args[1:], args[0]
	}
	var command []string
	if mode == modeExec {
		var err error
		if args, command, err = splitExec(args); err != nil {
			fmt.Fprintln(os.Stderr, "runner:", err)
			os.Exit(2)
		}
	}
	s, err := runner.ParseSettings(args, runner.Getenv, os.Stderr)
	if errors.Is(err, runner.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		// One problem per line, under the first.
		fmt.Fprintf(os.Stderr, "runner: %s\n\nSee 'runner --help'.\n", strings.ReplaceAll(err.Error(), "\n", "\n        "))
		terminationMessage(s.TerminationMessagePath, "invalid settings: "+err.Error())
		os.Exit(2)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch mode {
	case modeExec:
		code, err := runExec(ctx, s, command, log)
		if err != nil && !errors.Is(err, context.Canceled) {
			log.Error("Runner stopped", "error", err.Error(), "exitCode", code)
			terminationMessage(s.TerminationMessagePath, err.Error())
			os.Exit(1)
		}
		log.Info("The strategy's process exited", "exitCode", code)
		os.Exit(max(code, 0))
	case modeRebuild:
		if err := rebuildReplicas(ctx, s, log); err != nil {
			log.Error("Rebuilding the replicas failed", "error", err.Error())
			os.Exit(1)
		}
		return
	case modeRestore:
		if err := restoreFromReplica(ctx, s, replica, log); err != nil {
			log.Error("Restoring the backend from the replica failed", "error", err.Error())
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, s, log); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("Runner stopped", "error", err.Error())
		terminationMessage(s.TerminationMessagePath, err.Error())
		os.Exit(1)
	}
	log.Info("Runner stopped cleanly")
}

// terminationMessage writes why the runner stopped where the pod's status reads it from
// (the container's terminationMessagePath), so that the Strategy can show it. The file
// must exist already (the kubelet makes it): the runner never creates files elsewhere.
func terminationMessage(path, msg string) {
	if path == "" {
		return
	}
	const limit = 4096 // what the kubelet keeps of a termination message
	if len(msg) > limit {
		msg = msg[:limit]
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return
	}
	_, _ = f.WriteString(msg)
	_ = f.Close()
}

func run(ctx context.Context, s runner.Settings, log *slog.Logger) error {
	ctx0 := ctx
	// Served first: a liveness probe must find the runner alive while it loads its market.
	m, stopServing, err := observe(s, log)
	if err != nil {
		return err
	}
	defer stopServing()
	strat, err := strategy.New(s.Strategy, s.StrategyOptions)
	if err != nil {
		return err
	}
	var source market.Source = market.Simulated{Seed: s.Seed}
	if s.Market != "simulated" {
		if source, err = market.LoadCSV(s.Market); err != nil {
			return err
		}
	}
	if s.Start.IsZero() {
		s.Start = time.Now().UTC()
	}
	start := s.Start
	if len(s.Draining) > 0 {
		log.Info("Draining symbols removed from the strategy: watching their signals until they close, opening none",
			"symbols", s.Draining)
	}
	observer := m.Engine(s.Symbols)
	engine := func(p *domain.Persistence, notify func(runner.Notice)) *runner.Engine {
		return runner.New(runner.Config{StrategyName: s.StrategyName, ExchangeName: s.ExchangeName,
			Symbols: s.Symbols, Draining: s.Draining, Source: source, Strategy: strat, Persist: p,
			Limits: v1.DefaultSignalLimits, Rules: s.Rules, Start: start, Log: log, Notify: notify,
			Observer: observer})
	}
	if k, _ := domain.Lookup(s.Backend); k.Home == domain.OnVolume {
		p := domain.New(k.OpenFiles(s.DataDir))
		defer func() { _ = p.Close() }()
		return loop(ctx, engine(p, nil), s, log, m, false) // the folder's lock keeps others out
	}
	return withState(ctx, s, log, m, func(leadCtx context.Context, b domain.Backend, c client.Client) error {
		ctx, cancel := context.WithCancel(leadCtx) // the work stops on the Lease's loss, and on ctx's end
		defer cancel()
		defer context.AfterFunc(ctx0, cancel)()
		p := domain.New(b)
		defer func() { _ = p.Close() }()
		if len(s.Replicas) > 0 {
			if err := p.Open(ctx, domain.StrategyContexts(s.StrategyName, s.ExchangeName, s.Symbols)); err != nil {
				return err
			}
		}
		return loop(ctx, engine(p, warnings(c, s, log)), s, log, m, true)
	})
}

// observe returns the runner's metrics and serves them, with its health probes, on the
// addresses of s (none by default); stop ends serving.
func observe(s runner.Settings, log *slog.Logger) (m *runnermetrics.Metrics, stop func(), err error) {
	m = runnermetrics.New(s.StrategyName)
	stopServing, err := m.Serve(s.MetricsBindAddress, s.HealthProbeBindAddress, log)
	if err != nil {
		return nil, nil, err
	}
	return m, func() {
		m.SetPhase(runnermetrics.PhaseStopping)
		stopServing()
	}, nil
}

// withState runs work with the state of s, on a Kubernetes or database backend, while this
// process holds the strategy's Lease: b writes with the fencing token of this holding,
// under the cache and replicas of s (each replica rebuilt at the start), and c is the
// cluster's client. work's context ends when the Lease is lost, not when ctx ends: work
// watches ctx itself, and the Lease is released once work has returned. m hears about the
// Lease.
func withState(ctx context.Context, s runner.Settings, log *slog.Logger, m *runnermetrics.Metrics,
	work func(ctx context.Context, b domain.Backend, c client.Client) error) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	// A request the API server never answers must not stall trading: it fails after
	// storeRequestTimeout, and the store retries it (resolving whether it landed).
	cfg.Timeout = storeRequestTimeout
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return err
	}
	backend := func(f kubestore.Fencing) domain.Backend {
		b, _ := domain.KubeBackend(s.Backend, c, domain.KubeOptions{Namespace: s.Namespace, Fencing: f})
		return b // s.Backend is ConfigMap or StrategyState here (settings checked it)
	}
	owned := func(context.Context) error { return nil }
	if domain.HomeOf(s.Backend) == domain.InDatabase {
		// The state lives in a database; the Lease (and the events) stay in the cluster.
		db, err := domain.OpenDatabase(ctx, s.Backend, s.StoreURL)
		if err != nil {
			return err
		}
		defer db.Close()
		backend = db.Backend
		if s.StrategyObject != "" { // the operator's runner: its Strategy must own the rows
			owned = func(ctx context.Context) error {
				return db.CheckOwner(ctx, s.StrategyName, s.ExchangeName, s.Namespace, s.StrategyObject)
			}
		}
	}
	layers, closeReplicas, err := openLayers(ctx, s, log)
	if err != nil {
		return err
	}
	defer closeReplicas()
	contexts := domain.StrategyContexts(s.StrategyName, s.ExchangeName, s.Symbols)
	recorded := func(ctx context.Context) (int64, error) {
		return domain.HighestToken(ctx, backend(kubestore.Fencing{}), contexts)
	}
	return leading(ctx, s, log, m, recorded, func(ctx context.Context, token int64, identity string) error {
		f := kubestore.Fencing{Writer: identity, Token: token}
		if err := owned(ctx); err != nil {
			return err
		}
		// Before anything is read: a deposed holder that wakes now is refused everywhere.
		if err := domain.RaiseFloor(ctx, backend(f), contexts); err != nil {
			return fmt.Errorf("raising the fencing floor: %w", err)
		}
		l := layers(f)
		// Before anything is written: a replica ahead of the backend holds what the backend
		// lost, and trading here would build on the loss.
		if err := domain.CheckReplicas(ctx, backend(kubestore.Fencing{}), l.Replicas, contexts, log); err != nil {
			return err
		}
		l.RebuildOnOpen = true // a killed runner's queued copies are lost: start the replicas afresh
		return work(ctx, l.Wrap(backend(f)), c)
	})
}

// openLayers opens the replicas' databases and returns the layers of s (its cache and its
// replicas) for a writer fenced by f, and what closes the databases. A replica's changes
// are written under the writer's fencing, as the backend's are: a deposed runner's last
// changes are refused, and the replica records the token of each change the backend
// recorded first, so that a replica holding what the backend lost is seen
// (domain.CheckReplicas) instead of being rebuilt from it. Its rebuilds write unfenced:
// they record nothing the backend has not.
func openLayers(ctx context.Context, s runner.Settings, log *slog.Logger) (func(driver.Fencing) domain.Layers, func(),
	error) {
	var dbs []*domain.Database
	closeAll := func() {
		for _, db := range dbs {
			db.Close()
		}
	}
	for _, r := range s.Replicas {
		db, err := domain.OpenDatabase(ctx, r.Backend, r.URL)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("replica %s: %w", r.Name, err)
		}
		dbs = append(dbs, db)
	}
	return func(f driver.Fencing) domain.Layers {
		l := domain.Layers{Cache: s.Cache, Log: log, Token: f.Token}
		for i, r := range s.Replicas {
			l.Replicas = append(l.Replicas, domain.Replica{Name: r.Name, Backend: dbs[i].Backend(f),
				Copier: dbs[i].Backend(domain.NoFencing), QueueSize: r.QueueSize})
		}
		return l
	}, closeAll, nil
}

// withReplicas opens the database backend of s and its replicas for a tool run by hand
// (rebuild-replicas, restore-from-replica), and calls work with them, unfenced.
func withReplicas(ctx context.Context, s runner.Settings, log *slog.Logger,
	work func(db *domain.Database, l domain.Layers, contexts []domain.Context) error) error {
	db, err := domain.OpenDatabase(ctx, s.Backend, s.StoreURL)
	if err != nil {
		return err
	}
	defer db.Close()
	layers, closeReplicas, err := openLayers(ctx, s, log)
	if err != nil {
		return err
	}
	defer closeReplicas()
	return work(db, layers(domain.NoFencing), domain.StrategyContexts(s.StrategyName, s.ExchangeName, s.Symbols))
}

// rebuildReplicas copies every store of the strategy from its database backend to each of
// its replicas (runner rebuild-replicas).
func rebuildReplicas(ctx context.Context, s runner.Settings, log *slog.Logger) error {
	if domain.HomeOf(s.Backend) != domain.InDatabase || len(s.Replicas) == 0 {
		return errors.New("rebuild-replicas needs a database backend and --replicas")
	}
	return withReplicas(ctx, s, log, func(db *domain.Database, l domain.Layers, contexts []domain.Context) error {
		return rebuild(ctx, db, l, contexts, log)
	})
}

func rebuild(ctx context.Context, db *domain.Database, l domain.Layers, contexts []domain.Context,
	log *slog.Logger) error {
	names := make([]string, len(l.Replicas))
	for i, r := range l.Replicas {
		names[i] = r.Name
	}
	if err := domain.CheckReplicas(ctx, db.Backend(domain.NoFencing), l.Replicas, contexts, log); err != nil {
		return err // a replica ahead of the backend is not rebuilt from it
	}
	if err := domain.RebuildReplicas(ctx, l.Wrap(db.Backend(domain.NoFencing)), names, contexts); err != nil {
		return err
	}
	log.Info("Rebuilt the replicas from the backend", "replicas", names, "stores", len(contexts))
	return nil
}

// restoreFromReplica makes the database backend hold what the replica named holds, for
// every store of the strategy (runner restore-from-replica NAME): the way back after the
// backend lost state that a replica kept (domain.ErrPrimaryBehind).
func restoreFromReplica(ctx context.Context, s runner.Settings, name string, log *slog.Logger) error {
	i := slices.IndexFunc(s.Replicas, func(r runner.Replica) bool { return r.Name == name })
	if domain.HomeOf(s.Backend) != domain.InDatabase || i < 0 {
		return fmt.Errorf("restore-from-replica needs a database backend and a replica named %q among --replicas", name)
	}
	switch holder, err := leaseHolder(ctx, s); {
	case err != nil:
		return fmt.Errorf("cannot tell whether a runner holds the Lease %s, so restoring nothing: %w", s.Lease, err)
	case holder != "":
		return fmt.Errorf("runner %s holds the Lease %s: suspend the Strategy (spec.suspend) and restore once it "+
			"has stopped", holder, s.Lease)
	}
	return withReplicas(ctx, s, log, func(db *domain.Database, l domain.Layers, contexts []domain.Context) error {
		n, err := domain.RestoreFromReplica(ctx, db.Backend, l.Replicas[i], contexts)
		if err != nil {
			return err
		}
		log.Info("Restored the backend from the replica", "replica", name, "stores", len(contexts), "entries", n)
		return nil
	})
}

// leaseHolder is the runner that holds the strategy's Lease now: "" when none does (no
// holder, or a renewal older than the Lease's duration).
func leaseHolder(ctx context.Context, s runner.Settings) (string, error) {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return "", err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	lease, err := cs.CoordinationV1().Leases(s.Namespace).Get(ctx, s.Lease, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	holder, renewed := ptr.Deref(lease.Spec.HolderIdentity, ""), lease.Spec.RenewTime
	held := time.Duration(ptr.Deref(lease.Spec.LeaseDurationSeconds, 0)) * time.Second
	if holder == "" || renewed == nil || time.Since(renewed.Time) > held {
		return "", nil
	}
	return holder, nil
}

// loop restores, then processes every completed minute, until ctx ends or s.Until passes.
// loop runs the engine's candles as the clock reaches them; with follow it also reads the
// open signals back from the store every FollowPeriod (see Engine.Follow).
func loop(ctx context.Context, e *runner.Engine, s runner.Settings, log *slog.Logger, m *runnermetrics.Metrics,
	follow bool) error {
	m.SetPhase(runnermetrics.PhaseRestoring)
	if err := e.Restore(ctx); err != nil {
		return fmt.Errorf("restoring: %w", err)
	}
	if domain.HomeOf(s.Backend) == domain.OnVolume {
		m.Leading(true, 0) // the folder's lock, taken by the restore
	}
	m.SetPhase(runnermetrics.PhaseTrading)
	until := s.Until
	var clk clock.Clock = clock.Real{}
	if s.Speed != 1 {
		// A sped-up clock runs ahead of the wall clock, so it resumes where the state
		// stopped: simulated time stands still while no runner runs.
		origin := e.Position().Add(time.Minute)
		if origin.Before(s.Start) {
			origin = s.Start
		}
		clk = clock.Scaled{Start: time.Now(), Origin: origin, Factor: s.Speed}
	}
	for {
		now := clk.Now()
		if !until.IsZero() && now.After(until) {
			now = until
		}
		if follow {
			// Following is best effort: a failed pass (the API server away) is tried again
			// next period, and the state stays in memory meanwhile. A runner fenced off
			// stops at its next write.
			if err := e.Follow(ctx); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				log.Error("Could not read the state back from the store; trying again", "error", err.Error())
			}
		}
		n, err := e.Step(ctx, now)
		if err != nil {
			return err
		}
		if n > 0 {
			log.Debug("Processed candles", "count", n, "through", now.Truncate(time.Minute))
		}
		if !until.IsZero() && !now.Before(until) {
			return nil
		}
		next := now.Truncate(time.Minute).Add(time.Minute).Sub(now) + time.Second
		if follow { // the clock's time runs Speed times faster than the wall's
			next = min(next, time.Duration(float64(s.FollowPeriod)*s.Speed))
		}
		if !clk.Sleep(next, ctx.Done()) {
			return ctx.Err()
		}
	}
}

// storeRequestTimeout bounds one request of the store client.
const storeRequestTimeout = 30 * time.Second

// afterAcquire runs once the Lease is acquired, before the fencing token is taken. Tests
// use it to stall the process there, as a GC pause or a starved CPU would.
var afterAcquire = func() {}

// afterToken runs once the fencing token is taken, before the state is touched. Tests
// stall the process there.
var afterToken = func() {}

// errNotHolder: the Lease changed hands before this runner took its fencing token.
var errNotHolder = errors.New("the Lease is no longer held by this runner")

// leading runs work only while this process holds the strategy's Lease, with a fencing
// token bound to this holder (see fencingToken). Losing the Lease stops the work at once
// and returns an error; a cancelled ctx releases the Lease. m hears the holding and its
// token.
func leading(ctx context.Context, s runner.Settings, log *slog.Logger, m *runnermetrics.Metrics,
	recorded func(context.Context) (int64, error),
	work func(ctx context.Context, token int64, identity string) error) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	// Unique per process: a restarted runner is a new holder, so its fencing token is larger.
	host := os.Getenv("POD_NAME")
	if host == "" {
		host, _ = os.Hostname()
	}
	identity := fmt.Sprintf("%s-%d", host, time.Now().UnixNano())
	leases := cs.CoordinationV1().Leases(s.Namespace)
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Lease},
		Client:     cs.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}
	// The elector runs until the work has returned, not until ctx ends: a runner told to
	// stop keeps the Lease while its work stops (runner exec's process in its grace
	// period), and releases it after. Before the work began, ctx's end stops the elector.
	electorCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	result := make(chan error, 1)
	var started atomic.Bool // the work began
	stopWaiting := context.AfterFunc(ctx, func() {
		if !started.Load() {
			cancel()
		}
	})
	defer stopWaiting()
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, LeaseDuration: s.LeaseDuration, RenewDeadline: s.RenewDeadline, RetryPeriod: s.RetryPeriod,
		ReleaseOnCancel: true, Name: s.Lease,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leadCtx context.Context) {
				started.Store(true)
				afterAcquire()
				token, err := fencingToken(leadCtx, leases, s.Lease, identity, recorded)
				if err == nil {
					log.Info("Acquired the lease", "lease", s.Lease, "identity", identity, "fencingToken", token)
					m.Leading(true, token)
					afterToken()
					err = work(leadCtx, token, identity)
					m.Leading(false, 0)
					m.SetPhase(runnermetrics.PhaseStopping)
				} else {
					err = fmt.Errorf("taking a fencing token: %w", err)
				}
				result <- err
				cancel()
			},
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return err
	}
	m.SetPhase(runnermetrics.PhaseStandby)
	elector.Run(electorCtx) // returns once this runner no longer leads, without waiting for the work
	cancel()
	if !started.Load() {
		return ctx.Err() // never led: stopped before acquiring
	}
	err = <-result // the work stops at once: its context has ended
	switch {
	case ctx.Err() != nil:
		return ctx.Err() // asked to stop (SIGTERM): the Lease is released
	case err == nil:
		return nil // the work ended by itself (--until)
	case errors.Is(err, context.Canceled):
		// The work was stopped because the Lease ended under it.
		log.Error("Lost the lease: stopped trading", "lease", s.Lease)
		return errLostLease
	default:
		return err
	}
}

// errLostLease: the runner stopped trading because its Lease was lost; it exits non-zero.
var errLostLease = errors.New("lost the lease to another runner")

// fencingToken returns the token this runner writes with. It comes from a read of the
// Lease in which this runner is the holder: the transition count plus one, which every
// change of holder raises. The stores may have seen larger tokens (the Lease was deleted
// and made again); then the count is first raised to the highest recorded token, in an
// update that succeeds only while the Lease is unchanged since that read, so the token
// stays bound to this holder and the next holder's is larger again.
func fencingToken(ctx context.Context, leases coordinationv1client.LeaseInterface, name, identity string,
	recorded func(context.Context) (int64, error)) (int64, error) {
	floor, err := recorded(ctx)
	if err != nil {
		return 0, err
	}
	for {
		lease, err := leases.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return 0, err
		}
		if h := ptr.Deref(lease.Spec.HolderIdentity, ""); h != identity {
			return 0, fmt.Errorf("%w: it is held by %q", errNotHolder, h)
		}
		transitions := int64(ptr.Deref(lease.Spec.LeaseTransitions, 0))
		if transitions >= floor {
			return transitions + 1, nil
		}
		if floor > math.MaxInt32-1 {
			return 0, fmt.Errorf("the stores record fencing token %d, past what a Lease can count", floor)
		}
		lease.Spec.LeaseTransitions = new(int32(floor))
		_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
		if err != nil && !apierrors.IsConflict(err) {
			return 0, err
		}
		// Updated, or our own renewal won the race: read again.
	}
}

// warnings reports what the engine noticed in the store as Warning events on the
// Strategy (when the runner knows its name), besides its own log.
func warnings(c client.Client, s runner.Settings, log *slog.Logger) func(runner.Notice) {
	if s.StrategyObject == "" {
		return nil
	}
	instance := os.Getenv("POD_NAME")
	if instance == "" {
		instance, _ = os.Hostname()
	}
	return func(n runner.Notice) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ev := &eventsv1.Event{
			ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace,
				Name: fmt.Sprintf("%s.%x", s.StrategyObject, time.Now().UnixNano())}, // as client-go names them
			EventTime:           metav1.NowMicro(),
			ReportingController: "strategyops.dev/runner",
			ReportingInstance:   instance,
			Action:              "FollowStore",
			Reason:              n.Reason,
			Type:                corev1.EventTypeWarning,
			Note:                truncate(n.Message, 1024),
			Regarding: corev1.ObjectReference{APIVersion: v1.GroupVersion.String(), Kind: "Strategy",
				Name: s.StrategyObject, Namespace: s.Namespace},
		}
		if err := c.Create(ctx, ev); err != nil {
			log.Error("Could not record a Warning event", "reason", n.Reason, "error", err.Error())
		}
	}
}

// truncate cuts s to at most n bytes, at a character boundary.
func truncate(s string, n int) string {
	for len(s) > n {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}
