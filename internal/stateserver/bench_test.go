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

package stateserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
	"github.com/strategyops/strategy-operator/internal/stateserver"
	"github.com/strategyops/strategy-operator/internal/testenv"
	"github.com/strategyops/strategy-operator/pkg/stateapi"
)

// The benchmarks compare a write through the state API (runner exec's endpoint: HTTP on a
// Unix socket) with the same write made in-process (the store the API writes through), on
// the same backend in the same run; hack/benchratio prints the ratio (make bench). Every
// write stores a different snapshot of about 1 KiB.

var benchNote = strings.Repeat("x", 1000)

func snapshot(n int) []byte {
	return fmt.Appendf(nil, `{"isPaused":false,"retryOpenCount":%d,"lastPendingId":%q}`, n, benchNote)
}

var benchKey = domain.StrategyKey("BTCUSDT", "bench", "simulated")

// inProcess writes through the store itself.
func inProcess(b *testing.B, backend domain.Backend) {
	ctx := context.Background()
	st, err := domain.NewAdapter[json.RawMessage](domain.Strategy, backend).Store(ctx, benchKey)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	for n := 0; b.Loop(); n++ {
		if _, err := st.Write(ctx, "strategy", json.RawMessage(snapshot(n))); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

// throughEndpoint writes through the API on a Unix socket.
func throughEndpoint(b *testing.B, backend domain.Backend) {
	s := stateserver.New(stateserver.Config{StrategyName: "bench", ExchangeName: "simulated", Symbols: []string{"BTCUSDT"},
		Backend: backend, Limits: v1.DefaultSignalLimits})
	socket := filepath.Join(b.TempDir(), "state.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: s}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close(); _ = s.Close() })
	c := stateapi.UnixClient(socket)
	url := "http://state/v1/strategy/strategy?symbol=BTCUSDT&strategyName=bench&exchangeName=simulated"
	for n := 0; b.Loop(); n++ {
		req, err := http.NewRequest(http.MethodPut, url, strings.NewReader(string(snapshot(n))))
		if err != nil {
			b.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			b.Fatalf("PUT answered %d", resp.StatusCode)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

func BenchmarkInProcessFile(b *testing.B)      { inProcess(b, domain.FileBackend(b.TempDir())) }
func BenchmarkEndpointFile(b *testing.B)       { throughEndpoint(b, domain.FileBackend(b.TempDir())) }
func BenchmarkInProcessConfigMap(b *testing.B) { inProcess(b, configMaps(b)) }
func BenchmarkEndpointConfigMap(b *testing.B)  { throughEndpoint(b, configMaps(b)) }

// configMaps is the ConfigMap backend in a namespace of its own, fenced as a runner writes.
func configMaps(b *testing.B) domain.Backend {
	ns := env.Namespace(context.Background(), b)
	return domain.ConfigMapBackend(env.Client, domain.KubeOptions{Namespace: ns, Create: true,
		Fencing: kubestore.Fencing{Writer: "bench", Token: 1}})
}

var env *testenv.Environment

func TestMain(m *testing.M) { testenv.RunMain(m, &env) }
