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

package scale

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/localcluster"
	"github.com/strategyops/strategy-operator/internal/names"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

// The loaded runs: the manager under a ServiceAccount of its own bound to its ClusterRole
// (config/rbac/role.yaml), its metrics served, reconciles the Strategies, and then a load
// generator plays their runners for loadFor: each Strategy's Lease renewed every
// renewEvery, as the runner's --retry-period does, and each StrategyState written once a
// candle, a signal opening, moving its stop on the three candles after, and closing on the
// fifth, each state's cycle starting at another candle (every candle, a fifth of the
// signals open and a fifth close). make bench compares 1,000 StrategyStates with 10,000 of
// the same shape.

// BenchmarkScaleLoaded1000States: 500 Strategies of two symbols each, busy.
func BenchmarkScaleLoaded1000States(b *testing.B) { benchLoaded(b, 500, 2) }

// BenchmarkScaleLoaded10000States: 5,000 Strategies of two symbols each, busy.
func BenchmarkScaleLoaded10000States(b *testing.B) { benchLoaded(b, 5000, 2) }

// BenchmarkScaleLoaded runs the size SCALE_STRATEGIES and SCALE_SYMBOLS name, busy, as
// BenchmarkScale runs it idle.
func BenchmarkScaleLoaded(b *testing.B) {
	n, syms := envSize(b)
	benchLoaded(b, n, syms)
}

const (
	// renewEvery is how often a runner renews its Lease (its --retry-period).
	renewEvery = 2 * time.Second
	// candle is how often a symbol's runner writes its StrategyState: one-minute candles,
	// each moving the signal.
	candle = time.Minute
	// signalCandles is how many candles a signal lives, its first write opening it and
	// its last closing it.
	signalCandles = 5
)

// loadFor is how long the load runs: SCALE_LOAD_SECONDS, two candles by default.
func loadFor(b *testing.B) time.Duration {
	s, err := envInt("SCALE_LOAD_SECONDS", int(2*candle/time.Second))
	if err != nil || s < 1 {
		b.Fatalf("SCALE_LOAD_SECONDS: want a number of seconds: %v", err)
	}
	return time.Duration(s) * time.Second
}

// benchLoaded reports, for n Strategies of syms symbols each under load: the manager's
// peak resident memory, the CPU it used while loaded (millicores), the API server's requests per
// second, the latency of the StrategyState writes (p50, p99), the reconcile queue's depth
// (largest and mean of one sample a second), and the renewals and writes the generator
// landed per second against those it meant to.
func benchLoaded(b *testing.B, n, syms int) {
	metricsAddr := freeAddr(b)
	run := startScale(b, n, syms, func(ctx context.Context, cluster *localcluster.Cluster, c client.Client) []string {
		return []string{"--kubeconfig", managerKubeconfig(ctx, b, cluster, c), "--metrics-bind-address=" + metricsAddr,
			"--metrics-secure=false"}
	})
	ctx := context.Background()
	pid := run.mgr.Process.Pid
	clientset, err := kubernetes.NewForConfig(run.cluster.Config)
	if err != nil {
		b.Fatal(err)
	}
	d := loadFor(b)
	signal := testenv.FixtureValue[v1.Signal](b, "signal-opened.json")
	requestsBefore := apiRequests(ctx, b, clientset)
	cpuBefore, _ := cpuSeconds(b, pid)
	queue := sampleQueueDepth("http://" + metricsAddr + "/metrics")
	start := time.Now()
	load := runLoad(ctx, run, d, &signal)
	window := time.Since(start).Seconds()
	depthMax, depthMean, samples := queue()
	cpuAfter, _ := cpuSeconds(b, pid)
	requests := apiRequests(ctx, b, clientset) - requestsBefore
	if samples == 0 {
		b.Fatal("the manager's metrics endpoint gave no workqueue_depth of the strategy controller")
	}
	if load.writes.Load() == 0 || load.renewals.Load() == 0 {
		b.Fatalf("the load landed %d writes and %d renewals", load.writes.Load(), load.renewals.Load())
	}

	b.ReportMetric(run.reconciled.Seconds(), "s-to-reconcile")
	b.ReportMetric(float64(peakRSS(b, pid))/(1<<20), "MiB-peak-rss")
	b.ReportMetric(1000*(cpuAfter-cpuBefore)/window, "manager-millicores")
	b.ReportMetric(requests/window, "api-requests/s")
	p50, p99 := load.percentiles()
	b.ReportMetric(p50.Seconds()*1000, "write-p50-ms")
	b.ReportMetric(p99.Seconds()*1000, "write-p99-ms")
	b.ReportMetric(depthMax, "queue-depth-max")
	b.ReportMetric(depthMean, "queue-depth-mean")
	b.ReportMetric(float64(load.renewals.Load())/window, "renewals/s")
	b.ReportMetric(float64(n)/renewEvery.Seconds(), "renewals/s-meant")
	b.ReportMetric(float64(load.writes.Load())/window, "writes/s")
	b.ReportMetric(float64(n*syms)/candle.Seconds(), "writes/s-meant")
	b.ReportMetric(float64(load.failed.Load()), "load-errors")
}

// freeAddr is a loopback address with a port free right now.
func freeAddr(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

// managerKubeconfig makes the manager's ServiceAccount, binds the manager's ClusterRole
// to it cluster-wide (the default install), and writes a kubeconfig with a token of it.
func managerKubeconfig(ctx context.Context, b *testing.B, cluster *localcluster.Cluster, c client.Client) string {
	role, err := testenv.ManagerRole()
	if err != nil {
		b.Fatal(err)
	}
	const ns, name = "strategy-operator-system", "strategy-operator-controller-manager"
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
		role,
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}}},
	} {
		if err := c.Create(ctx, obj); err != nil {
			b.Fatal(err)
		}
	}
	clientset, err := kubernetes.NewForConfig(cluster.Config)
	if err != nil {
		b.Fatal(err)
	}
	tr, err := clientset.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(4 * time.Hour / time.Second))},
	}, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: cluster.Config.Host,
		CertificateAuthorityData: cluster.Config.CAData, CertificateAuthority: cluster.Config.CAFile}
	kc.AuthInfos["manager"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["manager"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "manager"}
	kc.CurrentContext = "manager"
	path := filepath.Join(b.TempDir(), "manager.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		b.Fatal(err)
	}
	return path
}

// apiRequests is the API server's count of the requests it served so far
// (apiserver_request_total, summed).
func apiRequests(ctx context.Context, b *testing.B, clientset kubernetes.Interface) float64 {
	data, err := clientset.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		b.Fatal(err)
	}
	sum := 0.0
	for line := range strings.Lines(string(data)) {
		if strings.HasPrefix(line, "apiserver_request_total{") {
			sum += sampleValue(line)
		}
	}
	return sum
}

// sampleValue is the value of a line of the Prometheus text format (0 when unreadable).
func sampleValue(line string) float64 {
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[len(f)-1], 64)
	return v
}

// sampleQueueDepth reads the strategy controller's workqueue_depth from url once a second
// until the function it returns is called, which returns the largest and the mean of the
// samples, and their number.
func sampleQueueDepth(url string) func() (largest, mean float64, samples int) {
	stop, done := make(chan struct{}), make(chan struct{})
	var largest, sum float64
	var n int
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			depth, ok := queueDepth(url)
			if !ok {
				continue
			}
			largest, sum, n = max(largest, depth), sum+depth, n+1
		}
	}()
	return func() (float64, float64, int) {
		close(stop)
		<-done
		if n == 0 {
			return 0, 0, 0
		}
		return largest, sum / float64(n), n
	}
}

var metricsClient = &http.Client{Timeout: 5 * time.Second}

// queueDepth is the strategy controller's queue depth, summed over its series (one per
// priority the queue has seen).
func queueDepth(url string) (float64, bool) {
	resp, err := metricsClient.Get(url)
	if err != nil {
		return 0, false
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, false
	}
	depth, found := 0.0, false
	for line := range strings.Lines(string(data)) {
		if strings.HasPrefix(line, "workqueue_depth{") && strings.Contains(line, `name="strategy"`) {
			depth, found = depth+sampleValue(line), true
		}
	}
	return depth, found
}

// load counts what the generator landed.
type load struct {
	renewals, writes, failed atomic.Int64
	mu                       sync.Mutex
	latencies                []time.Duration
}

func (l *load) wrote(took time.Duration) {
	l.writes.Add(1)
	l.mu.Lock()
	l.latencies = append(l.latencies, took)
	l.mu.Unlock()
}

// percentiles are the StrategyState writes' median and 99th percentile latency.
func (l *load) percentiles() (p50, p99 time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	slices.Sort(l.latencies)
	at := func(q float64) time.Duration { return l.latencies[int(q*float64(len(l.latencies)-1))] }
	return at(0.50), at(0.99)
}

// workers is how many goroutines renew Leases, and how many write StrategyStates.
const workers = 64

// runLoad plays the runners of run's Strategies for d, their signals made from signal.
func runLoad(ctx context.Context, run *scaleRun, d time.Duration, signal *v1.Signal) *load {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	l := &load{}
	type state struct{ strategy, symbol string }
	states := make([]state, 0, len(run.strategies)*len(run.symbols))
	for _, s := range run.strategies {
		for _, sym := range run.symbols {
			states = append(states, state{s, sym})
		}
	}
	var wg sync.WaitGroup
	for w := range workers {
		var leases []string
		for i := w; i < len(run.strategies); i += workers {
			leases = append(leases, run.strategies[i])
		}
		if len(leases) > 0 {
			wg.Go(func() { renewLeases(ctx, run, leases, l) })
		}
		var mine []int // indices into states
		for i := w; i < len(states); i += workers {
			mine = append(mine, i)
		}
		if len(mine) == 0 {
			continue
		}
		wg.Go(func() {
			p := domain.New(domain.StrategyStateBackend(run.c, domain.KubeOptions{Namespace: run.ns}))
			defer func() { _ = p.Close() }()
			// The writes are spread evenly over the candle, each state's at its place among
			// them all.
			start := time.Now()
			for round := 0; ; round++ {
				for _, i := range mine {
					st := states[i]
					due := start.Add(time.Duration(round)*candle + time.Duration(i)*candle/time.Duration(len(states)))
					select {
					case <-ctx.Done():
						return
					case <-time.After(time.Until(due)):
					}
					k := domain.StrategyKey(st.symbol, st.strategy, "simulated")
					began := time.Now()
					err := p.WriteSignal(ctx, k, candleSignal(signal, k, round+i))
					switch {
					case err == nil:
						l.wrote(time.Since(began))
					case ctx.Err() == nil:
						l.failed.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	return l
}

// candleSignal is what a runner writes for k on its candle n (its states' cycles start
// apart, so that every candle some signals open and some close): a signal, like signal,
// opened on the first of every signalCandles, its stop moved on the next ones, none on the
// last.
func candleSignal(signal *v1.Signal, k domain.Key, n int) *v1.Signal {
	step := n % signalCandles
	if step == signalCandles-1 {
		return nil
	}
	sig := *signal
	sig.ID = fmt.Sprintf("%s-%s-%d", k.StrategyName, k.Symbol, n/signalCandles)
	sig.Symbol, sig.StrategyName, sig.ExchangeName = k.Symbol, k.StrategyName, k.ExchangeName
	sig.PriceStopLoss += 0.1 * float64(step)
	return &sig
}

// renewLeases renews each of the Strategies' Leases every renewEvery, as their runners
// would, holding each under a runner's identity.
func renewLeases(ctx context.Context, run *scaleRun, strategies []string, l *load) {
	leases := make([]*coordinationv1.Lease, len(strategies))
	for i, s := range strategies {
		leases[i] = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: run.ns,
			Name: names.LeaseName(s, "simulated")}}
	}
	start := time.Now()
	for round := 1; ; round++ {
		for i, lease := range leases {
			if ctx.Err() != nil {
				return
			}
			if lease.ResourceVersion == "" {
				if err := run.c.Get(ctx, client.ObjectKeyFromObject(lease), lease); err != nil {
					if ctx.Err() == nil {
						l.failed.Add(1)
					}
					continue
				}
			}
			now := metav1.NowMicro()
			lease.Spec.HolderIdentity = new(strategies[i] + "-runner")
			lease.Spec.LeaseDurationSeconds = new(int32(15))
			lease.Spec.RenewTime = &now
			if lease.Spec.AcquireTime == nil {
				lease.Spec.AcquireTime = &now
			}
			err := run.c.Update(ctx, lease)
			switch {
			case err == nil:
				l.renewals.Add(1)
			case apierrors.IsConflict(err):
				lease.ResourceVersion = "" // read it again on the next round
				l.failed.Add(1)
			case ctx.Err() == nil:
				l.failed.Add(1)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(start.Add(time.Duration(round) * renewEvery))):
		}
	}
}
