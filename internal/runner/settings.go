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

package runner

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/live"
	"github.com/strategyops/strategy-operator/internal/persist/cachestore"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
)

// DefaultFollowPeriod is how often the runner reads its open signals back from the
// store unless told otherwise.
const DefaultFollowPeriod = 5 * time.Second

// Settings are the runner's command line, as the operator writes it into the pod.
type Settings struct {
	StrategyName, ExchangeName string
	// Symbols are all the symbols the runner watches, Draining among them.
	Symbols []string
	// Draining are symbols removed from the strategy: watched until their signals close,
	// never given a new one.
	Draining []string
	// RiskProfiles are the risk profiles the runner writes (the first for the built-in
	// strategies): --risk-profiles, or one named after the strategy.
	RiskProfiles              []string
	Backend                   v1.PersistenceBackend
	Namespace, Lease, DataDir string
	// StoreURL connects to the database of a database backend (Redis, PostgreSQL, MongoDB). It comes
	// from the environment only (StoreURLEnv, set from a Secret), never from a flag, so
	// that it shows in no process listing or pod spec.
	StoreURL string
	// Cache, when not nil, puts a cache in front of a database backend's stores.
	Cache *cachestore.Options
	// Replicas are databases the state is copied to, asynchronously.
	Replicas []Replica
	// Strategy is the built-in strategy to run, with its options.
	Strategy        string
	StrategyOptions map[string]string
	// Market is "simulated" (with Seed) or a CSV file path.
	Market string
	Seed   uint64
	// Start is the first candle of a symbol without state; Speed runs the clock faster.
	Start time.Time
	Speed float64
	// Until stops the run at this simulated time (zero: run until stopped).
	Until time.Time
	// LeaseDuration, RenewDeadline and RetryPeriod time the leader election on the Lease.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// GracePeriod is how long runner exec's process has between SIGTERM and SIGKILL.
	GracePeriod time.Duration
	// TerminationMessagePath is where a fatal error is written for the pod's status.
	TerminationMessagePath string
	// StrategyObject is the Strategy the runner works for: the owner its database must
	// record, and what its Warning events are about.
	StrategyObject string
	// PodUID is the UID of the runner's pod, recorded on its Lease with what it trades
	// (package handshake).
	PodUID string
	// FollowPeriod is how often the runner reads its open signals back from the store
	// to notice hand edits (0: DefaultFollowPeriod).
	FollowPeriod time.Duration
	// QuietAfter is how much market time a traded symbol may go flat with no proposal
	// before the runner says it does not trade (0: never; package tradingstatus).
	// Default: v1.DefaultQuietAfter, spec.quietAfter's.
	QuietAfter time.Duration
	// LiveEntries and Retention bound the ledger where only the runner reaches it (File):
	// past LiveEntries a symbol's oldest finished signals move to its archive, which
	// Retention bounds (spec.history; the operator reads and bounds the other backends').
	LiveEntries int
	Retention   domain.Retention
	// Rules are backtest-kit's settings the lifecycle follows: fees, slippage, timeouts.
	Rules live.Params
	// MetricsBindAddress serves /metrics, HealthProbeBindAddress /healthz and /readyz
	// (host:port; "0": not served).
	MetricsBindAddress, HealthProbeBindAddress string
}

// Replica is a database the state is copied to (--replicas), its URL from the environment
// (ReplicaURLEnv).
type Replica struct {
	Name      string
	Backend   v1.PersistenceBackend
	URL       string
	QueueSize int
}

// ErrHelp: --help was asked for; the usage was written.
var ErrHelp = flag.ErrHelp

type optionList map[string]string

func (o optionList) String() string { return "" }
func (o optionList) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	o[k] = val
	return nil
}

// RiskProfile is the risk profile the built-in strategies keep their positions under: the
// first of RiskProfiles, or the one named after the strategy.
func (s Settings) RiskProfile() string {
	if len(s.RiskProfiles) > 0 {
		return s.RiskProfiles[0]
	}
	return s.StrategyName
}

// Traded are the symbols the runner trades: Symbols but those it drains.
func (s Settings) Traded() []string {
	return slices.DeleteFunc(slices.Clone(s.Symbols), func(sym string) bool { return slices.Contains(s.Draining, sym) })
}

// ParseSettings reads the command line; getenv supplies defaults (STRATEGY_NAME,
// EXCHANGE_NAME, SYMBOLS, BACKEND, POD_NAMESPACE, LEASE_NAME, DATA_DIR). A flag given twice
// is an error, so that a Strategy's spec.args cannot override what the operator set.
func ParseSettings(args []string, getenv func(string) string, usage io.Writer) (Settings, error) {
	s := Settings{StrategyOptions: map[string]string{}}
	fs := flag.NewFlagSet("runner", flag.ContinueOnError)
	fs.SetOutput(usage)
	var symbols, draining, riskProfiles, backend, start, until, replicas string
	var cacheEntries int
	var cacheBytes int64
	fs.StringVar(&s.StrategyName, "strategy-name", getenv("STRATEGY_NAME"), "name of the strategy in its persisted state (env STRATEGY_NAME)")
	fs.StringVar(&s.ExchangeName, "exchange", getenv("EXCHANGE_NAME"), "exchange the strategy trades on (env EXCHANGE_NAME)")
	fs.StringVar(&symbols, "symbols", getenv("SYMBOLS"), "comma-separated symbols, for example BTCUSDT,ETHUSDT (env SYMBOLS)")
	fs.StringVar(&draining, "drain", getenv("DRAIN_SYMBOLS"),
		"comma-separated symbols to watch until their signals close, opening none on them (env DRAIN_SYMBOLS)")
	fs.StringVar(&riskProfiles, "risk-profiles", "", "comma-separated risk profiles the strategy writes "+
		"(backtest-kit's riskName; default: one named after the strategy)")
	fs.StringVar(&backend, "backend", getenv("BACKEND"), "where state lives: "+domain.BackendNames()+" (env BACKEND; a database's URL in env "+StoreURLEnv+")")
	fs.StringVar(&s.Namespace, "namespace", getenv("POD_NAMESPACE"), "namespace of the Lease and of the state objects (env POD_NAMESPACE); on File, where the runner tells whether it trades")
	fs.StringVar(&s.Lease, "lease", getenv("LEASE_NAME"), "Lease that makes this runner the strategy's only writer (env LEASE_NAME); on File the runner only tells on it whether it trades")
	fs.IntVar(&cacheEntries, "cache-max-entries", 0,
		"put a cache of this many keys in front of a database backend's stores (0: no cache)")
	fs.Int64Var(&cacheBytes, "cache-max-bytes", 0, "the most bytes of values the cache holds (0: 64 MiB)")
	fs.StringVar(&replicas, "replicas", "", "databases to copy the state to: NAME:BACKEND[:QUEUE],… "+
		"(Redis, PostgreSQL, MongoDB), each URL in env "+domain.ReplicaURLEnv("NAME"))
	fs.StringVar(&s.DataDir, "data-dir", getenv("DATA_DIR"), "folder of the File backend's state (env DATA_DIR)")
	fs.StringVar(&s.Strategy, "strategy", "indicator", "built-in strategy: indicator (moving-average crossover) or scripted")
	fs.Var(optionList(s.StrategyOptions), "option", "strategy option KEY=VALUE, repeatable (indicator: fast, slow, take-profit, stop-loss, minutes; scripted: file)")
	fs.StringVar(&s.Market, "market", "simulated", "price source: simulated, or the path of a CSV candle file")
	fs.Uint64Var(&s.Seed, "seed", 1, "seed of the simulated market")
	fs.StringVar(&start, "start", "", "RFC 3339 time of the first candle of a symbol without state (default: now)")
	fs.Float64Var(&s.Speed, "speed", 1, "clock speed-up factor: 60 runs an hour of candles a minute (simulated time stands still while no runner runs)")
	fs.StringVar(&until, "until", "", "RFC 3339 simulated time at which to stop (default: run until stopped)")
	fs.DurationVar(&s.LeaseDuration, "lease-duration", 15*time.Second, "how long another runner waits before taking over a Lease that is not renewed")
	fs.DurationVar(&s.RenewDeadline, "renew-deadline", 10*time.Second, "how long the holder keeps retrying to renew the Lease before it stops trading")
	fs.DurationVar(&s.RetryPeriod, "retry-period", 2*time.Second, "how often runners try to acquire or renew the Lease")
	fs.DurationVar(&s.GracePeriod, "grace-period", 0, "runner exec: how long the process has between "+
		"SIGTERM and SIGKILL; under --lease-duration minus --renew-deadline minus --retry-period, so that it is "+
		"gone before another runner can take the Lease (default: half of that)")
	fs.DurationVar(&s.QuietAfter, "quiet-after", v1.DefaultQuietAfter, "market time a symbol may go flat with "+
		"no proposal before the runner says it does not trade (NoProposals); 0 never does")
	fs.StringVar(&s.PodUID, "pod-uid", getenv("POD_UID"),
		"the UID of the runner's pod, recorded on its Lease with what it trades and drains (env POD_UID)")
	fs.StringVar(&s.StrategyObject, "strategy-object", getenv("STRATEGY_OBJECT"),
		"the Strategy object this runner works for: on a database backend it writes only rows the database "+
			"records that Strategy as the owner of, and it reports hand edits of the state to it as Warning "+
			"events (env STRATEGY_OBJECT)")
	fs.IntVar(&s.LiveEntries, "history-live-entries", v1.DefaultLiveEntries,
		"finished signals a symbol's live ledger holds before the oldest move to its archive (File; spec.history)")
	fs.IntVar(&s.Retention.Entries, "history-archived-entries", v1.DefaultArchivedEntries,
		"finished signals a symbol's archive keeps, the newest (File; 0 keeps all)")
	fs.DurationVar(&s.Retention.MaxAge, "history-max-age", 0,
		"archived signals that ended longer ago are deleted (File; 0 keeps them)")
	fs.DurationVar(&s.FollowPeriod, "follow-period", DefaultFollowPeriod,
		"how often open signals are read back from the store to notice hand edits")
	s.Rules = live.Defaults()
	fs.Float64Var(&s.Rules.PercentFee, "percent-fee", s.Rules.PercentFee,
		"fee per side, in percent, in every PnL (backtest-kit's CC_PERCENT_FEE)")
	fs.Float64Var(&s.Rules.PercentSlippage, "percent-slippage", s.Rules.PercentSlippage,
		"slippage per side, in percent, in every PnL (CC_PERCENT_SLIPPAGE)")
	fs.Float64Var(&s.Rules.BreakevenThreshold, "breakeven-threshold", s.Rules.BreakevenThreshold,
		"percent beyond both sides' fees and slippage at which a signal reaches breakeven (CC_BREAKEVEN_THRESHOLD)")
	fs.Int64Var(&s.Rules.ScheduleAwaitMinutes, "schedule-await-minutes", s.Rules.ScheduleAwaitMinutes,
		"minutes a scheduled signal waits for its entry price before it is cancelled (CC_SCHEDULE_AWAIT_MINUTES)")
	fs.StringVar(&s.TerminationMessagePath, "termination-message-path", "",
		"file the container's termination message is read from: the runner writes a fatal error there")
	fs.StringVar(&s.MetricsBindAddress, "metrics-bind-address", "0",
		"host:port to serve Prometheus metrics on, at /metrics (0: not served)")
	fs.StringVar(&s.HealthProbeBindAddress, "health-probe-bind-address", "0",
		"host:port to serve /healthz (alive) and /readyz (restored and trading under the Lease) on (0: not served)")
	fs.Usage = func() {
		_, _ = fmt.Fprintf(usage, `runner runs one trading strategy: it restores every open signal from the persistence
backend, processes the candles it missed, then follows the market minute by minute.
The operator starts it with the settings below; run by hand, each can also come from its
environment variable.

Usage:
  runner [flags]                        run a built-in strategy
  runner exec [flags] -- <command…>     run your own process as the strategy: it gets the state
                                        API on the Unix socket in $STRATEGYOPS_STATE_SOCKET, and
                                        runs only while this runner holds the Lease
  runner rebuild-replicas [flags]       copy every store to the --replicas, and wait
  runner restore-from-replica NAME [flags]
                                        copy every store back from the replica NAME, after the
                                        backend lost state the replica kept

`)
		fs.PrintDefaults()
	}
	seen := map[string]bool{}
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name != "option" && seen[name] {
			return s, fmt.Errorf("flag --%s is given twice; spec.args cannot override what the operator sets", name)
		}
		seen[name] = strings.HasPrefix(a, "-")
	}
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	if fs.NArg() > 0 {
		return s, fmt.Errorf("unexpected argument %q (flags only; see --help)", fs.Arg(0))
	}
	var problems []string
	need := func(v, flagName, env string) {
		if v == "" {
			problems = append(problems, fmt.Sprintf("--%s (or %s) is required", flagName, env))
		}
	}
	need(s.StrategyName, "strategy-name", "STRATEGY_NAME")
	need(s.ExchangeName, "exchange", "EXCHANGE_NAME")
	s.Symbols = splitList(symbols)
	s.Draining = splitList(draining)
	if len(s.Symbols)+len(s.Draining) == 0 { // only draining: a state identity being given up
		need("", "symbols", "SYMBOLS")
	}
	for _, sym := range s.Draining {
		if slices.Contains(s.Symbols, sym) {
			problems = append(problems, fmt.Sprintf("--drain: %s is in --symbols too", sym))
		}
	}
	s.Symbols = append(s.Symbols, s.Draining...)
	if s.RiskProfiles = splitList(riskProfiles); len(s.RiskProfiles) == 0 {
		s.RiskProfiles = []string{s.StrategyName}
	}
	s.Backend = v1.PersistenceBackend(backend)
	problems = append(problems, s.checkBackend(backend, getenv)...)
	parse := func(v, flagName string, dst *time.Time) {
		if v == "" {
			return
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("--%s %q is not an RFC 3339 time", flagName, v))
		}
		*dst = t.UTC()
	}
	problems = append(problems, s.parseLayers(cacheEntries, cacheBytes, replicas, getenv)...)
	parse(start, "start", &s.Start)
	parse(until, "until", &s.Until)
	for _, r := range []struct {
		flag string
		v    float64
	}{{"percent-fee", s.Rules.PercentFee}, {"percent-slippage", s.Rules.PercentSlippage},
		{"breakeven-threshold", s.Rules.BreakevenThreshold}} {
		if r.v < 0 || r.v >= 100 || r.v != r.v {
			problems = append(problems, fmt.Sprintf("--%s must be a percentage from 0 to under 100, got %v", r.flag, r.v))
		}
	}
	if s.Rules.ScheduleAwaitMinutes <= 0 {
		problems = append(problems, fmt.Sprintf("--schedule-await-minutes must be positive, got %d",
			s.Rules.ScheduleAwaitMinutes))
	}
	if s.Speed <= 0 {
		problems = append(problems, fmt.Sprintf("--speed must be positive, got %v", s.Speed))
	}
	if s.FollowPeriod <= 0 {
		problems = append(problems, fmt.Sprintf("--follow-period must be positive, got %s", s.FollowPeriod))
	}
	if s.QuietAfter < 0 {
		problems = append(problems, fmt.Sprintf("--quiet-after must not be negative, got %s", s.QuietAfter))
	}
	problems = append(problems, s.checkTiming()...)
	for _, a := range [][2]string{{"metrics-bind-address", s.MetricsBindAddress},
		{"health-probe-bind-address", s.HealthProbeBindAddress}} {
		if _, _, err := net.SplitHostPort(a[1]); a[1] != "0" && err != nil {
			problems = append(problems, fmt.Sprintf("--%s %q: want host:port, or 0 to serve nothing", a[0], a[1]))
		}
	}
	if len(problems) > 0 {
		return s, errors.New(strings.Join(problems, "\n"))
	}
	return s, nil
}

// checkBackend checks the backend named backend and what it needs (a data folder; a
// namespace and Lease; a connection URL), and says what is wrong.
func (s *Settings) checkBackend(backend string, getenv func(string) string) []string {
	var problems []string
	need := func(v, flagName, env string) {
		if v == "" {
			problems = append(problems, fmt.Sprintf("--%s (or %s) is required", flagName, env))
		}
	}
	k, err := domain.Lookup(s.Backend)
	switch {
	case backend == "":
		return []string{"--backend (or BACKEND) is required: " + domain.BackendNames()}
	case err != nil:
		return []string{"--backend: " + err.Error()}
	case k.Home == domain.OnVolume:
		need(s.DataDir, "data-dir", "DATA_DIR")
		if s.LiveEntries < 1 || s.Retention.Entries < 0 || s.Retention.MaxAge < 0 {
			problems = append(problems, fmt.Sprintf("--history-live-entries must be positive, "+
				"--history-archived-entries and --history-max-age not negative; got %d, %d, %s",
				s.LiveEntries, s.Retention.Entries, s.Retention.MaxAge))
		}
		return problems
	}
	need(s.Namespace, "namespace", "POD_NAMESPACE")
	need(s.Lease, "lease", "LEASE_NAME")
	if s.StoreURL = getenv(StoreURLEnv); s.StoreURL == "" && k.Home == domain.InDatabase {
		problems = append(problems, fmt.Sprintf("the %s backend needs its connection URL in %s", s.Backend,
			StoreURLEnv))
	}
	return problems
}

// checkTiming checks the Lease's timing and the grace period (defaulting it), and says what
// is wrong with them.
func (s *Settings) checkTiming() []string {
	var problems []string
	if s.RetryPeriod <= 0 || s.RenewDeadline <= s.RetryPeriod || s.LeaseDuration <= s.RenewDeadline {
		problems = append(problems, fmt.Sprintf("want 0 < --retry-period (%s) < --renew-deadline (%s) < --lease-duration (%s)",
			s.RetryPeriod, s.RenewDeadline, s.LeaseDuration))
	}
	// A holder notices a lost Lease up to a retry period and a renew deadline after its last
	// renewal; another runner can take it a lease duration after. The process must be gone
	// in between.
	margin := s.LeaseDuration - s.RenewDeadline - s.RetryPeriod
	if s.GracePeriod == 0 {
		s.GracePeriod = margin / 2
	}
	if s.GracePeriod <= 0 || s.GracePeriod >= margin {
		problems = append(problems, fmt.Sprintf("want 0 < --grace-period (%s) < --lease-duration minus "+
			"--renew-deadline minus --retry-period (%s)", s.GracePeriod, margin))
	}
	return problems
}

// parseLayers reads the cache and replica flags into s, and says what is wrong with them.
func (s *Settings) parseLayers(cacheEntries int, cacheBytes int64, replicas string, getenv func(string) string) []string {
	var problems []string
	if (cacheEntries > 0 || len(replicas) > 0) && domain.HomeOf(s.Backend) != domain.InDatabase {
		problems = append(problems, "--cache-max-entries and --replicas need a database backend ("+
			domain.BackendNames(domain.InDatabase)+")")
	}
	switch {
	case cacheEntries < 0 || cacheBytes < 0:
		problems = append(problems, "--cache-max-entries and --cache-max-bytes cannot be negative")
	case cacheEntries > 0:
		s.Cache = &cachestore.Options{MaxEntries: cacheEntries, MaxBytes: cacheBytes}
	}
	seen := map[string]bool{}
	for _, spec := range splitList(replicas) {
		parts := strings.Split(spec, ":")
		r := Replica{Name: parts[0]}
		if len(parts) > 1 {
			r.Backend = v1.PersistenceBackend(parts[1])
		}
		if len(parts) == 3 {
			n, err := strconv.Atoi(parts[2])
			if err != nil || n <= 0 {
				problems = append(problems, fmt.Sprintf("--replicas %q: the queue size must be a positive number", spec))
			}
			r.QueueSize = n
		}
		switch {
		case len(parts) < 2 || len(parts) > 3 || r.Name == "":
			problems = append(problems, fmt.Sprintf("--replicas %q: want NAME:BACKEND[:QUEUE]", spec))
		case domain.HomeOf(r.Backend) != domain.InDatabase:
			problems = append(problems, fmt.Sprintf("--replicas %q: %q is not %s", spec, parts[1],
				domain.BackendNames(domain.InDatabase)))
		case seen[r.Name]:
			problems = append(problems, fmt.Sprintf("--replicas: two replicas named %q", r.Name))
		default:
			if r.URL = getenv(domain.ReplicaURLEnv(r.Name)); r.URL == "" {
				problems = append(problems, fmt.Sprintf("--replicas: replica %q needs its connection URL in %s", r.Name,
					domain.ReplicaURLEnv(r.Name)))
			}
		}
		seen[r.Name] = true
		s.Replicas = append(s.Replicas, r)
	}
	return problems
}

// StoreURLEnv is the environment variable that holds a database backend's connection URL.
const StoreURLEnv = domain.StoreURLEnv

// Getenv is os.Getenv, for ParseSettings.
func Getenv(k string) string { return os.Getenv(k) }

func splitList(list string) []string {
	var out []string
	for item := range strings.SplitSeq(list, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
