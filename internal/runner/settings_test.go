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
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/runner"
)

func noEnv(string) string { return "" }

func TestSettingsFromTheOperatorsFlags(t *testing.T) {
	var usage bytes.Buffer
	s, err := runner.ParseSettings([]string{"--strategy-name=breakout", "--exchange=simulated",
		"--symbols=BTCUSDT,ETHUSDT", "--backend=StrategyState", "--namespace=prod", "--lease=breakout-runner",
		"--data-dir=/var/lib/strategy", "--strategy=indicator", "--option", "fast=3", "--option=slow=9",
		"--start=2026-11-01T00:00:00Z", "--speed=60", "--drain=SOLUSDT", "--percent-fee=0.04"}, noEnv, &usage)
	if err != nil {
		t.Fatal(err)
	}
	if s.Rules.PercentFee != 0.04 || s.Rules.PercentSlippage != 0.1 || s.Rules.ScheduleAwaitMinutes != 120 {
		t.Fatalf("rules %+v: want the fee given and backtest-kit's other defaults", s.Rules)
	}
	if !slices.Equal(s.Symbols, []string{"BTCUSDT", "ETHUSDT", "SOLUSDT"}) || !slices.Equal(s.Draining, []string{"SOLUSDT"}) {
		t.Fatalf("a drained symbol is watched too: symbols %v, draining %v", s.Symbols, s.Draining)
	}
	if !slices.Equal(s.RiskProfiles, []string{"breakout"}) {
		t.Fatalf("risk profiles %v: want the one named after the strategy", s.RiskProfiles)
	}
	if s.StrategyName != "breakout" || s.Backend != v1.BackendStrategyState ||
		s.StrategyOptions["fast"] != "3" || s.StrategyOptions["slow"] != "9" || s.Speed != 60 ||
		!s.Start.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("parsed %+v", s)
	}
}

// TestRiskProfilesAreTheOnesListed: --risk-profiles lists the profiles the runner writes,
// the first the built-in strategies' own.
func TestRiskProfilesAreTheOnesListed(t *testing.T) {
	s, err := runner.ParseSettings([]string{"--strategy-name=breakout", "--exchange=simulated", "--symbols=BTCUSDT",
		"--backend=File", "--data-dir=/tmp/x", "--risk-profiles=team-risk, desk-risk"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.RiskProfiles, []string{"team-risk", "desk-risk"}) {
		t.Fatalf("risk profiles %v, want team-risk and desk-risk", s.RiskProfiles)
	}
}

func TestSettingsFromTheEnvironment(t *testing.T) {
	env := map[string]string{"STRATEGY_NAME": "s", "EXCHANGE_NAME": "e", "SYMBOLS": "BTCUSDT",
		"BACKEND": "File", "DATA_DIR": "/tmp/x"}
	s, err := runner.ParseSettings(nil, func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil || s.DataDir != "/tmp/x" || s.Backend != v1.BackendFile {
		t.Fatalf("%+v, %v", s, err)
	}
}

func TestSettingsErrorsSayWhatIsMissing(t *testing.T) {
	_, err := runner.ParseSettings([]string{"--backend=ConfigMap"}, noEnv, &bytes.Buffer{})
	if err == nil {
		t.Fatal("no error for missing settings")
	}
	for _, want := range []string{"--strategy-name (or STRATEGY_NAME) is required", "--exchange (or EXCHANGE_NAME)",
		"--symbols (or SYMBOLS)", "--namespace (or POD_NAMESPACE)", "--lease (or LEASE_NAME)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	for args, want := range map[string]string{
		"--backend=Floppy":                    `--backend: unknown backend "Floppy": want ConfigMap, File, MongoDB, PostgreSQL, Redis or StrategyState`,
		"--speed=0":                           "--speed must be positive",
		"--percent-slippage=-1":               "--percent-slippage must be a percentage from 0 to under 100, got -1",
		"--schedule-await-minutes=0":          "--schedule-await-minutes must be positive, got 0",
		"--start=yesterday":                   `--start "yesterday" is not an RFC 3339 time`,
		"--strategy-name=a --strategy-name=b": "flag --strategy-name is given twice",
		"--option nokey":                      `want KEY=VALUE, got "nokey"`,
		"--symbols=BTCUSDT --drain=BTCUSDT":   "--drain: BTCUSDT is in --symbols too",
		"--renew-deadline=20s":                "want 0 < --retry-period (2s) < --renew-deadline (20s) < --lease-duration (15s)",
		"--backend=Redis":                     "the Redis backend needs its connection URL in STORE_URL",
		"--backend=File --data-dir=/d --history-live-entries=0": "--history-live-entries must be positive",
		"--backend=ConfigMap --replicas=copy:Redis":             "--cache-max-entries and --replicas need a database backend",
		"--backend=Redis --replicas=copy":                       `--replicas "copy": want NAME:BACKEND[:QUEUE]`,
		"--backend=Redis --replicas=copy:File":                  `--replicas "copy:File": "File" is not MongoDB, PostgreSQL or Redis`,
		"--backend=Redis --replicas=copy:Redis:0":               `--replicas "copy:Redis:0": the queue size must be a positive number`,
		"--backend=Redis --replicas=dr-copy:Redis":              `replica "dr-copy" needs its connection URL in STORE_REPLICA_DR_COPY_URL`,
		"--backend=Redis --replicas=a:Redis,a:PostgreSQL":       `--replicas: two replicas named "a"`,
		"--backend=Redis --cache-max-entries=-1":                "--cache-max-entries and --cache-max-bytes cannot be negative",
		"--metrics-bind-address=8080":                           `--metrics-bind-address "8080": want host:port, or 0`,
		"--health-probe-bind-address=$(POD_IP)":                 `--health-probe-bind-address "$(POD_IP)": want host:port`,
	} {
		_, err := runner.ParseSettings(strings.Fields(args), noEnv, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", args, err, want)
		}
	}
}

func TestHelpReadsWell(t *testing.T) {
	var usage bytes.Buffer
	_, err := runner.ParseSettings([]string{"--help"}, noEnv, &usage)
	if !errors.Is(err, runner.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"runner runs one trading strategy", "-strategy-name", "env STRATEGY_NAME",
		"ConfigMap, File, MongoDB, PostgreSQL, Redis or StrategyState", "-speed"} {
		if !strings.Contains(usage.String(), want) {
			t.Errorf("--help does not mention %q:\n%s", want, usage.String())
		}
	}
}

// TestLayerSettings: the cache and the replicas, their URLs from the environment.
func TestLayerSettings(t *testing.T) {
	env := map[string]string{"STORE_URL": "redis://r/0", "STORE_REPLICA_COPY_URL": "postgres://p/db",
		"STORE_REPLICA_DR_URL": "mongodb://m/db"}
	s, err := runner.ParseSettings([]string{"--strategy-name=s", "--exchange=e", "--symbols=BTCUSDT",
		"--backend=Redis", "--namespace=ns", "--lease=l", "--cache-max-entries=50", "--cache-max-bytes=4096",
		"--replicas=copy:PostgreSQL,dr:MongoDB:10"}, func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Cache == nil || s.Cache.MaxEntries != 50 || s.Cache.MaxBytes != 4096 {
		t.Errorf("cache %+v, want 50 entries and 4096 bytes", s.Cache)
	}
	want := []runner.Replica{{Name: "copy", Backend: "PostgreSQL", URL: "postgres://p/db"},
		{Name: "dr", Backend: "MongoDB", URL: "mongodb://m/db", QueueSize: 10}}
	if !slices.Equal(s.Replicas, want) {
		t.Errorf("replicas %+v, want %+v", s.Replicas, want)
	}
}

// TestObservabilitySettings: metrics and probes are off unless an address is given.
func TestObservabilitySettings(t *testing.T) {
	base := []string{"--strategy-name=s", "--exchange=e", "--symbols=BTCUSDT", "--backend=File", "--data-dir=/d"}
	s, err := runner.ParseSettings(base, noEnv, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if s.MetricsBindAddress != "0" || s.HealthProbeBindAddress != "0" {
		t.Errorf("by default: metrics %q, probes %q; want both 0 (off)", s.MetricsBindAddress, s.HealthProbeBindAddress)
	}
	s, err = runner.ParseSettings(append(base, "--metrics-bind-address=10.0.0.7:8080",
		"--health-probe-bind-address=:8081"), noEnv, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if s.MetricsBindAddress != "10.0.0.7:8080" || s.HealthProbeBindAddress != ":8081" {
		t.Errorf("metrics %q, probes %q", s.MetricsBindAddress, s.HealthProbeBindAddress)
	}
}
