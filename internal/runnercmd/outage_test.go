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
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/strategyops/strategy-operator/internal/handshake"
	"github.com/strategyops/strategy-operator/internal/tradingstatus"
)

// TestOutageKeepsItsPlace: a runner whose API server stops answering stops trading within
// the renew deadline, as a holder must; but nobody took its Lease, so it says that it
// could not renew, not that it lost the Lease to another, keeps running, tells the
// operator once the API server answers, and takes the Lease again as a new holder with a
// larger token, whose writes the store then records, all without a restart.
func TestOutageKeepsItsPlace(t *testing.T) {
	ctx := t.Context()
	ns := leaseNamespace(ctx, t)
	proxy := env.APIServerProxy(t)
	const pod = "outage-pod-uid"
	r := startRunner(t, viaProxy(t, env.Kubeconfig(t), proxy.Addr()), ns, "POD_UID="+pod, "POD_NAME=outage-pod")
	first := token(r.waitLog(t, "Acquired the lease", 20*time.Second))
	told := watchTrading(ctx, t, ns)
	// Trading: the store records this holder's writes.
	waitRecorded(ctx, t, r, ns, first)

	down := time.Now()
	proxy.Down()
	// The work stops at the renew deadline, not once the elector has also tried to release
	// the Lease, which the API server's silence makes last another renew deadline.
	stopped := r.waitLog(t, "Stopped trading: the Lease was not renewed within the renew deadline", 10*time.Second)
	if at, err := time.Parse(time.RFC3339Nano, stopped["time"].(string)); err != nil {
		t.Fatal(err)
	} else if late := at.Sub(down); late > renewDeadline+1500*time.Millisecond {
		t.Fatalf("the runner stopped trading %s after the API server went silent, past its renew deadline (%s)",
			late, renewDeadline)
	}
	lost := r.waitLog(t, "Could not renew the lease: stopped trading; standing by to take it again", 10*time.Second)
	for _, want := range []string{"could not renew the Lease for", "the API server did not answer"} {
		if msg, _ := lost["error"].(string); !strings.Contains(msg, want) {
			t.Errorf("the runner's account %q does not say %q", msg, want)
		}
	}
	t.Logf("the runner's account: %v", lost["error"])
	proxy.Up()

	second := token(r.waitLogN(t, "Acquired the lease", 2, 30*time.Second))
	if second <= first {
		t.Fatalf("the runner took the Lease again with token %d, not above its first %d", second, first)
	}
	waitRecorded(ctx, t, r, ns, second)
	if r.logged("Lost the lease: stopped trading") || r.logged("Runner stopped") {
		t.Fatalf("an outage was told as a lost Lease, or stopped the runner; its log:\n%s", r.log())
	}
	select {
	case <-r.done:
		t.Fatalf("the runner exited after an outage; its log:\n%s", r.log())
	default:
	}

	// The operator heard of the outage, then of the runner's trading again.
	var reasons []string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		reasons = reasons[:0]
		outage := -1
		for i, st := range told() {
			reasons = append(reasons, st.Reason)
			if st.Reason == tradingstatus.ReasonLeaseNotRenewed && st.Pod == pod && outage < 0 {
				outage = i
				if !strings.Contains(st.Message, "could not renew the Lease for") {
					t.Fatalf("the outage recorded on the Lease says %q", st.Message)
				}
			}
		}
		if outage >= 0 && outage < len(reasons)-1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Lease's trading status went %v: want %s, then the runner's status as it trades again; "+
				"its log:\n%s", reasons, tradingstatus.ReasonLeaseNotRenewed, r.log())
		}
	}
}

// watchTrading returns what reads, in order, every trading status recorded on the test
// Lease of ns from now on.
func watchTrading(ctx context.Context, t *testing.T, ns string) func() []tradingstatus.Status {
	t.Helper()
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	w, err := cs.CoordinationV1().Leases(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + leaseName})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	var mu sync.Mutex
	var seen []tradingstatus.Status
	go func() {
		for ev := range w.ResultChan() {
			l, ok := ev.Object.(*coordinationv1.Lease)
			if !ok {
				continue
			}
			var st tradingstatus.Status
			if found, err := handshake.Decode(l, tradingstatus.Annotation, &st); !found || err != nil {
				continue
			}
			mu.Lock()
			if len(seen) == 0 || seen[len(seen)-1] != st {
				seen = append(seen, st)
			}
			mu.Unlock()
		}
	}()
	return func() []tradingstatus.Status {
		mu.Lock()
		defer mu.Unlock()
		return append([]tradingstatus.Status(nil), seen...)
	}
}

// viaProxy writes a copy of kubeconfig whose clusters are reached through addr.
func viaProxy(t *testing.T, kubeconfig, addr string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		c.Server = "https://" + addr
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}
