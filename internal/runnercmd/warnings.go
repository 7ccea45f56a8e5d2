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
	"fmt"
	"log/slog"
	"os"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/runner"
)

// warnings reports what the engine noticed in the store as Warning events on the
// Strategy (when the runner knows its name), besides its own log.
func warnings(c client.Client, s runner.Settings, log *slog.Logger) func(runner.Notice) {
	if s.StrategyObject == "" {
		return nil
	}
	instance := os.Getenv("POD_NAME")
	if instance == "" {
		instance, _ = os.Hostname()
	}
	return func(n runner.Notice) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ev := &eventsv1.Event{
			ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace,
				Name: fmt.Sprintf("%s.%x", s.StrategyObject, time.Now().UnixNano())}, // as client-go names them
			EventTime:           metav1.NowMicro(),
			ReportingController: "strategyops.dev/runner",
			ReportingInstance:   instance,
			Action:              "FollowStore",
			Reason:              n.Reason,
			Type:                corev1.EventTypeWarning,
			Note:                truncate(n.Message, 1024),
			Regarding: corev1.ObjectReference{APIVersion: v1.GroupVersion.String(), Kind: "Strategy",
				Name: s.StrategyObject, Namespace: s.Namespace},
		}
		if err := c.Create(ctx, ev); err != nil {
			log.Error("Could not record a Warning event", "reason", n.Reason, "error", err.Error())
		}
	}
}

// truncate cuts s to at most n bytes, at a character boundary.
func truncate(s string, n int) string {
	for len(s) > n {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}
