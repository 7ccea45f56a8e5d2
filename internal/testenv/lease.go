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

package testenv

import (
	"context"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// StealLease makes the Lease ns/name another holder's ("thief", for an hour), as a runner
// that took over would, and returns the fencing token that holder would take (the Lease's
// transitions, plus one).
func (e *Environment) StealLease(ctx context.Context, t testing.TB, ns, name string) int64 {
	t.Helper()
	var transitions int32
	// The holder renews every retry period: read again and retry when its renewal wins.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var lease coordinationv1.Lease
		if err := e.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &lease); err != nil {
			return err
		}
		transitions = ptr.Deref(lease.Spec.LeaseTransitions, 0) + 1
		lease.Spec.HolderIdentity = new("thief")
		lease.Spec.LeaseTransitions = new(transitions)
		lease.Spec.LeaseDurationSeconds = ptr.To[int32](3600)
		lease.Spec.AcquireTime = &metav1.MicroTime{Time: time.Now()}
		lease.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
		return e.Client.Update(ctx, &lease)
	})
	if err != nil {
		t.Fatal(err)
	}
	return int64(transitions) + 1
}
