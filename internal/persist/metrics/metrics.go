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

// Package metrics holds the Prometheus metrics of the persistence backends, registered
// with controller-runtime's registry so that the manager and the runner serve them.
package metrics

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// Label names: the backend a series is about, and a store object's namespace and name.
const (
	labelBackend   = "backend"
	labelNamespace = "namespace"
	labelObject    = "object"
)

var (
	operations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strategyops_store_operations_total",
		Help: "Store operations by backend, operation and result.",
	}, []string{labelBackend, "operation", "result"})
	latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "strategyops_store_operation_duration_seconds",
		Help:    "Latency of store operations, including retries.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{labelBackend, "operation"})
	conflictsRetried = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strategyops_store_conflicts_retried_total",
		Help: "Compare-and-swap attempts that lost to another writer and were retried.",
	}, []string{labelBackend})
	fencedWrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strategyops_store_fenced_writes_total",
		Help: "Writes refused because a writer with a newer fencing token holds the store.",
	}, []string{labelBackend})
	usage = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "strategyops_store_object_usage_ratio",
		Help: "How full a store object is after its last write: the larger of its data and its annotations, " +
			"each as a fraction of the API server's limit.",
	}, []string{labelBackend, labelNamespace, labelObject})
	objectBytes = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "strategyops_store_object_bytes",
		Help: "Bytes of a store object's data (a ConfigMap's data, a StrategyState's spec) after its last write, " +
			"against strategyops_store_object_limit_bytes.",
	}, []string{labelBackend, labelNamespace, labelObject})
	objectLimit = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "strategyops_store_object_limit_bytes",
		Help: "The most bytes of data the API server lets a store object hold.",
	}, []string{labelBackend, labelNamespace, labelObject})
	batchSize = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "strategyops_store_group_commit_batch_size",
		Help:    "Operations carried by one group-committed update.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 10),
	}, []string{labelBackend})
)

func init() {
	crmetrics.Registry.MustRegister(operations, latency, conflictsRetried, fencedWrites, usage, objectBytes, objectLimit,
		batchSize)
}

// result is the label value for err.
func result(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, driver.ErrNotFound):
		return "not_found"
	case errors.Is(err, driver.ErrConflict):
		return "conflict"
	case errors.Is(err, driver.ErrFenced):
		return "fenced"
	case errors.Is(err, driver.ErrTooLarge):
		return "too_large"
	default:
		return "error"
	}
}

// Observe records one operation that started at start and ended with err.
func Observe(backend, op string, start time.Time, err error) {
	operations.WithLabelValues(backend, op, result(err)).Inc()
	latency.WithLabelValues(backend, op).Observe(time.Since(start).Seconds())
	if errors.Is(err, driver.ErrFenced) {
		fencedWrites.WithLabelValues(backend).Inc()
	}
}

// ConflictRetried counts one lost compare-and-swap that will be tried again.
func ConflictRetried(backend string) { conflictsRetried.WithLabelValues(backend).Inc() }

// Batch records the size of one group-committed update.
func Batch(backend string, n int) { batchSize.WithLabelValues(backend).Observe(float64(n)) }

// Usage records how full a store object is (0 to 1) after a write.
func Usage(backend, namespace, object string, ratio float64) {
	usage.WithLabelValues(backend, namespace, object).Set(ratio)
}

// Size records the bytes of a store object's data after a write, and its limit.
func Size(backend, namespace, object string, used, limit int) {
	objectBytes.WithLabelValues(backend, namespace, object).Set(float64(used))
	objectLimit.WithLabelValues(backend, namespace, object).Set(float64(limit))
}
