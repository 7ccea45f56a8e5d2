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

package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/tradingstatus"
)

func (r *StrategyReconciler) refreshOpenSignals(ctx context.Context, sc *scope) {
	if domain.HomeOf(sc.active) == domain.OnVolume {
		// On the pod's volume: the operator cannot read it.
		sc.strategy.Status.OpenSignals, sc.strategy.Status.LastClosedSignal = nil, nil
		return
	}
	sum, err := r.readSignals(ctx, sc.strategy, sc.activePlace(), true)
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Could not read the strategy's signals")
		return
	}
	s := sc.strategy
	s.Status.OpenSignals = &sum.open
	// Never an older close than the one shown: an archived ledger, or a released symbol
	// (read as it was released, see applySpec), keeps the last close shown.
	s.Status.LastClosedSignal = later(s.Status.LastClosedSignal, sum.lastClosed)
	r.showCloses(ctx, s, sc.active, sum.closes)
}

func (r *StrategyReconciler) setPodStatus(sc *scope, pod *corev1.Pod) {
	s := sc.strategy
	s.Status.PodName = pod.Name
	// A node that cannot get the image says so before any earlier failure of the runner.
	if cs := runnerStatus(pod); cs != nil && cs.State.Waiting != nil && imagePullReasons[cs.State.Waiting.Reason] {
		s.Status.Phase = v1.StrategyPending
		setCondition(s, v1.ConditionReady, false, ReasonImagePullFailed,
			fmt.Sprintf("pod %s cannot pull image %s (%s): %s", pod.Name, cs.Image,
				cs.State.Waiting.Reason, cs.State.Waiting.Message))
		meta.RemoveStatusCondition(&s.Status.Conditions, v1.ConditionTrading)
		return
	}
	if msg, failing := runnerFailure(pod); failing {
		// One reason from the first failure until the runner has run stableAfter again,
		// so that a crash loop does not flap Ready with every restart; the Degraded message
		// changes (with a Warning) only when the runner fails differently.
		reason := ReasonRunnerFailing
		if strings.Contains(msg, domain.ErrPrimaryBehind.Error()) {
			reason = ReasonPrimaryBehindReplica
		}
		s.Status.Phase = v1.StrategyFailed
		setCondition(s, v1.ConditionReady, false, reason,
			fmt.Sprintf("the runner of pod %s keeps failing: %s", pod.Name, msg))
		setCondition(s, v1.ConditionDegraded, true, reason, msg)
		meta.RemoveStatusCondition(&s.Status.Conditions, v1.ConditionTrading)
		return
	}
	if st, ok := told(sc, pod); ok && st.Reason == tradingstatus.ReasonLeaseNotRenewed {
		// An outage, not a failure: the runner keeps its place and trades again once it
		// holds the Lease.
		s.Status.Phase = v1.StrategyRunning
		setCondition(s, v1.ConditionReady, false, ReasonControlPlaneOutage,
			fmt.Sprintf("the runner of pod %s stands by: %s", pod.Name, st.Message))
		setCondition(s, v1.ConditionTrading, false, st.Reason, st.Message)
		return
	}
	ready := pod.Status.Phase == corev1.PodRunning && podReady(pod)
	switch {
	case ready:
		s.Status.Phase = v1.StrategyRunning
		setCondition(s, v1.ConditionReady, true, ReasonRunning, fmt.Sprintf("pod %s is running", pod.Name))
		if setTrading(sc, pod) {
			return
		}
	default:
		s.Status.Phase = v1.StrategyPending
		setCondition(s, v1.ConditionReady, false, ReasonPodPending, fmt.Sprintf("pod %s is %s", pod.Name, podPhase(pod)))
	}
	meta.RemoveStatusCondition(&s.Status.Conditions, v1.ConditionTrading) // no ready runner has told
}

// setTrading shows whether the runner of pod, ready, trades, as it recorded on the Lease
// (package tradingstatus), and reports whether it has recorded that.
func setTrading(sc *scope, pod *corev1.Pod) bool {
	st, ok := told(sc, pod)
	if ok {
		setCondition(sc.strategy, v1.ConditionTrading, st.Trading, st.Reason, st.Message)
	}
	return ok
}

// told is what the runner of pod last recorded on the Lease about its trading, if anything.
func told(sc *scope, pod *corev1.Pod) (tradingstatus.Status, bool) {
	if sc.lease == nil {
		return tradingstatus.Status{}, false
	}
	st, ok, err := tradingstatus.Read(sc.lease, string(pod.UID))
	return st, ok && err == nil
}

// stableAfter is how long a runner restarted after a failure must run before it counts
// as recovered.
const stableAfter = 30 * time.Second

// runnerFailure reports whether the pod's runner is failing: ended with an error, waiting
// to be restarted after one, or restarted after one less than stableAfter ago. msg is the
// runner's own account (its termination message), or its exit code.
func runnerFailure(pod *corev1.Pod) (msg string, failing bool) {
	if len(pod.Status.ContainerStatuses) == 0 {
		return "", false
	}
	cs := pod.Status.ContainerStatuses[0]
	last := cs.LastTerminationState.Terminated
	failedBefore := cs.RestartCount > 0 && last != nil && last.ExitCode != 0
	switch st := cs.State; {
	case st.Terminated != nil && st.Terminated.ExitCode != 0:
		last = st.Terminated
	case st.Waiting != nil && failedBefore:
	case st.Running != nil && failedBefore && time.Since(st.Running.StartedAt.Time) < stableAfter:
	default:
		return "", false
	}
	if m := strings.TrimSpace(last.Message); m != "" {
		return m, true
	}
	return fmt.Sprintf("exited with code %d (%s)", last.ExitCode, last.Reason), true
}

// imagePullReasons are the waiting reasons of a container whose image a node cannot get.
var imagePullReasons = map[string]bool{"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true,
	"ErrImageNeverPull": true}

// runnerStatus is the runner container's status, if the node has reported one (the
// cache keeps a pod's status, not its spec).
func runnerStatus(pod *corev1.Pod) *corev1.ContainerStatus {
	if len(pod.Status.ContainerStatuses) == 0 {
		return nil
	}
	return &pod.Status.ContainerStatuses[0]
}

func podPhase(pod *corev1.Pod) string {
	if pod.Status.Phase == "" {
		return "not scheduled yet"
	}
	return string(pod.Status.Phase)
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (r *StrategyReconciler) setStopped(sc *scope, phase v1.StrategyPhase, reason, msg string) {
	sc.strategy.Status.Phase = phase
	sc.strategy.Status.PodName = ""
	setCondition(sc.strategy, v1.ConditionReady, false, reason, msg)
	meta.RemoveStatusCondition(&sc.strategy.Status.Conditions, v1.ConditionTrading) // no runner
}

func setCondition(s *v1.Strategy, t string, ok bool, reason, msg string) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&s.Status.Conditions, metav1.Condition{
		Type: t, Status: status, Reason: reason, Message: msg, ObservedGeneration: s.Generation,
	})
}

// recordTransitions emits an event for every condition that changed in this pass, except
// one that first appears in the state it keeps while all is well (quietAtFirst): a new
// Strategy tells of its pod and of becoming Ready, not of six things not wrong.
// Every event is kept by the event broadcaster for series aggregation for six minutes or
// more, so events that say nothing cost memory that grows with the Strategies applied.
func (r *StrategyReconciler) recordTransitions(sc *scope) {
	for _, c := range sc.strategy.Status.Conditions {
		old := meta.FindStatusCondition(sc.before.Conditions, c.Type)
		if old == nil && quietAtFirst(c) {
			continue
		}
		// Degraded speaks again when what is wrong changes (a runner failing differently).
		if old != nil && old.Status == c.Status && old.Reason == c.Reason &&
			(c.Type != v1.ConditionDegraded || old.Message == c.Message) {
			continue
		}
		kind := corev1.EventTypeNormal
		// Degraded and StorageNearLimit warn when True; the others when False for a reason
		// other than a passing one.
		warnsWhenTrue := c.Type == v1.ConditionDegraded || c.Type == v1.ConditionStorageNearLimit
		if warnsWhenTrue == (c.Status == metav1.ConditionTrue) && c.Reason != ReasonPodPending &&
			c.Reason != ReasonPodReplacing && c.Reason != ReasonSuspended && c.Reason != ReasonDeleting &&
			c.Reason != tradingstatus.ReasonDrainingAll { // asked for: a change of identity
			kind = corev1.EventTypeWarning
		}
		r.eventAs(sc.strategy, kind, c.Reason, conditionAction(c), fmt.Sprintf("%s=%s: %s", c.Type, c.Status, c.Message))
	}
}

// quietAtFirst reports whether c is in the state its type keeps while all is well:
// StorageNearLimit False (Degraded and Draining are removed rather than False);
// PersistenceReady, UpToDate, StoreDurable and Trading True; Ready False only while the new pod
// starts (the CreatedPod event told of it). Any later change of these is an event.
func quietAtFirst(c metav1.Condition) bool {
	switch c.Type {
	case v1.ConditionDegraded, v1.ConditionStorageNearLimit, v1.ConditionDraining:
		return c.Status == metav1.ConditionFalse
	case v1.ConditionPersistenceReady, v1.ConditionUpToDate, v1.ConditionStoreDurable, v1.ConditionTrading:
		return c.Status == metav1.ConditionTrue
	case v1.ConditionReady:
		return c.Status == metav1.ConditionFalse && c.Reason == ReasonPodPending
	}
	return false
}

// conditionAction is the action of a condition's event. events.k8s.io merges the events
// of one type, reason, action and object into a series that keeps only the first note, so
// each condition has an action of its own, and each distinct Degraded message too: a
// runner that fails differently is told as a new event.
func conditionAction(c metav1.Condition) string {
	if c.Type != v1.ConditionDegraded || c.Status != metav1.ConditionTrue {
		return c.Type
	}
	sum := sha256.Sum256([]byte(c.Message))
	return c.Type + "-" + hex.EncodeToString(sum[:4])
}

func (r *StrategyReconciler) event(s *v1.Strategy, kind, reason, msg string) {
	r.eventAs(s, kind, reason, "Reconcile", msg)
}

func (r *StrategyReconciler) eventAs(s *v1.Strategy, kind, reason, action, msg string) {
	if r.Recorder != nil {
		r.Recorder.Eventf(s, nil, kind, reason, action, "%s", msg)
	}
}
