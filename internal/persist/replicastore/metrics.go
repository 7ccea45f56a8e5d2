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

package replicastore

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	lagDesc = prometheus.NewDesc("strategyops_store_replica_lag_seconds",
		"Age of the oldest change a replica has not applied yet, 0 when it is up to date; the largest over the "+
			"stores copied to it.", []string{"replica"}, nil)
	queueDesc = prometheus.NewDesc("strategyops_store_replica_queue_length",
		"Changes waiting to be applied to a replica, over the stores copied to it.", []string{"replica"}, nil)
)

// collector reports the lag of the replicas of the drivers not closed yet.
type collector struct {
	mu   sync.Mutex
	live map[*replicated]struct{}
}

var lags = &collector{live: map[*replicated]struct{}{}}

func init() { crmetrics.Registry.MustRegister(lags) }

func (c *collector) add(d *replicated) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live[d] = struct{}{}
}

func (c *collector) remove(d *replicated) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.live, d)
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagDesc
	ch <- queueDesc
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	lag := map[string]time.Duration{}
	queued := map[string]int{}
	c.mu.Lock()
	for d := range c.live {
		for _, r := range d.replicas {
			l, n := r.lag()
			lag[r.Name] = max(lag[r.Name], l)
			queued[r.Name] += n
		}
	}
	c.mu.Unlock()
	for name, l := range lag {
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, l.Seconds(), name)
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(queued[name]), name)
	}
}
