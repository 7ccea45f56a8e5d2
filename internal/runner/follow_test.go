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

package runner_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/market"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/persist/filestore"
	"github.com/strategyops/strategy-operator/internal/persist/strategystatestore"
	"github.com/strategyops/strategy-operator/internal/runner"
	"github.com/strategyops/strategy-operator/internal/strategy"
	"github.com/strategyops/strategy-operator/internal/testenv"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

func TestFollowTheStoreFile(t *testing.T) {
	testFollow(t, v1.BackendFile)
}

func TestFollowTheStoreConfigMap(t *testing.T) {
	testFollow(t, v1.BackendConfigMap)
}

func TestFollowTheStoreStrategyState(t *testing.T) {
	testFollow(t, v1.BackendStrategyState)
}

func TestFollowTheStoreRedis(t *testing.T) {
	testFollow(t, v1.BackendRedis)
}

func TestFollowTheStorePostgreSQL(t *testing.T) {
	testFollow(t, v1.BackendPostgreSQL)
}

func TestFollowTheStoreMongoDB(t *testing.T) {
	testFollow(t, v1.BackendMongoDB)
}

// followFixture is an engine trading one symbol, and a user who edits its state by hand,
// as kubectl (or a database client) would.
type followFixture struct {
	ctx      context.Context
	ns       string
	backend  v1.PersistenceBackend
	k        domain.Key
	operator domain.Backend // makes the store objects; the runner may not
	user     *domain.Persistence
	engine   *runner.Engine
	state    *domain.Persistence // the engine's
	start    func(t *testing.T)
	notices  []runner.Notice
	at       time.Time
}

const followSymbol = "BTCUSDT"

func newFollowFixture(t *testing.T, b v1.PersistenceBackend) *followFixture {
	ctx := context.Background()
	f := &followFixture{ctx: ctx, ns: env.Namespace(ctx, t), backend: b, at: t0,
		k: domain.StrategyKey(followSymbol, "crossover", "simulated")}
	open := func(create bool) domain.Backend {
		opts := domain.KubeOptions{Namespace: f.ns, Create: create}
		if b == v1.BackendConfigMap {
			return domain.ConfigMapBackend(env.Client, opts)
		}
		return domain.StrategyStateBackend(env.Client, opts)
	}
	if domain.HomeOf(b) == domain.InDatabase {
		db, err := domain.OpenDatabase(ctx, b, testenv.StartDatabase(t, string(b), "follow"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		open = func(bool) domain.Backend { return db.Backend(domain.NoFencing) }
	}
	openEngine := func() domain.Backend { return open(false) }
	if domain.HomeOf(b) == domain.OnVolume {
		dir := t.TempDir()
		open = func(bool) domain.Backend { return handEdits(dir) }
		openEngine = func() domain.Backend { return domain.FileBackend(dir) } // locks each folder it opens
	}
	f.operator = open(true)
	f.makeObjects(t)
	f.user = domain.New(open(false))
	s, err := strategy.New("indicator", map[string]string{"fast": "5", "slow": "20"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.user.Close() })
	// start starts a runner's engine on the state, as a restarted runner would: the one
	// before it is gone, with the locks it held.
	f.start = func(t *testing.T) {
		t.Helper()
		if f.state != nil {
			_ = f.state.Close()
		}
		p := domain.New(openEngine())
		f.state = p
		t.Cleanup(func() { _ = p.Close() })
		f.engine = runner.New(runner.Config{StrategyName: "crossover", ExchangeName: "simulated",
			Symbols: []string{followSymbol}, Source: market.Simulated{Seed: 2026}, Strategy: s, Persist: p,
			Limits: v1.DefaultSignalLimits, Start: t0, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Notify: func(n runner.Notice) { f.notices = append(f.notices, n) }})
		if err := f.engine.Restore(ctx); err != nil {
			t.Fatal(err)
		}
	}
	f.start(t)
	return f
}

// handEdits is the File backend as a user's editor reaches it: the same files in the same
// folders, written without the folder lock the runner holds (an editor takes none).
func handEdits(dir string) domain.Backend {
	files := domain.FileBackend(dir)
	return func(ctx context.Context, d domain.Domain, k domain.Key) (driver.Driver, error) {
		drv, err := files(ctx, d, k)
		if err != nil {
			return nil, err
		}
		return unlocked{drv.(*filestore.Driver)}, nil
	}
}

type unlocked struct{ *filestore.Driver }

func (u unlocked) Init(context.Context, bool) (driver.InitReport, error) {
	return driver.InitReport{}, os.MkdirAll(u.Dir(), 0o755)
}

func (f *followFixture) makeObjects(t *testing.T) {
	t.Helper()
	for _, c := range domain.StrategyContexts("crossover", "simulated", []string{followSymbol}) {
		if err := domain.CreateObject(f.ctx, f.operator, c.Domain, c.Key); err != nil {
			t.Fatal(err)
		}
	}
}

// untilOpen steps the engine a minute at a time until a signal is open.
func (f *followFixture) untilOpen(t *testing.T) *v1.Signal {
	t.Helper()
	for {
		if f.at = f.at.Add(time.Minute); f.at.After(tEnd) {
			t.Fatal("no signal opened")
		}
		if _, err := f.engine.Step(f.ctx, f.at); err != nil {
			t.Fatal(err)
		}
		if sig := f.stored(t); sig != nil {
			return sig
		}
	}
}

// follow runs Follow and expects exactly one notice, of reason want.
func (f *followFixture) follow(t *testing.T, want string) {
	t.Helper()
	f.notices = nil
	if err := f.engine.Follow(f.ctx); err != nil {
		t.Fatal(err)
	}
	if len(f.notices) != 1 || f.notices[0].Reason != want {
		t.Fatalf("want one notice %s, got %+v", want, f.notices)
	}
}

func (f *followFixture) stored(t *testing.T) *v1.Signal {
	t.Helper()
	sig, err := f.user.ReadSignal(f.ctx, f.k)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func (f *followFixture) risk(t *testing.T) v1.RiskPositions {
	t.Helper()
	r, err := f.user.ReadRisk(f.ctx, domain.RiskKey("crossover", "simulated"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *followFixture) write(t *testing.T, sig *v1.Signal) {
	t.Helper()
	if err := f.user.WriteSignal(f.ctx, f.k, sig); err != nil {
		t.Fatal(err)
	}
}

// testFollow edits a running engine's state by hand and checks that the engine takes
// each edit as the user's intent.
func testFollow(t *testing.T, b v1.PersistenceBackend) {
	f := newFollowFixture(t, b)
	open := f.untilOpen(t)
	if err := f.engine.Follow(f.ctx); err != nil || len(f.notices) != 0 {
		t.Fatalf("an untouched store: %v, notices %+v", err, f.notices)
	}
	t.Run("an edit of take profit and stop loss is adopted", func(t *testing.T) { open = f.adopts(t, open) })
	t.Run("an edit of another field is refused and the runner's signal written back", func(t *testing.T) {
		edited := *open
		edited.PriceOpen *= 1.001 // within the 0.5 % the stop loss is at least away: still a valid signal
		f.write(t, &edited)
		f.follow(t, runner.NoticeEditRefused)
		if got := f.stored(t); got.PriceOpen != open.PriceOpen {
			t.Fatalf("priceOpen stays %v, got %v", open.PriceOpen, got.PriceOpen)
		}
	})
	t.Run("an invalid edit is refused", func(t *testing.T) { f.refusesInvalid(t, open) })
	if domain.HomeOf(b) == domain.InObjects { // a database or a folder keeps no store object to delete
		t.Run("a deleted store object is written back", func(t *testing.T) { f.writesBack(t, open) })
	}
	t.Run("a signal removed by hand is cancelled", func(t *testing.T) { f.cancels(t, open) })
	t.Run("the ledger replays into the signal as it ended", func(t *testing.T) { f.replays(t, open) })
	t.Run("a signal written by hand is found by the next conditional write", func(t *testing.T) { f.conflicts(t, open) })
	t.Run("edits made while no runner ran are judged at the restart", f.restarts)
}

// restarts edits the state while no runner runs: the restarted engine applies the rules
// Follow applies to an edit made while it runs.
func (f *followFixture) restarts(t *testing.T) {
	open := f.stored(t)
	if open == nil {
		t.Fatal("no signal open to edit")
	}
	edited := *open
	edited.PriceOpen *= 1.001
	f.write(t, &edited)
	f.notices = nil
	f.start(t)
	if len(f.notices) != 1 || f.notices[0].Reason != runner.NoticeEditRefused {
		t.Fatalf("a restart after an edit of priceOpen: want one notice %s, got %+v", runner.NoticeEditRefused, f.notices)
	}
	if got := f.stored(t); got.PriceOpen != open.PriceOpen {
		t.Fatalf("priceOpen stays %v after the restart, got %v", open.PriceOpen, got.PriceOpen)
	}
	store, err := f.user.Signal.Store(f.ctx, f.k)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Remove(f.ctx, followSymbol); err != nil {
		t.Fatal(err)
	}
	f.notices = nil
	f.start(t)
	if len(f.notices) != 1 || f.notices[0].Reason != runner.NoticeCancelledByUser {
		t.Fatalf("a restart after the signal's removal: want one notice %s, got %+v", runner.NoticeCancelledByUser,
			f.notices)
	}
	for _, h := range historyOf(t, f.user, f.k) {
		if h.ID == open.ID && !h.Has(runner.KindCancel) {
			t.Fatalf("the ledger does not record the cancel: %+v", h)
		}
	}
	if got := f.stored(t); got != nil {
		t.Fatalf("a signal came back: %+v", got)
	}
}

func (f *followFixture) adopts(t *testing.T, open *v1.Signal) *v1.Signal {
	edited := *open
	edited.PriceTakeProfit = open.PriceOpen + (open.PriceTakeProfit-open.PriceOpen)*1.1
	edited.PriceStopLoss = open.PriceOpen + (open.PriceStopLoss-open.PriceOpen)*1.1
	minutes := ptr.Deref(open.MinuteEstimatedTime, 600) + 30
	edited.MinuteEstimatedTime = &minutes
	f.write(t, &edited)
	f.follow(t, runner.NoticeEditAdopted)
	if got := f.stored(t); got.PriceTakeProfit != edited.PriceTakeProfit || ptr.Deref(got.MinuteEstimatedTime, 0) != minutes {
		t.Fatalf("the edit was overwritten: take profit %v, minuteEstimatedTime %v", got.PriceTakeProfit,
			ptr.Deref(got.MinuteEstimatedTime, 0))
	}
	r := f.risk(t)
	if len(r) != 1 || r[0].Position.PriceTakeProfit != edited.PriceTakeProfit ||
		r[0].Position.PriceStopLoss != edited.PriceStopLoss {
		t.Fatalf("the risk profile keeps the old levels: %+v", r)
	}
	if err := f.engine.Follow(f.ctx); err != nil || len(f.notices) != 1 {
		t.Fatalf("an adopted edit is noticed once: %v, %+v", err, f.notices)
	}
	return &edited
}

func (f *followFixture) refusesInvalid(t *testing.T, open *v1.Signal) {
	edited := *open
	edited.PriceTakeProfit, edited.PriceStopLoss = open.PriceStopLoss, open.PriceTakeProfit // the wrong sides
	if f.backend == v1.BackendStrategyState {
		// Past the store's own check, straight to the API server, as kubectl edit would.
		var st v1.StrategyState
		name := client.ObjectKey{Namespace: f.ns, Name: strategystatestore.ObjectName(domain.StateKey(f.k))}
		if err := env.Client.Get(f.ctx, name, &st); err != nil {
			t.Fatal(err)
		}
		st.Spec.Signal = &edited
		if err := env.Client.Update(f.ctx, &st); !apierrors.IsInvalid(err) {
			t.Fatalf("the API server took an invalid signal: %v", err)
		}
		return
	}
	f.write(t, &edited)
	f.follow(t, runner.NoticeEditRefused)
	if got := f.stored(t); got.PriceTakeProfit != open.PriceTakeProfit {
		t.Fatalf("the invalid take profit stayed: %v", got.PriceTakeProfit)
	}
}

func (f *followFixture) writesBack(t *testing.T, open *v1.Signal) {
	var obj client.Object = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns,
		Name: domain.ConfigMapName(domain.Signal, f.k)}}
	if f.backend == v1.BackendStrategyState {
		obj = &v1.StrategyState{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns,
			Name: strategystatestore.ObjectName(domain.StateKey(f.k))}}
	}
	if err := env.Client.Delete(f.ctx, obj); err != nil {
		t.Fatal(err)
	}
	f.notices = nil
	if err := f.engine.Follow(f.ctx); err != nil || len(f.notices) != 0 {
		t.Fatalf("while the object is gone the engine waits, keeping its state: %v, %+v", err, f.notices)
	}
	f.makeObjects(t) // the operator makes it again, empty
	if f.stored(t) != nil {
		t.Fatal("the object was not made again empty")
	}
	f.follow(t, runner.NoticeWrittenBack)
	if got := f.stored(t); !sameSignal(got, open) {
		t.Fatalf("wrote back %+v, want %+v", got, open)
	}
	if snap, err := f.user.ReadSnapshot(f.ctx, f.k); err != nil || snap == nil || *snap.PendingSignalID != open.ID {
		t.Fatalf("the snapshot was not written back: %+v, %v", snap, err)
	}
}

func (f *followFixture) cancels(t *testing.T, open *v1.Signal) {
	store, err := f.user.Signal.Store(f.ctx, f.k)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Remove(f.ctx, followSymbol); err != nil {
		t.Fatal(err)
	}
	f.follow(t, runner.NoticeCancelledByUser)
	if len(f.risk(t)) != 0 {
		t.Fatal("the cancelled position stays in the risk profile")
	}
	var entry *domain.HistoryEntry
	for _, h := range historyOf(t, f.user, f.k) {
		if h.ID == open.ID {
			entry = h
		}
	}
	if entry == nil || !entry.Has(runner.KindCancel) || entry.Has(runner.KindClose) {
		t.Fatalf("the ledger does not record the cancel: %+v", entry)
	}
	if ev := entry.Events[len(entry.Events)-1]; ev.Reason != runner.ReasonUser {
		t.Fatalf("cancel reason %q, want %q", ev.Reason, runner.ReasonUser)
	}
	if got := f.stored(t); got != nil {
		t.Fatalf("a signal came back: %+v", got)
	}
}

// conflicts writes a signal by hand while the engine holds none: the engine's next write
// of that key, conditional on the revision it last saw, fails; it removes the foreign
// signal, says so, and opens its own.
func (f *followFixture) conflicts(t *testing.T, cancelled *v1.Signal) {
	foreign := *cancelled
	foreign.ID = "written-by-hand"
	f.write(t, &foreign)
	f.notices = nil
	for {
		if f.at = f.at.Add(time.Minute); f.at.After(tEnd) {
			t.Fatal("no signal of the engine's own opened")
		}
		if _, err := f.engine.Step(f.ctx, f.at); err != nil {
			t.Fatal(err)
		}
		if sig := f.stored(t); sig != nil && sig.ID != foreign.ID {
			if sig.ID == cancelled.ID {
				t.Fatal("the cancelled signal was opened again")
			}
			break
		}
	}
	if len(f.notices) != 1 || f.notices[0].Reason != runner.NoticeEditRefused ||
		!strings.Contains(f.notices[0].Message, "written-by-hand") {
		t.Fatalf("want one notice of the foreign signal's removal, got %+v", f.notices)
	}
}

func sameSignal(a, b *v1.Signal) bool {
	return a != nil && b != nil && a.ID == b.ID && a.PriceOpen == b.PriceOpen &&
		a.PriceTakeProfit == b.PriceTakeProfit && a.PriceStopLoss == b.PriceStopLoss
}

// replays checks the ledger entry of open, the signal as it ended after the edits above:
// every adopted and refused edit and the cancel are recorded with the levels before and
// after, in order, and playing them from the levels it opened with ends at its own.
func (f *followFixture) replays(t *testing.T, open *v1.Signal) {
	var entry *domain.HistoryEntry
	for _, h := range historyOf(t, f.user, f.k) {
		if h.ID == open.ID {
			entry = h
		}
	}
	if entry == nil {
		t.Fatalf("no ledger entry for signal %s", open.ID)
	}
	var kinds []string
	for _, ev := range entry.Events {
		if len(kinds) == 0 || kinds[len(kinds)-1] != ev.Kind {
			kinds = append(kinds, ev.Kind)
		}
	}
	want := []string{domain.EventOpened, domain.EventEdited, domain.EventEditRefused, domain.EventCancelled}
	if !slices.Equal(kinds, want) {
		t.Fatalf("the ledger records %v (repeats folded), want %v: %+v", kinds, want, entry.Events)
	}
	got, err := entry.Replay()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, domain.LevelsOf(open)) {
		t.Fatalf("the ledger replays to %+v, but the signal ended at %+v", *got, *domain.LevelsOf(open))
	}
	if !reflect.DeepEqual(got, domain.LevelsOf(entry.Signal)) {
		t.Fatalf("the ledger's row holds %+v, not the adopted %+v", *domain.LevelsOf(entry.Signal), *got)
	}
	if last := entry.Events[len(entry.Events)-1]; !reflect.DeepEqual(last.Before, got) {
		t.Fatalf("the cancel records the levels %+v, want %+v", last.Before, *got)
	}
	refusals, wantRefusals := 0, 2 // priceOpen edited, then an invalid edit
	if f.backend == v1.BackendStrategyState {
		wantRefusals = 1 // the API server refused the invalid edit itself
	}
	for _, ev := range entry.Events {
		if ev.Kind == domain.EventEditRefused {
			refusals++
			if ev.Note == "" {
				t.Fatalf("a refused edit says not why: %+v", ev)
			}
		}
	}
	if refusals != wantRefusals {
		t.Fatalf("the ledger records %d refused edits, want %d: %+v", refusals, wantRefusals, entry.Events)
	}
}
