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
	"errors"
	"fmt"
	"net/url"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// answering is a Lease lock whose reads get err.
type answering struct {
	resourcelock.Interface
	err error
}

func (a answering) Get(context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	return nil, nil, a.err
}

func (a answering) Identity() string { return "runner-1" }

// TestRenewalsTellOutagesFromRefusals: what the renewals went unanswered with decides
// whether the runner stands by (errLeaseNotRenewed) or stops: a request the elector itself
// gave up (its context cancelled, as when it stops leading) is no word of the API server,
// and neither is it a clean stop.
func TestRenewalsTellOutagesFromRefusals(t *testing.T) {
	lease := schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}
	for _, c := range []struct {
		name   string
		err    error
		outage bool
	}{
		{"cancelled by the elector", &url.Error{Op: "Get", URL: "https://api/leases/x", Err: context.Canceled}, true},
		{"timed out", fmt.Errorf("renewing: %w", context.DeadlineExceeded), true},
		{"unavailable", apierrors.NewServiceUnavailable("etcd is away"), true},
		{"forbidden", apierrors.NewForbidden(lease, "x", errors.New("no")), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &renewals{Interface: answering{err: c.err}}
			_, _, _ = r.Get(context.Background())
			err := r.outage()
			if got := errors.Is(err, errLeaseNotRenewed); got != c.outage {
				t.Fatalf("outage() = %v: an outage is %v, want %v", err, got, c.outage)
			}
			if errors.Is(err, context.Canceled) {
				t.Fatalf("outage() = %v wraps context.Canceled: the runner would count it a clean stop", err)
			}
			if !c.outage && !apierrors.IsForbidden(err) {
				t.Fatalf("outage() = %v, want the API server's refusal", err)
			}
		})
	}
}

// TestStoppedOnlyWhenTold: a cancellation counts as a clean stop only when the runner was
// told to stop.
func TestStoppedOnlyWhenTold(t *testing.T) {
	told, stop := context.WithCancel(context.Background())
	stop()
	wrapped := fmt.Errorf("restoring: %w", context.Canceled)
	if !stopped(told, wrapped) {
		t.Error("a runner told to stop, stopping with context.Canceled, is not counted as stopped")
	}
	if stopped(context.Background(), wrapped) {
		t.Error("a cancellation the runner was not told of counts as a clean stop: it would exit 0 mid-feed")
	}
	if stopped(told, errors.New("boom")) {
		t.Error("a failure after being told to stop counts as a clean stop")
	}
}
