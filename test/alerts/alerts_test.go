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

// Package alerts checks the alerting rules the project installs (config/prometheus) with
// promtool, from the Prometheus module (make promtool builds it): the rules parse, and each
// alert fires on a synthetic series of a failing runner and stays quiet on a healthy one
// (testdata/runner_alerts_test.yaml).
package alerts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/strategyops/strategy-operator/internal/testenv"
)

// promtool is $PROMTOOL, or the test fails saying how to build it.
func promtool(t *testing.T) string {
	t.Helper()
	p := os.Getenv("PROMTOOL")
	if p == "" {
		t.Fatal("PROMTOOL is not set: run make promtool, and PROMTOOL=bin/promtool-<version> (make test-unit sets it)")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("PROMTOOL=%s: %v: run make promtool", p, err)
	}
	return p
}

// ruleFile writes the groups of the PrometheusRule in file (relative to the repository
// root) as a Prometheus rule file in dir, as the Prometheus Operator hands them to
// Prometheus, and returns its path.
func ruleFile(t *testing.T, dir, file string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), file))
	if err != nil {
		t.Fatal(err)
	}
	var rule struct {
		Kind string         `json:"kind"`
		Spec map[string]any `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &rule); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if rule.Kind != "PrometheusRule" || rule.Spec["groups"] == nil {
		t.Fatalf("%s: a %s without spec.groups, want a PrometheusRule", file, rule.Kind)
	}
	out, err := yaml.Marshal(rule.Spec)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, strings.TrimSuffix(filepath.Base(file), ".yaml")+".rules.yaml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func run(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestRunnerAlerts: config/prometheus/runner_alerts.yaml passes promtool check rules, and
// promtool test rules runs its unit tests, which cover every alert it defines.
func TestRunnerAlerts(t *testing.T) {
	dir := t.TempDir()
	rules := ruleFile(t, dir, filepath.Join("config", "prometheus", "runner_alerts.yaml"))
	if out, err := run(t, dir, "check", "rules", "--lint=all", "--lint-fatal", rules); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	tests, err := os.ReadFile(filepath.Join("testdata", "runner_alerts_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "runner_alerts_test.yaml"), tests, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, dir, "test", "rules", "runner_alerts_test.yaml")
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules did not report success:\n%s", out)
	}
	// Every alert has a case that fires it.
	var defined struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
			} `json:"rules"`
		} `json:"groups"`
	}
	data, err := os.ReadFile(rules)
	if err == nil {
		err = yaml.Unmarshal(data, &defined)
	}
	if err != nil {
		t.Fatal(err)
	}
	var cases struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `json:"alertname"`
				ExpAlerts []map[string]any `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(tests, &cases); err != nil {
		t.Fatal(err)
	}
	firing := map[string]bool{}
	for _, tc := range cases.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				firing[a.Alertname] = true
			}
		}
	}
	n := 0
	for _, g := range defined.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if !firing[r.Alert] {
				t.Errorf("alert %s has no test case in which it fires", r.Alert)
			}
		}
	}
	if n == 0 {
		t.Fatalf("%s defines no alert", rules)
	}
}
