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

package sdk_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/childproc"
	"github.com/strategyops/strategy-operator/internal/live"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

// botEvent is a line the bot prints of a signal that opened, closed or was cancelled.
type botEvent struct {
	Bot       string         `json:"bot"`
	ID        string         `json:"id"`
	PriceOpen float64        `json:"priceOpen"`
	Reason    string         `json:"reason"`
	PnL       *v1.ProfitLoss `json:"pnl"`
}

// botRun is a runner exec running the bot, with what both printed.
type botRun struct {
	cmd  *exec.Cmd
	out  testenv.Output
	done chan struct{}
}

func (b *botRun) output() string { return b.out.String() }

// events are the bot's signal lines so far.
func (b *botRun) events() []botEvent {
	var out []botEvent
	for line := range strings.Lines(b.output()) {
		var e botEvent
		if json.Unmarshal([]byte(line), &e) == nil && e.Bot != "" {
			out = append(out, e)
		}
	}
	return out
}

// await waits up to d for the first event that match accepts.
func (b *botRun) await(t *testing.T, d time.Duration, what string, match func(botEvent) bool) botEvent {
	t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		for _, e := range b.events() {
			if match(e) {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s; runner exec and the bot printed:\n%s", what, d, b.output())
		}
	}
}

// exitCode waits up to d for the runner to exit and returns its code.
func (b *botRun) exitCode(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-b.done:
		return b.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("runner exec still runs after %s; it printed:\n%s", d, b.output())
		return -1
	}
}

const (
	botStrategy, botExchange, botSymbol = "bot", "simulated", "BTCUSDT"
	// The bot's clock runs this many times faster than the wall's (test/sdk/testdata/
	// fastclock.mjs): backtest-kit's live mode looks for a new minute every 5 seconds, so
	// a tick comes every 5 seconds, 5 minutes of the feed apart.
	clockFactor = 60
	feedCycle   = 1000 * time.Minute // the bot's simulated price starts again every feedCycle
)

// botStore is a backend the bot's runner exec keeps its state in: the runner's flags and
// environment for it, and the store to read what the bot left.
type botStore struct {
	flags, env []string
	backend    domain.Backend
	// leased: the runner writes under the Lease botLease in namespace (every backend but
	// File, whose runner locks its folder).
	leased    bool
	namespace string
	dataDir   string // File
}

const (
	botLease = "bot-runner"
	// botRisk is the risk profile the bot keeps its positions under (--risk-profiles).
	botRisk = "bot-risk"
)

// newBotStore makes the store of backend b for one test, with what the operator would
// provision for the bot's strategy (its objects, for a Kubernetes backend).
func newBotStore(t *testing.T, b v1.PersistenceBackend) botStore {
	t.Helper()
	ctx := t.Context()
	if domain.HomeOf(b) == domain.OnVolume {
		dir := t.TempDir()
		return botStore{flags: []string{"--backend=" + string(b), "--data-dir=" + dir},
			backend: domain.FileBackend(dir), dataDir: dir}
	}
	ns := env.Namespace(ctx, t)
	s := botStore{leased: true, namespace: ns, env: []string{"KUBECONFIG=" + env.Kubeconfig(t)},
		flags: []string{"--backend=" + string(b), "--namespace=" + ns, "--lease=" + botLease,
			"--lease-duration=6s", "--renew-deadline=3s", "--retry-period=500ms"}}
	if domain.HomeOf(b) == domain.InDatabase {
		url := testenv.StartDatabase(t, string(b), "bot")
		db, err := domain.OpenDatabase(ctx, b, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		s.backend, s.env = db.Backend(domain.NoFencing), append(s.env, domain.StoreURLEnv+"="+url)
		return s
	}
	create, err := domain.KubeBackend(b, env.Client, domain.KubeOptions{Namespace: ns, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range domain.StoreObjects(b, botStrategy, botExchange, []string{botSymbol}, botRisk) {
		if err := domain.CreateObject(ctx, create, o.Context.Domain, o.Context.Key); err != nil {
			t.Fatal(err)
		}
	}
	if s.backend, err = domain.KubeBackend(b, env.Client, domain.KubeOptions{Namespace: ns}); err != nil {
		t.Fatal(err)
	}
	return s
}

// signal reads the bot's signal from the store, as the bytes the store holds for it (File)
// or as JSON.
func (s botStore) signal(t *testing.T) ([]byte, *v1.Signal) {
	t.Helper()
	if s.dataDir != "" {
		stored, err := os.ReadFile(filepath.Join(s.dataDir, "signal", botSymbol+"_"+botStrategy+"_"+botExchange,
			botSymbol+".json"))
		if err != nil {
			t.Fatalf("the store holds no signal: %v", err)
		}
		var row v1.Signal
		if err := json.Unmarshal(stored, &row); err != nil {
			t.Fatalf("the store's signal %s: %v", stored, err)
		}
		return stored, &row
	}
	p := domain.New(s.backend)
	defer func() { _ = p.Close() }()
	row, err := p.ReadSignal(t.Context(), domain.StrategyKey(botSymbol, botStrategy, botExchange))
	if err != nil || row == nil {
		t.Fatalf("the store holds no signal: %v, %v", row, err)
	}
	stored, err := json.Marshal(row)
	if err != nil {
		t.Fatal(err)
	}
	return stored, row
}

// positions reads the positions of the bot's risk profile from the store.
func (s botStore) positions(t *testing.T) v1.RiskPositions {
	t.Helper()
	p := domain.New(s.backend)
	defer func() { _ = p.Close() }()
	positions, err := p.ReadRisk(t.Context(), domain.RiskKey(botRisk, botExchange))
	if err != nil {
		t.Fatalf("the positions of risk profile %s: %v", botRisk, err)
	}
	return positions
}

// startBot runs the bot under runner exec on store, with the clock of clock (FAST_CLOCK_*
// variables: every life of one test shares it).
func startBot(t *testing.T, folder string, store botStore, clock []string) *botRun {
	t.Helper()
	fastclock := "file://" + filepath.Join(testenv.RepoRoot(), "test", "sdk", "testdata", "fastclock.mjs")
	b := &botRun{done: make(chan struct{})}
	args := append([]string{"exec", "--strategy-name=" + botStrategy, "--exchange=" + botExchange,
		"--symbols=" + botSymbol, "--risk-profiles=" + botRisk, "--grace-period=1s"}, store.flags...)
	b.cmd = exec.Command(runner, append(args, "--", "node", "--import", fastclock, "bot.js")...)
	b.cmd.Dir = folder
	b.cmd.Env = append(append(os.Environ(), store.env...), clock...)
	b.cmd.Stdout, b.cmd.Stderr = &b.out, &b.out
	b.cmd.SysProcAttr = childproc.SysProcAttr() // a group of its own: runner exec and the bot
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-b.done
	})
	return b
}

// TestBacktestKitBotSurvivesSIGKILL: the bot of docs/backtest-kit-bot.md, backtest-kit 19.5.0
// in live mode with the adapter package, under runner exec on each backend: it opens a
// signal, kept in the store with its position under the risk profile the bot names (one
// the runner was given, not named after the strategy); the runner's process group is
// SIGKILLed, and the bot started again restores the same signal from the store and closes
// it at its take profit, with the PnL the runner's own engine computes for that row and
// price. The row stored is one backtest-kit's own file
// persistence writes back unchanged (on File, byte for byte). A bot fenced off is stopped:
// on File a second runner exec on the folder is refused before its bot starts; elsewhere
// the running one stops when another holder takes its Lease.
func TestBacktestKitBotSurvivesSIGKILL(t *testing.T) {
	folder := testenv.BotFolder(t)
	for _, b := range domain.Backends() {
		t.Run(string(b), func(t *testing.T) {
			t.Parallel()
			// A folder each: backtest-kit keeps its own files (candles, reports) under ./dump.
			own := t.TempDir()
			if out, err := exec.Command("cp", "-a", folder+"/.", own).CombinedOutput(); err != nil {
				t.Fatalf("copying the bot's folder: %v\n%s", err, out)
			}
			botSurvivesSIGKILL(t, own, newBotStore(t, b))
		})
	}
}

func botSurvivesSIGKILL(t *testing.T, folder string, store botStore) {
	now := time.Now()
	// The feed's clock starts 10 minutes into a cycle of its price (a rise of 2.5 % since the
	// cycle began), so that the first signal is not open across the fall at the cycle's end.
	cycle := feedCycle.Milliseconds() // the bot counts cycles from the Unix epoch
	origin := (now.UnixMilli()/cycle+1)*cycle + (10 * time.Minute).Milliseconds()
	clock := []string{"FAST_CLOCK_FACTOR=" + strconv.Itoa(clockFactor),
		"FAST_CLOCK_START=" + strconv.FormatInt(now.UnixMilli(), 10),
		"FAST_CLOCK_ORIGIN=" + strconv.FormatInt(origin, 10)}

	first := startBot(t, folder, store, clock)
	opened := first.await(t, time.Minute, "opened signal", func(e botEvent) bool { return e.Bot == "opened" })
	if err := syscall.Kill(-first.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	for _, e := range first.events() {
		if e.Bot == "closed" && e.ID == opened.ID {
			t.Fatalf("signal %s closed before the SIGKILL: the test proves nothing; the bot printed:\n%s", opened.ID,
				first.output())
		}
	}

	stored, row := store.signal(t)
	if row.ID != opened.ID || row.PriceOpen != opened.PriceOpen {
		t.Fatalf("the store's signal after the SIGKILL is %s, want the opened %s at %v", stored, opened.ID,
			opened.PriceOpen)
	}
	if positions := store.positions(t); len(positions) != 1 || positions[0].Position.Symbol != botSymbol {
		t.Errorf("the bot's risk profile %s holds %+v, want its one open position", botRisk, positions)
	}
	own := backtestKitWrites(t, stored)
	if store.dataDir != "" && !bytes.Equal(stored, own) || !testenv.SameJSON(stored, own) {
		t.Errorf("the store's signal differs from what backtest-kit's own persistence writes for it:\n"+
			" store        %s\n backtest-kit %s", stored, own)
	}

	second := startBot(t, folder, store, clock)
	closed := second.await(t, time.Minute, "close of "+opened.ID, func(e botEvent) bool {
		return e.Bot == "closed" || e.Bot == "cancelled"
	})
	if closed.ID != opened.ID || closed.Bot != "closed" || closed.Reason != "take_profit" || closed.PnL == nil {
		t.Fatalf("the restarted bot's first close is %+v, want %s closed at its take profit; it printed:\n%s",
			closed, opened.ID, second.output())
	}
	if closed.PnL.PriceOpen != row.PriceOpen {
		t.Errorf("closed at an open price of %v, the stored row's is %v", closed.PnL.PriceOpen, row.PriceOpen)
	}
	want, err := live.Defaults().ProfitLoss(row, closed.PnL.PriceClose)
	if err != nil {
		t.Fatal(err)
	}
	if !near(want.PnlPercentage, closed.PnL.PnlPercentage) || !near(want.PnlCost, closed.PnL.PnlCost) {
		t.Errorf("backtest-kit's PnL %+v, the runner's for the same row and close %+v", *closed.PnL, want)
	}
	t.Logf("signal %s opened at %v, SIGKILLed, restored and closed at %v (%s, %.4f %%)", opened.ID, row.PriceOpen,
		closed.PnL.PriceClose, closed.Reason, closed.PnL.PnlPercentage)

	if store.leased {
		env.StealLease(t.Context(), t, store.namespace, botLease)
		if code := second.exitCode(t, 30*time.Second); code == 0 {
			t.Errorf("runner exec exited 0 after another holder took its Lease; it printed:\n%s", second.output())
		}
		return
	}
	third := startBot(t, folder, store, clock)
	if code := third.exitCode(t, 30*time.Second); code != 1 {
		t.Errorf("a second runner exec on the folder exited %d, want 1; it printed:\n%s", code, third.output())
	}
	out := third.output()
	if !strings.Contains(out, "in use by another runner") || strings.Contains(out, `"bot":"started"`) {
		t.Errorf("a second runner exec on the folder was not refused before its bot started; it printed:\n%s", out)
	}
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	second.exitCode(t, 30*time.Second)
}

// near reports whether two PnL figures agree to 1e-9 of their size.
func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(a)) }

// backtestKitWrites is the file backtest-kit's own file persistence writes for row (JSON),
// as its signal of botSymbol.
func backtestKitWrites(t *testing.T, row []byte) []byte {
	t.Helper()
	dir := t.TempDir()
	if err := os.Symlink(testenv.BacktestKit(t), filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	// In dir: ESM resolves a script's imports from the folders above it.
	script, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "test", "sdk", "testdata", "bkwrite.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bkwrite.mjs"), script, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", "bkwrite.mjs", botSymbol, botStrategy, botExchange)
	cmd.Dir, cmd.Stdin = dir, bytes.NewReader(row)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("backtest-kit writing the row: %v\n%s", err, out)
	}
	var written []byte
	err = filepath.WalkDir(filepath.Join(dir, "dump"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == botSymbol+".json" && strings.Contains(path, "signal") {
			written, err = os.ReadFile(path)
		}
		return err
	})
	if err != nil || written == nil {
		t.Fatalf("backtest-kit wrote no signal file under %s (%v)", filepath.Join(dir, "dump"), err)
	}
	return written
}

// TestTheDocsBotIsTheOneTested: the bot docs/backtest-kit-bot.md shows is the file the tests
// run (examples/backtest-kit-bot/bot.js).
func TestTheDocsBotIsTheOneTested(t *testing.T) {
	root := testenv.RepoRoot()
	doc, err := os.ReadFile(filepath.Join(root, "docs", "backtest-kit-bot.md"))
	if err != nil {
		t.Fatal(err)
	}
	bot, err := os.ReadFile(filepath.Join(root, "examples", "backtest-kit-bot", "bot.js"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, found := strings.Cut(string(doc), "\n```js\n")
	block, _, closed := strings.Cut(block, "\n```\n")
	if !found || !closed {
		t.Fatal("docs/backtest-kit-bot.md shows no ```js block")
	}
	if block+"\n" != string(bot) {
		t.Errorf("the bot of docs/backtest-kit-bot.md is not examples/backtest-kit-bot/bot.js:\n%s", block)
	}
}
