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
	"log/slog"
	"math"
	"os"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/strategyops/strategy-operator/internal/runner"
	"github.com/strategyops/strategy-operator/internal/runnermetrics"
)

// storeRequestTimeout bounds one request of the store client.
const storeRequestTimeout = 30 * time.Second

// afterAcquire runs once the Lease is acquired, before the fencing token is taken. Tests
// use it to stall the process there, as a GC pause or a starved CPU would.
var afterAcquire = func() {}

// afterToken runs once the fencing token is taken, before the state is touched. Tests
// stall the process there.
var afterToken = func() {}

// errLostLease: the runner stopped trading because its Lease was lost; it exits non-zero.
var errLostLease = errors.New("lost the lease to another runner")

// errNotHolder: the Lease changed hands before this runner took its fencing token.
var errNotHolder = errors.New("the Lease is no longer held by this runner")

// leaseHolder is the runner that holds the strategy's Lease now: "" when none does (no
// holder, or a renewal older than the Lease's duration).
func leaseHolder(ctx context.Context, s runner.Settings) (string, error) {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return "", err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	lease, err := cs.CoordinationV1().Leases(s.Namespace).Get(ctx, s.Lease, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	holder, renewed := ptr.Deref(lease.Spec.HolderIdentity, ""), lease.Spec.RenewTime
	held := time.Duration(ptr.Deref(lease.Spec.LeaseDurationSeconds, 0)) * time.Second
	if holder == "" || renewed == nil || time.Since(renewed.Time) > held {
		return "", nil
	}
	return holder, nil
}

// leading runs work only while this process holds the strategy's Lease, with a fencing
// token bound to this holder (see fencingToken). Losing the Lease stops the work at once
// and returns an error; a cancelled ctx releases the Lease. m hears the holding and its
// token.
func leading(ctx context.Context, s runner.Settings, log *slog.Logger, m *runnermetrics.Metrics,
	recorded func(context.Context) (int64, error),
	work func(ctx context.Context, token int64, identity string) error) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	// Unique per process: a restarted runner is a new holder, so its fencing token is larger.
	host := os.Getenv("POD_NAME")
	if host == "" {
		host, _ = os.Hostname()
	}
	identity := fmt.Sprintf("%s-%d", host, time.Now().UnixNano())
	leases := cs.CoordinationV1().Leases(s.Namespace)
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Lease},
		Client:     cs.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}
	// The elector runs until the work has returned, not until ctx ends: a runner told to
	// stop keeps the Lease while its work stops (runner exec's process in its grace
	// period), and releases it after. Before the work began, ctx's end stops the elector.
	electorCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	result := make(chan error, 1)
	var started atomic.Bool // the work began
	stopWaiting := context.AfterFunc(ctx, func() {
		if !started.Load() {
			cancel()
		}
	})
	defer stopWaiting()
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, LeaseDuration: s.LeaseDuration, RenewDeadline: s.RenewDeadline, RetryPeriod: s.RetryPeriod,
		ReleaseOnCancel: true, Name: s.Lease,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leadCtx context.Context) {
				started.Store(true)
				afterAcquire()
				token, err := fencingToken(leadCtx, leases, s.Lease, identity, recorded)
				if err == nil {
					log.Info("Acquired the lease", "lease", s.Lease, "identity", identity, "fencingToken", token)
					m.Leading(true, token)
					afterToken()
					err = work(leadCtx, token, identity)
					m.Leading(false, 0)
					m.SetPhase(runnermetrics.PhaseStopping)
				} else {
					err = fmt.Errorf("taking a fencing token: %w", err)
				}
				result <- err
				cancel()
			},
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return err
	}
	m.SetPhase(runnermetrics.PhaseStandby)
	elector.Run(electorCtx) // returns once this runner no longer leads, without waiting for the work
	cancel()
	if !started.Load() {
		return ctx.Err() // never led: stopped before acquiring
	}
	err = <-result // the work stops at once: its context has ended
	switch {
	case ctx.Err() != nil:
		return ctx.Err() // asked to stop (SIGTERM): the Lease is released
	case err == nil:
		return nil // the work ended by itself (--until)
	case errors.Is(err, context.Canceled):
		// The work was stopped because the Lease ended under it.
		log.Error("Lost the lease: stopped trading", "lease", s.Lease)
		return errLostLease
	default:
		return err
	}
}

// fencingToken returns the token this runner writes with. It comes from a read of the
// Lease in which this runner is the holder: the transition count plus one, which every
// change of holder raises. The stores may have seen larger tokens (the Lease was deleted
// and made again); then the count is first raised to the highest recorded token, in an
// update that succeeds only while the Lease is unchanged since that read, so the token
// stays bound to this holder and the next holder's is larger again.
func fencingToken(ctx context.Context, leases coordinationv1client.LeaseInterface, name, identity string,
	recorded func(context.Context) (int64, error)) (int64, error) {
	floor, err := recorded(ctx)
	if err != nil {
		return 0, err
	}
	for {
		lease, err := leases.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return 0, err
		}
		if h := ptr.Deref(lease.Spec.HolderIdentity, ""); h != identity {
			return 0, fmt.Errorf("%w: it is held by %q", errNotHolder, h)
		}
		transitions := int64(ptr.Deref(lease.Spec.LeaseTransitions, 0))
		if transitions >= floor {
			return transitions + 1, nil
		}
		if floor > math.MaxInt32-1 {
			return 0, fmt.Errorf("the stores record fencing token %d, past what a Lease can count", floor)
		}
		lease.Spec.LeaseTransitions = new(int32(floor))
		_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
		if err != nil && !apierrors.IsConflict(err) {
			return 0, err
		}
		// Updated, or our own renewal won the race: read again.
	}
}
