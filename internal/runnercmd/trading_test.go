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
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strategyops/strategy-operator/internal/runnermetrics"
	"github.com/strategyops/strategy-operator/internal/testenv"
	"github.com/strategyops/strategy-operator/internal/tradingstatus"
)

// TestTellsWhetherItTrades runs real runners that cannot trade, and one that can, and
// reads what each tells on its Lease (for the operator's Trading condition) and in its
// metrics (for the alert).
func TestTellsWhetherItTrades(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		reason  string
		message string
	}{
		{"a stop loss past the signal rules' limit", []string{"--strategy=indicator", "--option=stop-loss=30"},
			tradingstatus.ReasonProposalsRefused, "stop loss"},
		{"a strategy that never proposes", []string{"--strategy=scripted", "--option=file=" + os.DevNull,
			"--quiet-after=2h"}, tradingstatus.ReasonNoProposals, "proposed nothing on BTCUSDT"},
		{"a strategy that trades", []string{"--strategy=indicator", "--quiet-after=0s"},
			tradingstatus.ReasonTrading, "trading BTCUSDT"},
		// On the pod's volume the runner holds no Lease (the folder's lock fences it) and
		// still tells on its Strategy's, which the operator made.
		{"a File strategy whose proposals are refused", []string{"--strategy=indicator", "--option=stop-loss=30",
			"--backend=File"}, tradingstatus.ReasonProposalsRefused, "stop loss"},
	}
	kubeconfig := env.Kubeconfig(t) // once: envtest adds its users one at a time
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			ns := leaseNamespace(ctx, t)
			backend := []string{"--backend=ConfigMap"}
			if slices.Contains(tc.args, "--backend=File") {
				backend = []string{"--data-dir=" + t.TempDir()} // and the case's --backend
				lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: leaseName}}
				if err := env.Client.Create(ctx, lease); err != nil {
					t.Fatal(err)
				}
			}
			p := startProcess(t, kubeconfig, append(append([]string{"--strategy-name=lease-test",
				"--exchange=simulated", "--symbols=BTCUSDT", "--namespace=" + ns, "--lease=" + leaseName,
				"--pod-uid=pod-" + ns, "--start=2026-11-01T00:00:00Z", "--speed=3000"}, backend...),
				append(observed, tc.args...)...))
			url := serving(t, p)
			if tc.reason == tradingstatus.ReasonTrading { // and it has traded: a signal was opened
				for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
					_, body := fetch(t, url+runnermetrics.PathMetrics)
					if strings.Contains(body, runnermetrics.MetricProposals+
						`{outcome="accepted",strategy="lease-test",symbol="BTCUSDT"} 1`) {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("no proposal accepted in a minute; the runner's log:\n%s", p.log())
					}
				}
			}

			var got tradingstatus.Status
			for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
				var lease coordinationv1.Lease
				err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: leaseName}, &lease)
				var ok bool
				if err == nil {
					got, ok, err = tradingstatus.Read(&lease, "pod-"+ns)
				}
				if client.IgnoreNotFound(err) != nil { // the runner makes the Lease
					t.Fatal(err)
				}
				if ok && got.Reason == tc.reason {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the Lease says %+v (recorded: %v), want reason %s; the runner's log:\n%s", got, ok,
						tc.reason, p.log())
				}
			}
			if slices.Contains(tc.args, "--backend=File") {
				var lease coordinationv1.Lease
				if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: leaseName}, &lease); err != nil {
					t.Fatal(err)
				}
				if h := lease.Spec.HolderIdentity; h != nil && *h != "" {
					t.Errorf("a File runner took the Lease (holder %q): only its folder's lock fences it", *h)
				}
			}
			if got.Trading != (tc.reason == tradingstatus.ReasonTrading) || !strings.Contains(got.Message, tc.message) {
				t.Errorf("the Lease says %+v, want trading %v and words with %q", got,
					tc.reason == tradingstatus.ReasonTrading, tc.message)
			}
			_, body := fetch(t, url+runnermetrics.PathMetrics)
			for _, r := range tradingstatus.Reasons {
				want := 0.0
				if r == tc.reason {
					want = 1
				}
				series := runnermetrics.MetricTrading + `{reason="` + r + `",strategy="lease-test"}`
				if v := sample(t, body, series); v != want {
					t.Errorf("%s = %v, want %v", series, v, want)
				}
			}
			if tc.reason == tradingstatus.ReasonProposalsRefused {
				refused := sample(t, body, runnermetrics.MetricProposals+
					`{outcome="refused",strategy="lease-test",symbol="BTCUSDT"}`)
				accepted := sample(t, body, runnermetrics.MetricProposals+
					`{outcome="accepted",strategy="lease-test",symbol="BTCUSDT"}`)
				if refused < tradingstatus.DefaultRefusals || accepted != 0 {
					t.Errorf("proposals refused %v, accepted %v: want %d or more refused and none accepted", refused,
						accepted, tradingstatus.DefaultRefusals)
				}
				if len(testenv.LogRecords(p.log(), "Not trading")) == 0 {
					t.Errorf("no warning in the log:\n%s", p.log())
				}
			}
		})
	}
}
