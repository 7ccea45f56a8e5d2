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

package runnermetrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Off is the bind address that serves nothing (as the manager's flags say it).
const Off = "0"

// The paths served.
const (
	PathMetrics = "/metrics"
	PathHealthz = "/healthz"
	PathReadyz  = "/readyz"
)

// shutdownTimeout bounds how long stopping waits for requests under way.
const shutdownTimeout = 2 * time.Second

// Serve serves /metrics on metricsAddr — the runner's metrics and those of
// controller-runtime's registry, where the stores register theirs (strategyops_store_*) —
// and /healthz and /readyz on healthAddr (the same address serves both). An address that
// is "" or Off serves nothing. /healthz answers 200 while the process runs, a runner
// waiting for the Lease included, so that a liveness probe never kills a standby or a
// long restore; /readyz answers 200 only in PhaseTrading, and 503 naming the phase
// otherwise. stop ends serving.
func (m *Metrics) Serve(metricsAddr, healthAddr string, log *slog.Logger) (stop func(), err error) {
	metrics := promhttp.HandlerFor(prometheus.Gatherers{m.reg, crmetrics.Registry},
		promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	var servers []*http.Server
	stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		for _, srv := range servers {
			if srv.Shutdown(ctx) != nil {
				_ = srv.Close()
			}
		}
	}
	mux := map[string]*http.ServeMux{}
	add := func(addr, path string, h http.Handler) {
		if addr == "" || addr == Off {
			return
		}
		if mux[addr] == nil {
			mux[addr] = http.NewServeMux()
		}
		mux[addr].Handle(path, h)
	}
	add(metricsAddr, PathMetrics, metrics)
	add(healthAddr, PathHealthz, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, "ok")
	}))
	add(healthAddr, PathReadyz, http.HandlerFunc(m.readyz))
	for _, addr := range []string{metricsAddr, healthAddr} {
		h := mux[addr]
		if h == nil {
			continue
		}
		delete(mux, addr) // one server per address
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			stop()
			return nil, fmt.Errorf("serving metrics and probes on %s: %w", addr, err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("Serving metrics and probes failed", "address", ln.Addr().String(), "error", err.Error())
			}
		}()
		log.Info("Serving metrics and probes", "address", ln.Addr().String(), "metrics", addr == metricsAddr,
			"probes", addr == healthAddr)
	}
	return stop, nil
}

// readyz answers 200 while the runner trades, 503 naming its phase otherwise.
func (m *Metrics) readyz(w http.ResponseWriter, _ *http.Request) {
	p := m.Phase()
	if p != PhaseTrading {
		http.Error(w, "not ready: "+string(p), http.StatusServiceUnavailable)
		return
	}
	_, _ = fmt.Fprintln(w, "ok:", p)
}
