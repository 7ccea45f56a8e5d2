//go:build e2e

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

package e2e

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/runner"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

// connectionSecret starts a database server for the spec and puts its URL in a Secret of
// ns labelled for Strategies, made with kubectl; it returns the URL.
func connectionSecret(ctx context.Context, ns, name string, b v1.PersistenceBackend) string {
	var url string
	switch b {
	case v1.BackendRedis:
		r, err := testenv.StartRedis(ctx)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(r.Stop)
		url = r.URL
	case v1.BackendPostgreSQL:
		p, err := testenv.StartPostgres(ctx)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(p.Stop)
		url = p.URL
	case v1.BackendMongoDB:
		m, err := testenv.StartMongo(ctx)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(m.Stop)
		url = m.URL("strategies")
	}
	kubectl(ctx, "create", "secret", "generic", name, "-n", ns, "--from-literal=url="+url)
	kubectl(ctx, "label", "secret", name, "-n", ns, v1.ConnectionSecretLabel+"=true")
	return url
}

var _ = Describe("strategies on a database", func() {
	It("restores an open signal after a Redis-backed runner is SIGKILLed, and closes it exactly once",
		func(ctx SpecContext) {
			ns := newNamespace(ctx)
			url := connectionSecret(ctx, ns, "redis", v1.BackendRedis)
			symbols := []string{"BTCUSDT", "ETHUSDT", "SOLUSDT"}
			cmd := cluster.KubectlCommand(ctx, "apply", "-n", ns, "-f", "-")
			cmd.Stdin = strings.NewReader(fmt.Sprintf(`apiVersion: trading.strategyops.dev/v1alpha1
kind: Strategy
metadata: {name: cached}
spec:
  exchangeName: simulated
  symbols: [%s]
  args: [--strategy=indicator, --speed=60, %s, --option=take-profit=4, --option=stop-loss=3, --option=minutes=20]
  persistence:
    backend: Redis
    redis: {urlSecretRef: {name: redis, key: url}}
  retention: Delete
`, strings.Join(symbols, ", "), fastLease))
			out, err := cmd.CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), string(out))
			pid := waitRunning(ctx, ns, "cached")

			db, err := domain.OpenDatabase(ctx, v1.BackendRedis, url)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(db.Close)
			state := domain.New(db.Backend(domain.NoFencing))
			DeferCleanup(state.Close)
			events := func(symbol, id string) []string {
				s, err := state.History.Store(ctx, domain.StrategyKey(symbol, "cached", "simulated"))
				Expect(err).NotTo(HaveOccurred())
				e, err := s.Read(ctx, id)
				if err != nil {
					return nil
				}
				return eventKinds(*e)
			}

			By("waiting for an open signal in Redis, then killing the runner with SIGKILL")
			var symbol, id string
			Eventually(func() string {
				for _, sym := range symbols {
					sig, err := state.ReadSignal(ctx, domain.StrategyKey(sym, "cached", "simulated"))
					Expect(err).NotTo(HaveOccurred())
					if sig != nil {
						symbol, id = sym, sig.ID
						Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())
						return id
					}
				}
				return ""
			}, 2*time.Minute, 100*time.Millisecond).ShouldNot(BeEmpty())
			Expect(events(symbol, id)).NotTo(ContainElement(runner.KindClose), "the signal closed before the kill")

			By("the kubelet restarts the container; the new runner resumes the signal from Redis")
			Eventually(func() string {
				return kubectl(ctx, "get", "pod", "cached-runner", "-n", ns,
					"-o", "jsonpath={.status.containerStatuses[0].restartCount}")
			}, 30*time.Second).Should(Equal("1"))
			Eventually(func() int { return logLines(ns, "cached", "Resuming an open signal", id) }, 30*time.Second).
				Should(Equal(1))

			By("the signal closes, and the ledger in Redis holds it opened once and closed once")
			Eventually(func() []string { return events(symbol, id) }, 3*time.Minute, time.Second).
				Should(ContainElement(runner.KindClose))
			Expect(events(symbol, id)).To(Equal([]string{runner.KindOpen, runner.KindClose}))
			Expect(strings.Contains(runnerLog(ns, "cached"), url)).To(BeFalse(), "the runner logged its URL")
		})
})
