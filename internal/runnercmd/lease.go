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
	"sync"
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

	"github.com/strategyops/strategy-operator/internal/names"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
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

// errLostLease: another holder took the Lease; the runner stopped trading and exits
// non-zero.
var errLostLease = errors.New("lost the lease to another holder")

// errLeaseNotRenewed: the API server did not answer the runner's renewals within the
// renew deadline, and nobody else holds the Lease. The runner stopped trading, as a holder
// that cannot renew must, and stands by to take the Lease again in the same process.
var errLeaseNotRenewed = errors.New("could not renew the Lease")

// errRenewDeadline: no renewal of the Lease landed within the renew deadline; the work is
// stopped with it as the cause (see renewals.watch).
var errRenewDeadline = errors.New("the Lease was not renewed within the renew deadline")

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
// token bound to this holder (see fencingToken). A cancelled ctx releases the Lease once
// work has returned. m hears the holding and its token.
//
// Losing the Lease stops the work at once. When another holder took it, leading returns
// errLostLease. When the API server did not answer the renewals (an outage: nobody else
// holds it), the runner keeps its place: it runs standby (when not nil), then takes the
// Lease again as a new holder, with a larger token, and runs work again, as a restarted
// process would, without the restart.
func leading(ctx context.Context, s runner.Settings, log *slog.Logger, m *runnermetrics.Metrics,
	recorded func(context.Context) (int64, error), standby func(context.Context, error),
	work func(ctx context.Context, h holding) error) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	for {
		err := campaign(ctx, cs, s, log, m, recorded, work)
		if !errors.Is(err, errLeaseNotRenewed) || ctx.Err() != nil {
			return err
		}
		log.Error("Could not renew the lease: stopped trading; standing by to take it again", "lease", s.Lease,
			"error", err.Error())
		m.SetPhase(runnermetrics.PhaseStandby)
		if standby != nil {
			// Told before this runner can lead again: it cannot while the API server is away.
			standby(ctx, err)
		}
	}
}

// holderPrefix starts the identity of every holder in this pod (its name, or the host's).
func holderPrefix() string {
	if host := os.Getenv("POD_NAME"); host != "" {
		return host + "-"
	}
	host, _ := os.Hostname()
	return host + "-"
}

// campaign waits for the Lease, as a new holder, and runs work while holding it (see
// leading).
func campaign(ctx context.Context, cs kubernetes.Interface, s runner.Settings, log *slog.Logger,
	m *runnermetrics.Metrics, recorded func(context.Context) (int64, error),
	work func(ctx context.Context, h holding) error) error {
	// Unique per campaign: a restarted runner is a new holder, so its fencing token is larger.
	identity := fmt.Sprintf("%s%d", holderPrefix(), time.Now().UnixNano())
	leases := cs.CoordinationV1().Leases(s.Namespace)
	lock := &renewals{Interface: &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Lease},
		Client:     cs.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}}
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
				token, owner, err := fencingToken(leadCtx, leases, s.Lease, identity, recorded)
				if err == nil {
					log.Info("Acquired the lease", "lease", s.Lease, "identity", identity, "fencingToken", token)
					m.Leading(true, token)
					afterToken()
					// The work stops at the renew deadline itself: the elector ends leadCtx
					// only after trying to release the Lease, which an unanswering API server
					// makes last another renew deadline, past the Lease's duration.
					workCtx, stop := context.WithCancelCause(leadCtx)
					go lock.watch(workCtx, s.RenewDeadline, s.RetryPeriod, stop, log)
					err = work(workCtx, holding{token: token, identity: identity, owner: owner})
					if err != nil && errors.Is(context.Cause(workCtx), errRenewDeadline) {
						err = errRenewDeadline // the watch stopped it: whatever the work was doing then
					}
					stop(nil)
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
	case errors.Is(err, context.Canceled) || errors.Is(err, errRenewDeadline):
		// The work was stopped because the Lease ended under it: taken by another holder
		// (a read of it shows one), or not renewed in time (an outage, or a refusal).
		if h := lock.takenBy(); h != "" {
			log.Error("Lost the lease: stopped trading", "lease", s.Lease, "holder", h)
			return fmt.Errorf("%w %q", errLostLease, h)
		}
		return lock.outage()
	default:
		return err
	}
}

// renewals is one holder's Lease lock, recording when its last renewal landed, what the
// API server answered since, if anything, and another holder a read showed since.
type renewals struct {
	resourcelock.Interface
	mu      sync.Mutex
	renewed time.Time
	err     error
	other   string
}

func (r *renewals) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	rec, raw, err := r.Interface.Get(ctx)
	r.note(err, false, time.Time{})
	if err == nil && rec.HolderIdentity != "" && rec.HolderIdentity != r.Identity() {
		r.mu.Lock()
		r.other = rec.HolderIdentity
		r.mu.Unlock()
	}
	return rec, raw, err
}

// takenBy is the holder a read showed in this one's place since its last renewal, if any.
// (The elector's own account of the leader is not enough: releasing the Lease after
// failed renewals can overwrite the new holder's record.)
func (r *renewals) takenBy() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.other
}

func (r *renewals) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	sent := time.Now()
	err := r.Interface.Create(ctx, ler)
	r.note(err, ler.HolderIdentity != "", sent) // a release writes no holder: it renews nothing
	return err
}

func (r *renewals) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	if ler.HolderIdentity == "" && r.takenBy() != "" {
		// A release after failed renewals would write over the new holder's record (the
		// elector still counts this runner as the holder): there is nothing to release.
		return nil
	}
	sent := time.Now()
	err := r.Interface.Update(ctx, ler)
	r.note(err, ler.HolderIdentity != "", sent) // a release writes no holder: it renews nothing
	return err
}

// note records the outcome of a request sent at sent: a renewal counts from when it was
// sent, since the API server may have stored it long before its answer arrived, and the
// others count the Lease's duration from then.
func (r *renewals) note(err error, wrote bool, sent time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case errors.Is(err, context.Canceled):
		// The elector gave up the request itself (this runner stopped leading): the API
		// server said nothing, and this is no refusal.
	case err != nil:
		r.err = err
	case wrote:
		r.renewed, r.err, r.other = sent, nil, ""
	}
}

// outage says for how long the renewals went unanswered, and the API server's last word.
// It wraps errLeaseNotRenewed when that word was none, or one of an API server that could
// not serve (a timeout, 429, 5xx); an answer that refuses the renewal (403, a webhook, 422)
// is no outage, and the error is that answer.
func (r *renewals) outage() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	since := time.Since(r.renewed).Round(time.Second)
	if r.err != nil && !unavailable(r.err) {
		return fmt.Errorf("the API server refused to renew the Lease for %s: %w", since, r.err)
	}
	msg := "the API server did not answer"
	if r.err != nil {
		msg += " (" + r.err.Error() + ")"
	}
	return fmt.Errorf("%w for %s: %s", errLeaseNotRenewed, since, msg)
}

// unavailable reports whether err says the API server could not serve a request, rather
// than that it refused it: no answer within the renew deadline, an error that goes away
// by itself (kubestore.Transient: 429, 5xx, a lost connection), or a conflict, another
// write landing first (this runner's own annotations), which the next try resolves.
func unavailable(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || apierrors.IsConflict(err) || kubestore.Transient(err)
}

// watch stops the work (stop) once no renewal has landed for the renew deadline, checking
// every half retry period, until ctx ends.
func (r *renewals) watch(ctx context.Context, deadline, retry time.Duration, stop context.CancelCauseFunc,
	log *slog.Logger) {
	tick := time.NewTicker(retry / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r.mu.Lock()
		late := time.Since(r.renewed) > deadline
		r.mu.Unlock()
		if late {
			log.Error("Stopped trading: the Lease was not renewed within the renew deadline", "error",
				r.outage().Error())
			stop(errRenewDeadline)
			return
		}
	}
}

// holding is this runner's hold on the Lease: its fencing token, its identity as the
// holder, and the UID of the Strategy the operator made the Lease for (names.LabelOwner;
// empty on a Lease no operator made).
type holding struct {
	token    int64
	identity string
	owner    string
}

// fencingToken returns the token this runner writes with, and the owner UID on the Lease. It comes from a read of the
// Lease in which this runner is the holder: the transition count plus one, which every
// change of holder raises. The stores may have seen larger tokens (the Lease was deleted
// and made again); then the count is first raised to the highest recorded token, in an
// update that succeeds only while the Lease is unchanged since that read, so the token
// stays bound to this holder and the next holder's is larger again.
func fencingToken(ctx context.Context, leases coordinationv1client.LeaseInterface, name, identity string,
	recorded func(context.Context) (int64, error)) (token int64, owner string, err error) {
	floor, err := recorded(ctx)
	if err != nil {
		return 0, "", err
	}
	for {
		lease, err := leases.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return 0, "", err
		}
		if h := ptr.Deref(lease.Spec.HolderIdentity, ""); h != identity {
			return 0, "", fmt.Errorf("%w: it is held by %q", errNotHolder, h)
		}
		transitions := int64(ptr.Deref(lease.Spec.LeaseTransitions, 0))
		if transitions >= floor {
			return transitions + 1, lease.Annotations[names.LabelOwner], nil
		}
		if floor > math.MaxInt32-1 {
			return 0, "", fmt.Errorf("the stores record fencing token %d, past what a Lease can count", floor)
		}
		lease.Spec.LeaseTransitions = new(int32(floor))
		_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
		if err != nil && !apierrors.IsConflict(err) {
			return 0, "", err
		}
		// Updated, or our own renewal won the race: read again.
	}
}
