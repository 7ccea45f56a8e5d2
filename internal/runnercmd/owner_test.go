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
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strategyops/strategy-operator/internal/names"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
)

// TestRunnerWritesOnlyRowsItsStrategyOwns: on a database whose owner record names another
// Strategy, the operator's runner (--strategy-object) refuses to write, naming the owner;
// so it does on one naming a Strategy of its namespace and name but another UID (of
// another cluster); once the record names its own Strategy, it trades.
func TestRunnerWritesOnlyRowsItsStrategyOwns(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(ctx, t)
	kubeconfig := env.Kubeconfig(t)
	rs := startRedis(t)
	db, err := domain.OpenDatabase(ctx, "Redis", rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	const name = "owned"
	other := domain.Owner{Cluster: "elsewhere", Namespace: "tenant-a", Name: name, UID: "uid-a"}
	if err := db.RecordOwner(ctx, name, "simulated", other, ""); err != nil {
		t.Fatal(err)
	}
	args := []string{"--strategy-name=" + name, "--exchange=simulated", "--symbols=" + strings.Join(restartSymbols, ","),
		"--backend=Redis", "--namespace=" + ns, "--lease=" + name + "-runner", "--strategy-object=" + name,
		"--start=" + restartStart.Format(time.RFC3339), "--until=" + restartStart.Add(2*time.Hour).Format(time.RFC3339),
		"--speed=3600", "--lease-duration=4s", "--renew-deadline=3s", "--retry-period=500ms"}
	url := domain.StoreURLEnv + "=" + rs.URL

	p := startProcess(t, kubeconfig, args, url)
	if code := p.exit(t, 2*time.Minute); code == 0 || !strings.Contains(p.log(), "Strategy tenant-a/"+name) {
		t.Fatalf("the runner wrote rows another Strategy owns (exit %d); its log:\n%s", code, p.log())
	}
	if got := storeContents(t, "Redis", rs.URL, name); len(got) != 0 {
		t.Fatalf("the refused runner wrote %v", got)
	}

	// The operator makes the Lease with its Strategy's UID on it. A Strategy of the same
	// namespace and name in another cluster (one set of manifests applied to two clusters)
	// is told apart by its UID alone.
	var lease coordinationv1.Lease // the refused runner made it
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name + "-runner"}, &lease); err != nil {
		t.Fatal(err)
	}
	lease.Annotations = map[string]string{names.LabelOwner: "uid-here"}
	if err := env.Client.Update(ctx, &lease); err != nil {
		t.Fatal(err)
	}
	record := func(o domain.Owner) {
		t.Helper()
		_, rev, _, err := db.ReadOwner(ctx, name, "simulated")
		if err != nil {
			t.Fatal(err)
		}
		if err := db.RecordOwner(ctx, name, "simulated", o, rev); err != nil {
			t.Fatal(err)
		}
	}
	record(domain.Owner{Cluster: "b", Namespace: ns, Name: name, UID: "uid-there"})
	p = startProcess(t, kubeconfig, args, url)
	if code := p.exit(t, 2*time.Minute); code == 0 || !strings.Contains(p.log(), "(uid uid-there) of cluster b") {
		t.Fatalf("the runner wrote rows a Strategy of its name in another cluster owns (exit %d); its log:\n%s",
			code, p.log())
	}
	if got := storeContents(t, "Redis", rs.URL, name); len(got) != 0 {
		t.Fatalf("the refused runner wrote %v", got)
	}

	record(domain.Owner{Cluster: "a", Namespace: ns, Name: name, UID: "uid-here"})
	p = startProcess(t, kubeconfig, args, url)
	if code := p.exit(t, 2*time.Minute); code != 0 {
		t.Fatalf("the runner of the recorded owner exited %d; its log:\n%s", code, p.log())
	}
	if got := storeContents(t, "Redis", rs.URL, name); len(got) == 0 {
		t.Fatal("the runner of the recorded owner wrote nothing")
	}
}
