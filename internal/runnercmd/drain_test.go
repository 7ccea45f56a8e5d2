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
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/handshake"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/runner"
)

// drainCase is one backend's runner in TestDrainOnEveryBackend.
type drainCase struct {
	b     v1.PersistenceBackend
	name  string
	env   []string // the runner's environment: a database's URL
	state *domain.Persistence
	err   error
}

// TestDrainOnEveryBackend removes a symbol from a trading runner, on every backend with a
// Lease, as the operator does: the runner is replaced (SIGKILLed here, as a lost node
// would) while a signal is open on that symbol, and its successor runs with the symbol
// under --drain. The successor records on the Lease that it trades one symbol and drains
// the other (the operator's confirmation); the open signal is watched to its close; none
// is opened on the drained symbol again; the other symbol trades on. Then the strategy's
// identity changes, which drains every symbol first: the next runner records that it
// trades none, and opens nothing more.
func TestDrainOnEveryBackend(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(ctx, t)
	kubeconfig := env.Kubeconfig(t)
	cases := make([]*drainCase, 0, 5)
	cases = append(cases, &drainCase{b: v1.BackendConfigMap, name: "drain-cm"},
		&drainCase{b: v1.BackendStrategyState, name: "drain-ss"})
	for _, c := range cases {
		createStoreObjects(ctx, t, ns, c.b, c.name, restartSymbols)
		c.state = domain.New(kubeBackend(c.b, ns))
	}
	for _, d := range []struct {
		b   v1.PersistenceBackend
		url string
	}{
		{v1.BackendRedis, startRedis(t).URL},
		{v1.BackendPostgreSQL, startPostgres(t).URL},
		{v1.BackendMongoDB, startMongo(t).URL("drain")},
	} {
		db, err := domain.OpenDatabase(ctx, d.b, d.url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		cases = append(cases, &drainCase{b: d.b, name: "drain-" + strings.ToLower(string(d.b)),
			env: []string{domain.StoreURLEnv + "=" + d.url}, state: domain.New(db.Backend(domain.NoFencing))})
	}
	until := whileBTCOpen(t)
	var wg sync.WaitGroup
	for _, c := range cases {
		t.Cleanup(func() { _ = c.state.Close() })
		wg.Go(func() { c.err = c.drain(t, kubeconfig, ns, until) })
	}
	wg.Wait()
	for _, c := range cases {
		if c.err != nil {
			t.Errorf("%s: %v", c.b, c.err)
		}
	}
}

// drain runs the case; a failure is returned (it runs beside the other backends').
func (c *drainCase) drain(t *testing.T, kubeconfig, ns string, until time.Time) error {
	ctx := t.Context()
	args := func(until time.Time, symbols ...string) []string {
		return append([]string{"--strategy-name=" + c.name, "--exchange=simulated", "--backend=" + string(c.b),
			"--namespace=" + ns, "--lease=" + c.name + "-runner", "--start=" + restartStart.Format(time.RFC3339),
			"--until=" + until.Format(time.RFC3339), "--speed=1200",
			"--lease-duration=4s", "--renew-deadline=3s", "--retry-period=500ms"}, symbols...)
	}
	eth := domain.StrategyKey("ETHUSDT", c.name, "simulated")
	btc := domain.StrategyKey("BTCUSDT", c.name, "simulated")
	first, err := launch(kubeconfig, args(restartUntil, "--symbols=BTCUSDT,ETHUSDT"), c.env...)
	if err != nil {
		return err
	}
	var open *v1.Signal
	for deadline := time.Now().Add(time.Minute); open == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			first.kill()
			return fmt.Errorf("no signal opened on ETHUSDT; the runner's log:\n%s", first.log())
		}
		if open, err = c.state.ReadSignal(ctx, eth); err != nil {
			first.kill()
			return err
		}
	}
	first.kill()
	before, err := readLedgers(ctx, c.state, c.name)
	if err != nil {
		return err
	}

	// ETHUSDT is removed from the strategy.
	second, err := launch(kubeconfig, append(args(until, "--symbols=BTCUSDT", "--drain=ETHUSDT"),
		"--pod-uid=second"), c.env...)
	if err != nil {
		return err
	}
	if err := c.confirms(ctx, ns, second, "second", []string{"BTCUSDT"}, []string{"ETHUSDT"}); err != nil {
		return err
	}
	if err := finished(second); err != nil {
		return err
	}
	after, err := readLedgers(ctx, c.state, c.name)
	if err != nil {
		return err
	}
	// The open signal's own entry may be new: a runner killed while it opened the signal
	// leaves the ledger's record to its successor.
	if err := watchedToClose(before["ETHUSDT"], after["ETHUSDT"], open); err != nil {
		return fmt.Errorf("ETHUSDT: %w", err)
	}
	if sig, err := c.state.ReadSignal(ctx, eth); err != nil || sig != nil {
		return fmt.Errorf("ETHUSDT still holds a signal after its drain: %+v, %v", sig, err)
	}
	if len(after["BTCUSDT"]) <= len(before["BTCUSDT"]) {
		return fmt.Errorf("BTCUSDT stopped trading: %d ledger entries before the drain, %d after",
			len(before["BTCUSDT"]), len(after["BTCUSDT"]))
	}

	// Then the strategy's identity changes: the operator drains every symbol under the old
	// one first. The runner trades none, says so, opens nothing more, and watches the
	// signal open on BTCUSDT to its close: three simulated hours, more than any signal of
	// the feed lives.
	openBTC, err := c.state.ReadSignal(ctx, btc)
	if err != nil || openBTC == nil {
		return fmt.Errorf("no signal open on BTCUSDT at %s, when the feed holds one: %v", until, err)
	}
	third, err := launch(kubeconfig, append(args(until.Add(3*time.Hour), "--drain=BTCUSDT,ETHUSDT"),
		"--pod-uid=third"), c.env...)
	if err != nil {
		return err
	}
	if err := c.confirms(ctx, ns, third, "third", []string{}, []string{"BTCUSDT", "ETHUSDT"}); err != nil {
		return err
	}
	if err := finished(third); err != nil {
		return err
	}
	last, err := readLedgers(ctx, c.state, c.name)
	if err != nil {
		return err
	}
	for sym, open := range map[string]*v1.Signal{"BTCUSDT": openBTC, "ETHUSDT": nil} {
		if err := watchedToClose(after[sym], last[sym], open); err != nil {
			return fmt.Errorf("%s, every symbol drained: %w", sym, err)
		}
	}
	if sig, err := c.state.ReadSignal(ctx, btc); err != nil || sig != nil {
		return fmt.Errorf("BTCUSDT still holds a signal after its drain: %+v, %v", sig, err)
	}
	t.Logf("%s: signal %s watched to its close on the drained ETHUSDT; BTCUSDT went from %d to %d signals, "+
		"then, every symbol drained, opened none and watched %s to its close", c.b, open.ID, len(before["BTCUSDT"]),
		len(after["BTCUSDT"]), openBTC.ID)
	return nil
}

// whileBTCOpen is a time when the feed holds a signal open on BTCUSDT, opened at least 6
// simulated hours in and living 10 minutes or more: where the drain's second runner stops,
// so that the identity change finds a signal to watch.
func whileBTCOpen(t *testing.T) time.Time {
	t.Helper()
	dir := t.TempDir()
	s := runner.Settings{StrategyName: "drain-ref", ExchangeName: "simulated", Symbols: restartSymbols,
		Backend: v1.BackendFile, DataDir: dir, Strategy: "indicator", StrategyOptions: map[string]string{},
		Market: "simulated", Seed: 1, Start: restartStart, Until: restartUntil, Speed: 1e6}
	if err := run(t.Context(), s, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	p := domain.New(domain.FileBackend(dir))
	defer func() { _ = p.Close() }()
	for _, e := range ledgers(t, p, s.StrategyName)["BTCUSDT"] {
		opened, ended := time.UnixMilli(e.Events[0].At), time.UnixMilli(e.Events[len(e.Events)-1].At)
		if opened.After(restartStart.Add(6*time.Hour)) && ended.Sub(opened) >= 10*time.Minute {
			return opened.Add(2 * time.Minute)
		}
	}
	t.Fatal("the feed holds no BTCUSDT signal of 10 minutes or more after 6 hours")
	return time.Time{}
}

// confirms waits for the runner p, in pod pod, to record on its Lease that it trades
// symbols and drains draining: the operator's confirmation, read as the operator reads it,
// while the runner holds the Lease.
func (c *drainCase) confirms(ctx context.Context, ns string, p *process, pod string, symbols, draining []string) error {
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var lease coordinationv1.Lease
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: c.name + "-runner"}, &lease); err != nil {
			p.kill()
			return err
		}
		r, ok, err := handshake.Current(&lease, pod)
		if err != nil {
			p.kill()
			return err
		}
		if ok {
			if !slices.Equal(r.Symbols, symbols) || !slices.Equal(r.Draining, draining) {
				p.kill()
				return fmt.Errorf("the Lease records %+v, want %v traded and %v drained", r, symbols, draining)
			}
			return nil
		}
		if time.Now().After(deadline) {
			p.kill()
			return fmt.Errorf("the runner recorded nothing on its Lease: %v; its log:\n%s", lease.Annotations, p.log())
		}
	}
}

// finished waits for the runner p to reach --until and exit 0.
func finished(p *process) error {
	select {
	case <-p.done:
	case <-time.After(3 * time.Minute):
		p.kill()
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("the runner exited %d; its log:\n%s", code, p.log())
	}
	return nil
}

// watchedToClose checks a drained symbol's ledger, before and after its drain: no signal
// is new but open (the one open when the drain began, if any), which the ledger records
// opened, then closed or cancelled.
func watchedToClose(before, after []*domain.HistoryEntry, open *v1.Signal) error {
	closed := open == nil
	for _, e := range after {
		isOpen := open != nil && e.ID == open.ID
		if !isOpen && !slices.ContainsFunc(before, func(b *domain.HistoryEntry) bool { return b.ID == e.ID }) {
			return fmt.Errorf("signal %s was opened while draining: %+v", e.ID, e)
		}
		closed = closed || isOpen && e.Has(runner.KindOpen) && (e.Has(runner.KindClose) || e.Has(runner.KindCancel))
	}
	if !closed {
		return fmt.Errorf("signal %s, open when the drain began, was not watched to its close: %+v", open.ID, after)
	}
	return nil
}
