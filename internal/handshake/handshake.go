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
// Package handshake is how a runner tells the operator what it trades: once it holds its
// state identity's Lease and has fenced every store of the state, it records on the Lease
// its holder identity, its pod, and the symbols it trades and drains. Only that record lets
// the operator take a symbol, or the whole identity, off the runner: a symbol the holder
// drains gets no new signal from anyone (older holders are fenced off), so once it reads
// flat it stays flat, and no read from outside races a signal opening.
package handshake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Annotation holds the record on the Lease.
const Annotation = "trading.strategyops.dev/runner"

// Record is what the runner holding a Lease does.
type Record struct {
	// Holder is the runner's identity as the Lease names its holder.
	Holder string `json:"holder"`
	// Pod is the UID of the runner's pod.
	Pod string `json:"pod,omitempty"`
	// Symbols it trades; Draining those it only watches to their signals' close.
	Symbols  []string `json:"symbols"`
	Draining []string `json:"draining,omitempty"`
}

// ErrNotHeld: the Lease is held by a runner of another pod; its annotations are that
// runner's to write.
var ErrNotHeld = errors.New("the Lease is held by another pod's runner")

// Write records r on the Lease lease, which its runner holds.
func Write(ctx context.Context, c client.Client, lease client.ObjectKey, r Record) error {
	return Annotate(ctx, c, lease, Annotation, r, r.Holder)
}

// Annotate sets the annotation name of the Lease lease to v in JSON: what a runner tells
// the operator. It writes only while the Lease's holder identity is holders, or holders
// and a number (a runner of this pod), or nobody holds it, and returns ErrNotHeld
// otherwise.
func Annotate(ctx context.Context, c client.Client, lease client.ObjectKey, name string, v any, holders string) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var l coordinationv1.Lease
		if err := c.Get(ctx, lease, &l); err != nil {
			return err
		}
		if h := ptr.Deref(l.Spec.HolderIdentity, ""); h != "" && !heldBy(h, holders) {
			return fmt.Errorf("%w: %s holds Lease %s", ErrNotHeld, h, lease)
		}
		if l.Annotations[name] == string(raw) {
			return nil
		}
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		l.Annotations[name] = string(raw)
		return c.Update(ctx, &l)
	})
}

// heldBy reports whether holder is holders itself or holders followed by digits (a
// runner's identity: its pod's name, "-" and a number), so that pod "x-1" does not take
// pod "x-1-b"'s holders for its own.
func heldBy(holder, holders string) bool {
	rest, ok := strings.CutPrefix(holder, holders)
	return ok && strings.Trim(rest, "0123456789") == ""
}

// Current is the record of the runner that holds l now, in the pod pod (its UID): false
// when l records none, or one of another holder or pod (a runner not yet started, or gone).
func Current(l *coordinationv1.Lease, pod string) (Record, bool, error) {
	var r Record
	if ok, err := Decode(l, Annotation, &r); !ok || pod == "" {
		return Record{}, false, err
	}
	return r, r.Holder != "" && r.Holder == ptr.Deref(l.Spec.HolderIdentity, "") && r.Pod == pod, nil
}

// Decode reads the annotation name of l, written by Annotate, into v; false when l has
// none.
func Decode(l *coordinationv1.Lease, name string, v any) (bool, error) {
	raw, ok := l.Annotations[name]
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal([]byte(raw), v); err != nil {
		return false, fmt.Errorf("the annotation %s of Lease %s: %w", name, l.Name, err)
	}
	return true, nil
}

// Held reports whether a runner holds l at now: it names a holder whose last renewal is
// less than the Lease's duration ago.
func Held(l *coordinationv1.Lease, now time.Time) bool {
	if ptr.Deref(l.Spec.HolderIdentity, "") == "" || l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return false
	}
	return now.Before(l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second))
}

// Opens reports whether the runner of r may open a signal on sym: it trades it.
func (r Record) Opens(sym string) bool { return slices.Contains(r.Symbols, sym) }
