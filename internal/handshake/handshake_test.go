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
package handshake

import (
	"encoding/json"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestCurrentIsTheHoldersWordOnly: a record counts only while the runner that wrote it
// holds the Lease and runs in the pod running now.
func TestCurrentIsTheHoldersWordOnly(t *testing.T) {
	rec := Record{Holder: "runner-1", Pod: "uid-1", Symbols: []string{"BTCUSDT"}, Draining: []string{"ETHUSDT"}}
	raw, _ := json.Marshal(rec)
	lease := func(holder string) *coordinationv1.Lease {
		return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "l", Annotations: map[string]string{Annotation: string(raw)}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder}}
	}
	for name, c := range map[string]struct {
		lease *coordinationv1.Lease
		pod   string
		want  bool
	}{
		"the holder, in the pod running now": {lease("runner-1"), "uid-1", true},
		"another runner holds the Lease now": {lease("runner-2"), "uid-1", false},
		"another pod runs now":               {lease("runner-1"), "uid-2", false},
		"no pod":                             {lease("runner-1"), "", false},
		"no record":                          {&coordinationv1.Lease{}, "uid-1", false},
	} {
		got, current, err := Current(c.lease, c.pod)
		if err != nil || current != c.want {
			t.Errorf("%s: current %v (%v), want %v", name, current, err, c.want)
		}
		if current && (got.Opens("ETHUSDT") || !got.Opens("BTCUSDT")) {
			t.Errorf("%s: the record opens %v", name, got)
		}
	}
	bad := lease("runner-1")
	bad.Annotations[Annotation] = "{"
	if _, _, err := Current(bad, "uid-1"); err == nil {
		t.Error("a record that is not JSON was read")
	}
}

// TestHeld: a Lease is held while its holder's last renewal is within its duration.
func TestHeld(t *testing.T) {
	now := time.Now()
	l := &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{HolderIdentity: new("runner-1"),
		LeaseDurationSeconds: new(int32(15)), RenewTime: &metav1.MicroTime{Time: now.Add(-10 * time.Second)}}}
	if !Held(l, now) {
		t.Error("a Lease renewed 10 s ago for 15 s is not held")
	}
	if Held(l, now.Add(6*time.Second)) {
		t.Error("a Lease past its duration is held")
	}
	l.Spec.HolderIdentity = new("")
	if Held(l, now) {
		t.Error("a released Lease is held")
	}
}
