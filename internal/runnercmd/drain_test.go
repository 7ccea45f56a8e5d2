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
// is opened on the drained symbol again; the other symbol trades on.
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
	var wg sync.WaitGroup
	for _, c := range cases {
		t.Cleanup(func() { _ = c.state.Close() })
		wg.Go(func() { c.err = c.drain(t, kubeconfig, ns) })
	}
	wg.Wait()
	for _, c := range cases {
		if c.err != nil {
			t.Errorf("%s: %v", c.b, c.err)
		}
	}
}

// drain runs the case; a failure is returned (it runs beside the other backends').
func (c *drainCase) drain(t *testing.T, kubeconfig, ns string) error {
	ctx := t.Context()
	args := func(symbols ...string) []string {
		return append([]string{"--strategy-name=" + c.name, "--exchange=simulated", "--backend=" + string(c.b),
			"--namespace=" + ns, "--lease=" + c.name + "-runner", "--start=" + restartStart.Format(time.RFC3339),
			"--until=" + restartUntil.Format(time.RFC3339), "--speed=1200",
			"--lease-duration=4s", "--renew-deadline=3s", "--retry-period=500ms"}, symbols...)
	}
	eth := domain.StrategyKey("ETHUSDT", c.name, "simulated")
	first, err := launch(kubeconfig, args("--symbols=BTCUSDT,ETHUSDT"), c.env...)
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

	second, err := launch(kubeconfig, append(args("--symbols=BTCUSDT", "--drain=ETHUSDT"), "--pod-uid=second"),
		c.env...)
	if err != nil {
		return err
	}
	// The operator's confirmation, read as it reads it: from the Lease, while the runner
	// holds it.
	var record handshake.Record
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var lease coordinationv1.Lease
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: c.name + "-runner"}, &lease); err != nil {
			return err
		}
		r, ok, err := handshake.Current(&lease, "second")
		if err != nil {
			return err
		}
		if ok {
			record = r
			break
		}
		if time.Now().After(deadline) {
			second.kill()
			return fmt.Errorf("the draining runner recorded nothing on its Lease: %v; its log:\n%s",
				lease.Annotations, second.log())
		}
	}
	if !slices.Equal(record.Symbols, []string{"BTCUSDT"}) || !slices.Equal(record.Draining, []string{"ETHUSDT"}) {
		second.kill()
		return fmt.Errorf("the Lease records %+v, want BTCUSDT traded and ETHUSDT drained", record)
	}
	select {
	case <-second.done:
	case <-time.After(3 * time.Minute):
		second.kill()
	}
	if code := second.cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("the draining runner exited %d; its log:\n%s", code, second.log())
	}
	after, err := readLedgers(ctx, c.state, c.name)
	if err != nil {
		return err
	}
	var closed bool
	for _, e := range after["ETHUSDT"] {
		// The open signal's own entry may be new: a runner killed while it opened the signal
		// leaves the ledger's record to its successor.
		if e.ID != open.ID && !slices.ContainsFunc(before["ETHUSDT"], func(b *domain.HistoryEntry) bool {
			return b.ID == e.ID
		}) {
			return fmt.Errorf("signal %s was opened on the drained ETHUSDT: %+v", e.ID, e)
		}
		closed = closed || e.ID == open.ID && e.Has(runner.KindOpen) && (e.Has(runner.KindClose) || e.Has(runner.KindCancel))
	}
	if !closed {
		return fmt.Errorf("signal %s, open on ETHUSDT when it was drained, was not watched to its close: %+v",
			open.ID, after["ETHUSDT"])
	}
	if sig, err := c.state.ReadSignal(ctx, eth); err != nil || sig != nil {
		return fmt.Errorf("ETHUSDT still holds a signal after its drain: %+v, %v", sig, err)
	}
	if len(after["BTCUSDT"]) <= len(before["BTCUSDT"]) {
		return fmt.Errorf("BTCUSDT stopped trading: %d ledger entries before the drain, %d after",
			len(before["BTCUSDT"]), len(after["BTCUSDT"]))
	}
	t.Logf("%s: signal %s watched to its close on the drained ETHUSDT; BTCUSDT went from %d to %d signals",
		c.b, open.ID, len(before["BTCUSDT"]), len(after["BTCUSDT"]))
	return nil
}
