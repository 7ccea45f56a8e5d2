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
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/strategyops/strategy-operator/internal/runnermetrics"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

// observed are the flags that serve a runner's metrics and probes on one free port.
var observed = []string{"--metrics-bind-address=127.0.0.1:0", "--health-probe-bind-address=127.0.0.1:0"}

// serving waits for the runner to serve its metrics and probes, and returns the address.
func serving(t *testing.T, p *process) string {
	t.Helper()
	addr, _ := p.waitLog(t, "Serving metrics and probes", 20*time.Second)["address"].(string)
	if addr == "" {
		t.Fatalf("no address logged; the log:\n%s", p.log())
	}
	return "http://" + addr
}

// fetch GETs url and returns the status and the body.
func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// await polls url until its answer has status code and a body containing want.
func await(t *testing.T, p *process, url string, code int, want string, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got, body := fetch(t, url)
		if got == code && strings.Contains(body, want) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s answered %d %q, want %d with %q; the runner's log:\n%s", url, got, body, code, want, p.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var familyLine = regexp.MustCompile(`(?m)^# TYPE (\S+) `)

// families are the metric names a /metrics body has.
func families(body string) []string {
	matches := familyLine.FindAllStringSubmatch(body, -1)
	out := make([]string, 0, len(matches))
	for _, m := range matches {
		out = append(out, m[1])
	}
	return out
}

// sample is the value of the series written exactly as series in a /metrics body.
func sample(t *testing.T, body, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no series %s in:\n%s", series, body)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// prometheusRule is what the checks read of a PrometheusRule (monitoring.coreos.com/v1).
type prometheusRule struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Metadata   map[string]any     `json:"metadata"`
	Spec       prometheusRuleSpec `json:"spec"`
}

type prometheusRuleSpec struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			For         string            `json:"for,omitempty"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

var metricName = regexp.MustCompile(`strategyops_[a-z0-9_]+`)

// alertMetrics reads config/prometheus/runner_alerts.yaml, checks its shape, and returns
// the alerts and every metric their expressions and annotations name.
func alertMetrics(t *testing.T) (alerts, metrics []string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "prometheus", "runner_alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rule prometheusRule
	if err := yaml.UnmarshalStrict(data, &rule); err != nil {
		t.Fatal(err)
	}
	if rule.APIVersion != "monitoring.coreos.com/v1" || rule.Kind != "PrometheusRule" {
		t.Fatalf("%s %s, want a monitoring.coreos.com/v1 PrometheusRule", rule.APIVersion, rule.Kind)
	}
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("group %s: rule %+v lacks an alert name, expression, severity or summary", g.Name, r)
			}
			alerts = append(alerts, r.Alert)
			metrics = append(metrics, metricName.FindAllString(r.Expr, -1)...)
			for _, a := range r.Annotations {
				metrics = append(metrics, metricName.FindAllString(a, -1)...)
			}
		}
	}
	slices.Sort(metrics)
	return alerts, slices.Compact(metrics)
}

// TestRunnerObservable runs two runners of one strategy with their metrics and probes
// served: the holder is ready and serves every metric the alerts of config/prometheus use
// (so that renaming one breaks this test), with its fencing token; the standby is alive
// but not ready, and becomes ready with a larger token once the holder stops.
func TestRunnerObservable(t *testing.T) {
	ctx := context.Background()
	ns := leaseNamespace(ctx, t)
	kubeconfig := env.Kubeconfig(t)
	args := append([]string{"--strategy-name=lease-test", "--exchange=simulated", "--symbols=BTCUSDT",
		"--backend=ConfigMap", "--namespace=" + ns, "--lease=" + leaseName, "--start=2026-11-01T00:00:00Z",
		"--speed=600", "--lease-duration=4s", "--renew-deadline=3s", "--retry-period=500ms"}, observed...)

	a := startProcess(t, kubeconfig, args)
	urlA := serving(t, a)
	tokenA := token(a.waitLog(t, "Acquired the lease", 20*time.Second))
	await(t, a, urlA+runnermetrics.PathReadyz, http.StatusOK, string(runnermetrics.PhaseTrading), 20*time.Second)
	if code, _ := fetch(t, urlA+runnermetrics.PathHealthz); code != http.StatusOK {
		t.Errorf("/healthz of the holder: %d", code)
	}

	alerts, want := alertMetrics(t)
	if len(alerts) < 3 {
		t.Fatalf("alerts %v: want at least a stalled runner, a flapping Lease and a state near its limit", alerts)
	}
	var body string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		_, body = fetch(t, urlA+runnermetrics.PathMetrics)
		var missing []string
		for _, name := range want {
			if !slices.Contains(families(body), name) {
				missing = append(missing, name)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the alerts %v use %v, which the runner does not serve; its /metrics:\n%s", alerts, missing, body)
		}
	}
	if got := sample(t, body, `strategyops_runner_fencing_token{strategy="lease-test"}`); got != float64(tokenA) {
		t.Errorf("fencing token %v, the runner logged %d", got, tokenA)
	}
	if got := sample(t, body, `strategyops_runner_lease_held{strategy="lease-test"}`); got != 1 {
		t.Errorf("lease held %v while holding it", got)
	}
	// At 600 times the wall clock's speed a candle is due every 0.1 s.
	if got := sample(t, body,
		`strategyops_runner_seconds_since_last_candle{strategy="lease-test",symbol="BTCUSDT"}`); got > 10 {
		t.Errorf("%v s since the last candle of a trading runner", got)
	}
	if !strings.Contains(body, `strategyops_store_object_bytes{backend="configmap",namespace="`+ns+`"`) {
		t.Errorf("no size of the strategy's ConfigMaps in:\n%s", body)
	}

	b := startProcess(t, kubeconfig, args)
	urlB := serving(t, b)
	await(t, b, urlB+runnermetrics.PathReadyz, http.StatusServiceUnavailable, string(runnermetrics.PhaseStandby),
		10*time.Second)
	if code, _ := fetch(t, urlB+runnermetrics.PathHealthz); code != http.StatusOK {
		t.Errorf("/healthz of a standby runner: %d, want 200 so that liveness never kills it", code)
	}
	_, body = fetch(t, urlB+runnermetrics.PathMetrics)
	if got := sample(t, body, `strategyops_runner_lease_held{strategy="lease-test"}`); got != 0 {
		t.Errorf("the standby's lease held %v", got)
	}
	if slices.Contains(families(body), runnermetrics.MetricFencingToken) {
		t.Errorf("the standby has a fencing token:\n%s", body)
	}

	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := a.exit(t, 10*time.Second); code != 0 {
		t.Fatalf("runner A exited %d on SIGTERM; its log:\n%s", code, a.log())
	}
	await(t, b, urlB+runnermetrics.PathReadyz, http.StatusOK, string(runnermetrics.PhaseTrading), 10*time.Second)
	_, body = fetch(t, urlB+runnermetrics.PathMetrics)
	if got := sample(t, body, `strategyops_runner_fencing_token{strategy="lease-test"}`); got <= float64(tokenA) {
		t.Errorf("the new holder's fencing token %v is not above the old one's %d", got, tokenA)
	}
}

// TestExecObservable: runner exec is ready while the user's process runs under the Lease,
// and serves the Lease's metrics but no candle metrics (the process trades, not the
// runner).
func TestExecObservable(t *testing.T) {
	ctx := context.Background()
	ns := leaseNamespace(ctx, t)
	args := append(append([]string{"exec", "--strategy-name=lease-test", "--exchange=simulated", "--symbols=BTCUSDT",
		"--backend=ConfigMap", "--namespace=" + ns, "--lease=" + leaseName,
		// A grace period a loaded machine meets: the child (a race-built test binary) exits
		// on SIGTERM, and this test is about what is served, not how fast it stops.
		"--lease-duration=6s", "--renew-deadline=3s", "--retry-period=500ms", "--grace-period=2s"},
		observed...), "--", os.Args[0])
	p := startProcess(t, env.Kubeconfig(t), args, asChildEnv+"=loop")
	url := serving(t, p)
	tok := token(p.waitLog(t, "Acquired the lease", 20*time.Second))
	await(t, p, url+runnermetrics.PathReadyz, http.StatusOK, string(runnermetrics.PhaseTrading), 20*time.Second)
	_, body := fetch(t, url+runnermetrics.PathMetrics)
	if got := sample(t, body, `strategyops_runner_fencing_token{strategy="lease-test"}`); got != float64(tok) {
		t.Errorf("fencing token %v, the runner logged %d", got, tok)
	}
	if slices.Contains(families(body), runnermetrics.MetricSecondsSinceLastCandle) {
		t.Errorf("runner exec serves candle metrics, which would call its strategy stalled:\n%s", body)
	}
	// Stopped once the process listens for SIGTERM: after its second write.
	for deadline := time.Now().Add(10 * time.Second); snapshotCount(ctx, t, ns) < 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the process did not write; the log:\n%s", p.log())
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.exit(t, 10*time.Second); code != 0 {
		t.Fatalf("runner exec exited %d on SIGTERM; its log:\n%s", code, p.log())
	}
}
