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
	"log/slog"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strategyops/strategy-operator/internal/handshake"
	"github.com/strategyops/strategy-operator/internal/runner"
	"github.com/strategyops/strategy-operator/internal/runnermetrics"
	"github.com/strategyops/strategy-operator/internal/tradingstatus"
)

// tradingPeriod is how often the runner judges whether it trades, and at most how often
// it records a change on its Lease.
const tradingPeriod = 2 * time.Second

// minFeedStale is the least time without a candle that counts as a stopped feed, whatever
// the clock's speed: a candle's writes can take seconds when a store is slow.
const minFeedStale = 2 * time.Minute

// tradingWatch is what judges whether the runner of s trades.
func tradingWatch(s runner.Settings) *tradingstatus.Watch {
	candle := time.Duration(float64(time.Minute) / s.Speed) // one candle on the wall clock
	return tradingstatus.New(tradingstatus.Config{Symbols: s.Traded(), FeedStale: max(5*candle, minFeedStale),
		Quiet: s.QuietAfter}, s.Symbols, nil)
}

// restateAfter is how long a status whose reason stays the same keeps its recorded words
// (a refusal's numbers change with every proposal): at most one Lease write and one log
// line a minute while the reason holds.
const restateAfter = time.Minute

// tellTrading says, every tradingPeriod until ctx ends, whether the runner trades: a new
// reason at once, new words for the same reason at most every restateAfter. It goes to
// the log (a Warning when the runner does not trade), to the runner's metrics and, when c
// is not nil, onto the Lease lease, where the operator reads it (the Strategy's Trading
// condition). A status that could not be recorded is tried again next period.
func tellTrading(ctx context.Context, w *tradingstatus.Watch, m *runnermetrics.Metrics, c client.Client,
	lease client.ObjectKey, pod string, log *slog.Logger) {
	var told, recorded tradingstatus.Status
	var toldAt, failedAt time.Time
	var failed string // the last failure to record, as warned
	tick := time.NewTicker(tradingPeriod)
	defer tick.Stop()
	for {
		st := w.Status()
		st.Pod = pod
		if st.Reason != told.Reason || st.Message != told.Message && time.Since(toldAt) >= restateAfter {
			m.Trading(st.Reason, tradingstatus.Reasons)
			if st.Trading {
				log.Info("Trading", "reason", st.Reason, "message", st.Message)
			} else {
				log.Warn("Not trading", "reason", st.Reason, "message", st.Message)
			}
			told, toldAt = st, time.Now()
		}
		if c != nil && told != recorded {
			if err := handshake.Annotate(ctx, c, lease, tradingstatus.Annotation, told, holderPrefix()); err == nil {
				recorded, failed = told, ""
			} else if ctx.Err() == nil && (err.Error() != failed || time.Since(failedAt) >= restateAfter) {
				// A new cause at once, the same one at most once a minute.
				log.Warn("Could not record on the Lease whether this runner trades; trying again", "error", err.Error())
				failed, failedAt = err.Error(), time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// statusClient is the client a runner on the pod's volume tells whether it trades with
// (onto its Strategy's Lease, which it does not hold: the folder's lock fences it), or nil
// when it has no Lease to tell on or no API server configured. Trading on the volume never
// waits for the control plane: an API server that does not answer only delays the telling.
func statusClient(s runner.Settings, log *slog.Logger) client.Client {
	if s.Lease == "" || s.Namespace == "" {
		return nil
	}
	c, err := apiClient()
	if err != nil {
		log.Info("Not telling whether this runner trades on its Lease: no API server configured", "lease", s.Lease,
			"error", err.Error())
		return nil
	}
	return c
}

// tellOutage says that the runner stopped trading because the API server did not answer
// its Lease renewals (cause): to its metrics at once, and onto the Lease as soon as the
// API server answers, where the operator shows it (Ready=False, ControlPlaneOutage) until
// this runner trades again. It returns once told, when the Lease is not this pod's to
// tell on, or when ctx ends.
func tellOutage(ctx context.Context, c client.Client, s runner.Settings, m *runnermetrics.Metrics, cause error,
	log *slog.Logger) {
	st := tradingstatus.Status{Pod: s.PodUID, Reason: tradingstatus.ReasonLeaseNotRenewed,
		Message: cause.Error() + "; standing by to take it again"}
	m.Trading(st.Reason, tradingstatus.Reasons)
	lease := client.ObjectKey{Namespace: s.Namespace, Name: s.Lease}
	for tries := 0; ; tries++ {
		err := handshake.Annotate(ctx, c, lease, tradingstatus.Annotation, st, holderPrefix())
		switch {
		case err == nil:
			log.Info("Told the operator of the outage", "lease", s.Lease)
			return
		case errors.Is(err, handshake.ErrNotHeld) || apierrors.IsNotFound(err):
			return // another pod's runner holds the Lease, or none is left: this pod is not shown
		case !unavailable(err):
			log.Warn("Could not tell the operator of the outage", "lease", s.Lease, "error", err.Error())
			return
		case tries == 0:
			log.Info("The API server does not answer yet; telling the operator of the outage once it does",
				"lease", s.Lease, "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(tradingPeriod):
		}
	}
}
