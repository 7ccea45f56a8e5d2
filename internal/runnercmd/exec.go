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
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/childproc"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/runner"
	"github.com/strategyops/strategy-operator/internal/runnermetrics"
	"github.com/strategyops/strategy-operator/internal/stateserver"
	"github.com/strategyops/strategy-operator/pkg/stateapi"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// The environment runner exec gives the user's process.
const (
	// StateSocketEnv is the path of the Unix socket the state API (package stateapi) is
	// served on.
	StateSocketEnv = stateapi.SocketEnv
	// The strategy's name, exchange, symbols and risk profiles (comma-separated), as the
	// runner has them.
	StrategyNameEnv = "STRATEGYOPS_STRATEGY_NAME"
	ExchangeNameEnv = "STRATEGYOPS_EXCHANGE_NAME"
	SymbolsEnv      = "STRATEGYOPS_SYMBOLS"
	RiskProfilesEnv = "STRATEGYOPS_RISK_PROFILES"
)

// errExecUsage: runner exec was not given a command.
var errExecUsage = errors.New("usage: runner exec [flags] -- <command> [args…]")

// splitExec splits runner exec's arguments at "--" into the runner's flags and the command.
// Asked for help, with no command, it returns the flags alone (the settings' parser
// prints the usage).
func splitExec(args []string) (flags, command []string, err error) {
	for i, a := range args {
		if a == "--" {
			if i == len(args)-1 {
				return nil, nil, errExecUsage
			}
			return args[:i], args[i+1:], nil
		}
	}
	for _, a := range args {
		if slices.Contains([]string{"-h", "-help", "--h", "--help"}, a) {
			return args, nil, nil
		}
	}
	return nil, nil, errExecUsage
}

// runExec runs command as the strategy: it takes the Lease (on a Kubernetes or database
// backend; on File, the folders' locks), serves the state API on a Unix socket in a folder
// only this user may enter, and starts command with the socket's path in its environment
// (StateSocketEnv) and without the database URLs of the runner's (its state goes through
// the API, under the fencing token). It returns the command's exit status once it exits.
//
//   - When the Lease is lost, it stops serving at once (requests under way finish first),
//     sends the command's process group SIGTERM, and SIGKILL after s.GracePeriod, which
//     ends before another runner can take the Lease.
//   - When the runner is told to stop (ctx ends), it sends the group SIGTERM and keeps
//     serving, holding the Lease, until the command exits or s.GracePeriod has passed.
func runExec(ctx context.Context, s runner.Settings, command []string, log *slog.Logger) (int, error) {
	m, stopServing, err := observe(s, log)
	if err != nil {
		return -1, err
	}
	defer stopServing()
	code := -1
	serve := func(leadCtx context.Context, b domain.Backend, _ client.Client) error {
		var err error
		code, err = serveChild(leadCtx, ctx, s, b, command, m, log)
		if leadCtx.Err() != nil && ctx.Err() == nil {
			code = -1 // stopped with the Lease, not of its own: no status of the command's to pass on
		}
		return err
	}
	if k, _ := domain.Lookup(s.Backend); k.Home == domain.OnVolume {
		// The folders' locks keep others out.
		err = folderInUse(s, serve(context.WithoutCancel(ctx), k.OpenFiles(s.DataDir), nil))
	} else {
		err = withState(ctx, s, log, m, nil, serve) // no Trading condition: the process trades as it will
	}
	return code, err
}

// folderInUse says, of an error that a store of the strategy's folder (s.DataDir) is
// locked, that the folder is another runner's; other errors pass unchanged.
func folderInUse(s runner.Settings, err error) error {
	if errors.Is(err, driver.ErrLocked) {
		return fmt.Errorf("the strategy's folder %s is in use by another runner: %w", s.DataDir, err)
	}
	return err
}

// serveChild serves the state API over b and runs command until it exits, the Lease is
// lost (leadCtx ends) or the runner is told to stop (stopCtx ends). m hears when the
// process runs (the runner is then ready).
func serveChild(leadCtx, stopCtx context.Context, s runner.Settings, b domain.Backend, command []string,
	m *runnermetrics.Metrics, log *slog.Logger) (int, error) {
	dir, err := os.MkdirTemp("", "strategyops-state-") // mode 0700: this user's alone
	if err != nil {
		return -1, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	api := stateserver.New(stateserver.Config{StrategyName: s.StrategyName, ExchangeName: s.ExchangeName,
		Symbols: s.Symbols, Draining: s.Draining, RiskProfiles: s.RiskProfiles, Backend: b,
		Limits: v1.DefaultSignalLimits})
	defer func() { _ = api.Close() }()
	// Every store is opened before the process starts: on File, a second runner on the
	// same folders finds them locked now, not at its process's first write.
	m.SetPhase(runnermetrics.PhaseRestoring)
	if err := api.Open(leadCtx); err != nil {
		return -1, fmt.Errorf("opening the strategy's stores: %w", err)
	}
	if domain.HomeOf(s.Backend) == domain.OnVolume {
		m.Leading(true, 0) // the folders' locks, taken by the opening
	}
	socket := filepath.Join(dir, "state.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return -1, err
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	stopServing := func() {
		// Requests under way finish (their writes are fenced) before the stores close.
		ctx, cancel := context.WithTimeout(context.Background(), s.GracePeriod)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			_ = srv.Close()
		}
	}
	defer stopServing()

	if err := undumpable(); err != nil {
		return -1, fmt.Errorf("hiding the runner's environment from the process: %w", err)
	}
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(childEnv(os.Environ()), StateSocketEnv+"="+socket, StrategyNameEnv+"="+s.StrategyName,
		ExchangeNameEnv+"="+s.ExchangeName, SymbolsEnv+"="+strings.Join(s.Symbols, ","),
		RiskProfilesEnv+"="+strings.Join(s.RiskProfiles, ","))
	cmd.SysProcAttr = childproc.SysProcAttr() // its own process group, and it dies with the runner
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("starting %s: %w", command[0], err)
	}
	pid := cmd.Process.Pid
	log.Info("Started the strategy's process", "command", command[0], "pid", pid, "socket", socket)
	m.SetPhase(runnermetrics.PhaseTrading)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	group := func(sig syscall.Signal) { _ = syscall.Kill(-pid, sig) } // the process and its children
	// stop sends the group SIGTERM, then SIGKILL after the grace period, and returns once
	// the process has exited; lost, when not nil, ends serving at once if the Lease goes.
	stop := func(lost <-chan struct{}) {
		log.Info("Stopping the strategy's process", "pid", pid, "gracePeriod", s.GracePeriod.String())
		group(syscall.SIGTERM)
		grace := time.After(s.GracePeriod)
		for {
			select {
			case <-done:
				group(syscall.SIGKILL) // what it left behind in its group
				return
			case <-lost:
				stopServing()
				lost = nil
			case <-grace:
				log.Warn("The strategy's process did not stop within the grace period; killing it", "pid", pid)
				group(syscall.SIGKILL)
				<-done
				return
			}
		}
	}
	select {
	case <-done:
		group(syscall.SIGKILL)
		return exitStatus(cmd.ProcessState), nil
	case <-leadCtx.Done():
		// The Lease is lost: no write of the process lands from now on, and it is gone
		// before another runner can take the Lease.
		stopServing()
		stop(nil)
		return exitStatus(cmd.ProcessState), leadCtx.Err()
	case <-stopCtx.Done():
		// Told to stop: the process gets its grace period, still served, still leading.
		stop(leadCtx.Done())
		return exitStatus(cmd.ProcessState), stopCtx.Err()
	}
}

// exitStatus is a process's exit code, or 128 + the signal that ended it, as a shell says.
func exitStatus(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// childEnv is the runner's environment without the database URLs: the process writes its
// state through the API only.
func childEnv(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if name == domain.StoreURLEnv || strings.HasPrefix(name, "STORE_REPLICA_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}
