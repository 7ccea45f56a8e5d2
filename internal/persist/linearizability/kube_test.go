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

package linearizability_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strategyops/strategy-operator/internal/persist/configmapstore"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
	"github.com/strategyops/strategy-operator/internal/persist/strategystatestore"
	"github.com/strategyops/strategy-operator/internal/testenv"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// env is one real kube-apiserver and etcd for the package.
var env *testenv.Environment

func TestMain(m *testing.M) {
	if spec := os.Getenv(fileChildEnv); spec != "" {
		fmt.Fprintln(os.Stderr, fileChild(spec))
		os.Exit(2)
	}
	testenv.RunMain(m, &env)
}

const (
	kubeClients = 12
	kubeOps     = 200
	// kubeTimeout bounds each call; a call still retrying then is unknown. Connection cuts
	// are short: their calls retry through them and end with an answer.
	kubeTimeout = 5 * time.Second
	// outageTimeout is shorter than an API server restart: the calls in flight at a kill
	// end unknown. It is long enough that a restarted API server still slow with its first
	// answers (a busy machine, the race detector) answers within it: a call that ends
	// unknown then is a fault's, and the unanswered calls stay within what the kills explain.
	outageTimeout = 2500 * time.Millisecond
)

var kubeKeys = []string{"BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"}

// kubeClient is a client of the API server at host without client-side rate limiting, so
// that the clients contend as hard as separate runners would.
func kubeClient(t *testing.T, host string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Host = host
	cfg.QPS, cfg.Burst = -1, 0
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// proxiedClients gives each of kubeClients clients its own proxy in front of the API
// server, so a cut can take one client off the network while the others go on writing.
func proxiedClients(t *testing.T) ([]client.Client, []*testenv.Proxy) {
	t.Helper()
	n := kubeClients
	clients := make([]client.Client, n)
	proxies := make([]*testenv.Proxy, n)
	for i := range n {
		p := env.APIServerProxy(t)
		proxies[i], clients[i] = p, kubeClient(t, "https://"+p.Addr())
	}
	return clients, proxies
}

// initAll initializes every driver, each on its own: they are separate writers.
func initAll(t *testing.T, drivers []driver.Driver) []driver.Driver {
	t.Helper()
	// A loaded machine can answer a first connection later than a driver's short connect
	// timeout (which is there for the cuts): a connection that failed is tried again, for
	// up to two minutes.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	for _, d := range drivers {
		for {
			_, err := d.Init(ctx, true)
			if err == nil {
				break
			}
			if !unsent(ctx, err) {
				t.Fatal(err)
			}
		}
	}
	return drivers
}

// configMaps opens one ConfigMap driver per client on the same ConfigMap.
func configMaps(t *testing.T, clients []client.Client) []driver.Driver {
	t.Helper()
	name := types.NamespacedName{Namespace: env.Namespace(t.Context(), t), Name: "linearizability"}
	drivers := make([]driver.Driver, len(clients))
	for i, c := range clients {
		drivers[i] = configmapstore.New(c, name, configmapstore.Options{Options: kubestore.Options{Create: true}})
	}
	return initAll(t, drivers)
}

// strategyStates opens one driver of the partial field per client on the same StrategyState.
func strategyStates(t *testing.T, clients []client.Client) []driver.Driver {
	t.Helper()
	ns := env.Namespace(t.Context(), t)
	k := strategystatestore.Key{StrategyName: "linearizability", ExchangeName: "e", Symbol: "BTCUSDT"}
	opts := strategystatestore.Options{Options: kubestore.Options{Create: true}}
	drivers := make([]driver.Driver, len(clients))
	for i, c := range clients {
		drivers[i] = strategystatestore.New(c, ns, k, strategystatestore.FieldPartial, opts)
	}
	return initAll(t, drivers)
}

// pace is how cuts cut: a cut every gap (plus up to gapSpread), down for down (plus up to
// downSpread), every client's connections at once one cut in allOneIn, else one client's.
type pace struct {
	gap, gapSpread, down, downSpread time.Duration
	allOneIn                         int
	// most bounds the cuts of a run (0: none), so that a slow machine, whose clients take
	// longer, does not meet more of them than the checker can decide.
	most int
}

// apiServerPace: short, frequent cuts, so that many land between the API server applying
// an update and the client reading the answer.
var apiServerPace = pace{gap: 2 * time.Millisecond, gapSpread: 20 * time.Millisecond,
	down: time.Millisecond, downSpread: 30 * time.Millisecond, allOneIn: 4}

// cuts drops connections at random moments, at pace p, until the clients are nearly done.
func cuts(proxies []*testenv.Proxy, p pace) func(func() float64) faults {
	return func(progress func() float64) faults {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
		n, cut := 0, 0
		for progress() < 0.9 && (p.most == 0 || n < p.most) {
			time.Sleep(p.gap + time.Duration(rng.Int64N(int64(p.gapSpread))))
			down := proxies[rng.IntN(len(proxies)):][:1]
			if rng.IntN(p.allOneIn) == 0 {
				down = proxies
			}
			for _, px := range down {
				px.Down()
			}
			time.Sleep(p.down + time.Duration(rng.Int64N(int64(p.downSpread))))
			for _, px := range down {
				px.Up()
			}
			n, cut = n+1, cut+len(down)
		}
		return faults{n: n, kind: "connection cuts", cut: cut}
	}
}

// TestConfigMapConnectionCuts: separate ConfigMap drivers, each behind its own proxy,
// while connections are cut mid-request.
func TestConfigMapConnectionCuts(t *testing.T) {
	clients, proxies := proxiedClients(t)
	requireLinearizable(t, run{name: "configmap, connection cuts", keys: kubeKeys, ops: kubeOps,
		timeout: kubeTimeout, drivers: configMaps(t, clients), faults: cuts(proxies, apiServerPace)})
}

// TestStrategyStateConnectionCuts: the same on the partial field of one StrategyState.
func TestStrategyStateConnectionCuts(t *testing.T) {
	clients, proxies := proxiedClients(t)
	requireLinearizable(t, run{name: "strategystate partial, connection cuts", keys: []string{"s1", "s2", "s3", "s4"},
		ops: kubeOps, timeout: kubeTimeout, drivers: strategyStates(t, clients), faults: cuts(proxies, apiServerPace)})
}

// TestConfigMapAPIServerKill: separate ConfigMap drivers while the API server is SIGKILLed
// and started again, twice, on the same port, certificates and etcd.
func TestConfigMapAPIServerKill(t *testing.T) {
	requireLinearizable(t, run{name: "configmap, API server kills", keys: kubeKeys, ops: kubeOps,
		timeout: outageTimeout, drivers: configMaps(t, directClients(t)), faults: apiserverKills(t)})
}

// TestStrategyStateAPIServerKill: the same on the partial field of one StrategyState.
func TestStrategyStateAPIServerKill(t *testing.T) {
	requireLinearizable(t, run{name: "strategystate partial, API server kills", keys: []string{"s1", "s2", "s3", "s4"},
		ops: kubeOps, timeout: outageTimeout, drivers: strategyStates(t, directClients(t)), faults: apiserverKills(t)})
}

// directClients are kubeClients clients of the API server itself, no proxy between.
func directClients(t *testing.T) []client.Client {
	clients := make([]client.Client, kubeClients)
	for i := range clients {
		clients[i] = kubeClient(t, env.Config.Host)
	}
	return clients
}

// apiserverKills SIGKILLs the API server at a random point of each half of the history
// and restarts it through envtest, which keeps its port, certificates and etcd.
func apiserverKills(t *testing.T) func(func() float64) faults {
	return func(progress func() float64) faults {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
		var down time.Duration
		var outages []time.Duration
		for n, half := range []float64{0, 0.5} {
			for at := half + 0.1 + 0.3*rng.Float64(); progress() < at; {
				time.Sleep(5 * time.Millisecond)
			}
			start := time.Now()
			if err := env.KillAPIServer(); err != nil {
				t.Error(err)
				return faults{n: n, kind: "API server kills", outages: outages}
			}
			if err := env.StartAPIServer(); err != nil {
				t.Errorf("restarting the API server: %v", err)
				return faults{n: n + 1, kind: "API server kills (the restart failed)", outages: outages}
			}
			outages = append(outages, time.Since(start))
			down += time.Since(start)
		}
		return faults{n: 2, kind: fmt.Sprintf("API server SIGKILLs, down %s in all", down.Round(time.Millisecond)),
			outages: outages}
	}
}
