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
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/childproc"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/runner"
	"github.com/strategyops/strategy-operator/pkg/stateapi"
)

// The environment runner exec gives the user's process.
const (
	// StateSocketEnv is the path of the Unix socket the state API (package stateapi) is
	// served on.
	StateSocketEnv = "STRATEGYOPS_STATE_SOCKET"
	// The strategy's name, exchange and symbols (comma-separated), as the runner has them.
	StrategyNameEnv = "STRATEGYOPS_STRATEGY_NAME"
	ExchangeNameEnv = "STRATEGYOPS_EXCHANGE_NAME"
	SymbolsEnv      = "STRATEGYOPS_SYMBOLS"
)

// errExecUsage: runner exec was not given a command.
var errExecUsage = errors.New("usage: runner exec [flags] -- <command> [args…]")

// splitExec splits runner exec's arguments at "--" into the runner's flags and the command.
func splitExec(args []string) (flags, command []string, err error) {
	for i, a := range args {
		if a == "--" {
			if i == len(args)-1 {
				return nil, nil, errExecUsage
			}
			return args[:i], args[i+1:], nil
		}
	}
	return nil, nil, errExecUsage
}

// runExec runs command as the strategy: it takes the Lease (on a Kubernetes or database
// backend), serves the state API on a Unix socket in a folder only this user may enter,
// and starts command with the socket's path in its environment (StateSocketEnv) and without
// the database URLs of the runner's (its state goes through the API, under the fencing
// token). It returns the command's exit code once it exits. When the Lease is lost, or the
// runner is told to stop, it stops serving, sends the command SIGTERM, and SIGKILL after
// s.GracePeriod.
func runExec(ctx context.Context, s runner.Settings, command []string, log *slog.Logger) (int, error) {
	code := -1
	serve := func(ctx context.Context, b domain.Backend, _ client.Client) error {
		var err error
		code, err = serveChild(ctx, s, b, command, log)
		return err
	}
	var err error
	if s.Backend == v1.BackendFile {
		err = serve(ctx, domain.FileBackend(s.DataDir), nil) // the folder's lock keeps others out
	} else {
		err = withState(ctx, s, log, serve)
	}
	return code, err
}

// serveChild serves the state API over b and runs command until it exits, or until ctx ends.
func serveChild(ctx context.Context, s runner.Settings, b domain.Backend, command []string,
	log *slog.Logger) (int, error) {
	dir, err := os.MkdirTemp("", "strategyops-state-") // mode 0700: this user's alone
	if err != nil {
		return -1, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	socket := filepath.Join(dir, "state.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return -1, err
	}
	api := stateapi.New(stateapi.Config{StrategyName: s.StrategyName, ExchangeName: s.ExchangeName,
		Symbols: s.Symbols, Backend: b, Limits: v1.DefaultSignalLimits})
	defer func() { _ = api.Close() }()
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Close() }()

	cmd := exec.Command(command[0], command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(childEnv(os.Environ()), StateSocketEnv+"="+socket, StrategyNameEnv+"="+s.StrategyName,
		ExchangeNameEnv+"="+s.ExchangeName, SymbolsEnv+"="+strings.Join(s.Symbols, ","))
	cmd.SysProcAttr = childproc.SysProcAttr() // it dies with the runner, whatever kills the runner
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("starting %s: %w", command[0], err)
	}
	log.Info("Started the strategy's process", "command", command[0], "pid", cmd.Process.Pid, "socket", socket)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
		return exitStatus(cmd.ProcessState), nil
	case <-ctx.Done():
	}
	// The Lease is lost, or the runner was told to stop: no write of the process lands from
	// now on, and it is stopped before another runner can take the Lease.
	_ = srv.Close()
	log.Info("Stopping the strategy's process", "pid", cmd.Process.Pid, "gracePeriod", s.GracePeriod.String())
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(s.GracePeriod):
		log.Warn("The strategy's process did not stop within the grace period; killing it", "pid", cmd.Process.Pid)
		_ = cmd.Process.Kill()
		<-done
	}
	return exitStatus(cmd.ProcessState), ctx.Err()
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
