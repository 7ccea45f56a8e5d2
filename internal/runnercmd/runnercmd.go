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
// processes the candles it missed, and runs the signal lifecycle minute by minute. Where
// the state lives in Kubernetes objects or a database it writes only while it holds the
// strategy's Lease, fenced by a token bound to that holding (lease.go, state.go); on a
// volume the state folder's lock makes it the only writer. On a database backend it can
// also cache the state and copy it to replicas; `runner rebuild-replicas` and `runner
// restore-from-replica NAME` copy the stores to the replicas and back (replicas.go).
// `runner exec -- <command…>` runs a process of the user's, in any language, as the
// strategy (exec.go). What the runner must tell the user goes out as events (warnings.go).
package runnercmd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/clock"
	"github.com/strategyops/strategy-operator/internal/market"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/runner"
	"github.com/strategyops/strategy-operator/internal/runnermetrics"
	"github.com/strategyops/strategy-operator/internal/strategy"
	"github.com/strategyops/strategy-operator/internal/version"
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
		if err != nil && !stopped(ctx, err) {
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
	if err := run(ctx, s, log); err != nil && !stopped(ctx, err) {
		log.Error("Runner stopped", "error", err.Error())
		terminationMessage(s.TerminationMessagePath, err.Error())
		os.Exit(1)
	}
	log.Info("Runner stopped cleanly")
}

// stopped reports whether err is the runner's answer to being told to stop (ctx, ended by
// SIGTERM or an interrupt): a clean stop. A cancellation of anything else is a failure.
func stopped(ctx context.Context, err error) bool {
	return ctx.Err() != nil && errors.Is(err, context.Canceled)
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
	metrics := m.Engine(s.Symbols)
	// engine is the runner's engine on p, and starts telling whether it trades, on the
	// Lease when c is not nil, until ctx ends.
	engine := func(ctx context.Context, p *domain.Persistence, c client.Client, notify func(runner.Notice)) *runner.Engine {
		watch := tradingWatch(s)
		go tellTrading(ctx, watch, m, c, client.ObjectKey{Namespace: s.Namespace, Name: s.Lease}, s.PodUID, log)
		return runner.New(runner.Config{StrategyName: s.StrategyName, ExchangeName: s.ExchangeName,
			RiskProfile: s.RiskProfile(), Symbols: s.Symbols, Draining: s.Draining, Source: source, Strategy: strat, Persist: p,
			Limits: v1.DefaultSignalLimits, Rules: s.Rules, Start: start, Log: log, Notify: notify,
			Observer: runner.Observers{metrics, watch}})
	}
	if k, _ := domain.Lookup(s.Backend); k.Home == domain.OnVolume {
		files := k.OpenFiles(s.DataDir)
		p := domain.New(files)
		defer func() { _ = p.Close() }()
		// The folder's lock keeps others out; the operator cannot reach the ledger here, so
		// the runner bounds it.
		ctx, cancel := context.WithCancel(ctx) // the engine's helpers end with the loop
		defer cancel()
		return folderInUse(s, loop(ctx, engine(ctx, p, statusClient(s, log), nil), s, log, m,
			tendLedgers(p, files, s, log)))
	}
	standby := func(ctx context.Context, c client.Client, cause error) { tellOutage(ctx, c, s, m, cause, log) }
	return withState(ctx, s, log, m, standby, func(leadCtx context.Context, b domain.Backend, c client.Client) error {
		ctx, cancel := context.WithCancel(leadCtx) // the work stops on the Lease's loss, and on ctx's end
		defer cancel()
		defer context.AfterFunc(ctx0, cancel)()
		p := domain.New(b)
		defer func() { _ = p.Close() }()
		if len(s.Replicas) > 0 {
			if err := p.Open(ctx, domain.StrategyContexts(s.StrategyName, s.ExchangeName, s.Symbols, s.RiskProfiles...)); err != nil {
				return err
			}
		}
		return loop(ctx, engine(ctx, p, c, warnings(c, s, log)), s, log, m, nil)
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

// loop restores, then processes every completed minute, until ctx ends or s.Until passes.
// loop runs the engine's candles as the clock reaches them, and reads the open signals
// back from the store every FollowPeriod (see Engine.Follow). tend, when not nil, runs
// between candles at most every tendEvery, and once more at the end.
func loop(ctx context.Context, e *runner.Engine, s runner.Settings, log *slog.Logger, m *runnermetrics.Metrics,
	tend func(context.Context)) error {
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
	tended := time.Now()
	for {
		now := clk.Now()
		if !until.IsZero() && now.After(until) {
			now = until
		}
		// Following is best effort: a failed pass (the API server away) is tried again next
		// period, and the state stays in memory meanwhile. A runner fenced off stops at its
		// next write.
		if err := e.Follow(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			log.Error("Could not read the state back from the store; trying again", "error", err.Error())
		}
		n, err := e.Step(ctx, now)
		if err != nil {
			return err
		}
		if n > 0 {
			log.Debug("Processed candles", "count", n, "through", now.Truncate(time.Minute))
		}
		done := !until.IsZero() && !now.Before(until)
		if tend != nil && (done || n > 0 && time.Since(tended) >= tendEvery) {
			tend(ctx)
			tended = time.Now()
		}
		if done {
			return nil
		}
		// The clock's time runs Speed times faster than the wall's.
		next := min(now.Truncate(time.Minute).Add(time.Minute).Sub(now)+time.Second,
			time.Duration(float64(cmp.Or(s.FollowPeriod, runner.DefaultFollowPeriod))*s.Speed))
		if !clk.Sleep(next, ctx.Done()) {
			return ctx.Err()
		}
	}
}

// tendEvery is how often the runner tends its ledgers, at most.
const tendEvery = 10 * time.Second

// tendLedgers bounds the ledger of each symbol of s on a backend only the runner reaches
// (p, over b): past s.LiveEntries the oldest finished signals move to the symbol's
// archive, which s.Retention bounds. A failure is logged and tried again next time.
func tendLedgers(p *domain.Persistence, b domain.Backend, s runner.Settings, log *slog.Logger) func(context.Context) {
	return func(ctx context.Context) {
		for _, sym := range s.Symbols {
			k := domain.StrategyKey(sym, s.StrategyName, s.ExchangeName)
			moved, pruned, err := p.TendLedger(ctx, b, k, cmp.Or(s.LiveEntries, v1.DefaultLiveEntries), s.Retention,
				time.Now())
			if err != nil {
				log.Error("Could not archive the history ledger; trying again later", "symbol", sym, "error", err.Error())
			}
			if moved+pruned > 0 {
				log.Info("Archived the history ledger", "symbol", sym, "moved", moved, "deleted", pruned)
			}
		}
	}
}
