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

package v1alpha1_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

// env is one real kube-apiserver and etcd, shared by the tests of this package.
var env *testenv.Environment

func TestMain(m *testing.M) { testenv.RunMain(m, &env) }

func decodeSignal(t *testing.T, name string) *v1.Signal {
	t.Helper()
	var s v1.Signal
	if err := json.Unmarshal(fixture(t, name), &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// stateFor wraps a signal row in a StrategyState whose key matches the row.
func stateFor(ns, name string, sig, scheduled *v1.Signal) *v1.StrategyState {
	row := sig
	if row == nil {
		row = scheduled
	}
	return &v1.StrategyState{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1.StrategyStateSpec{
			StrategyName:    row.StrategyName,
			ExchangeName:    row.ExchangeName,
			Symbol:          row.Symbol,
			Phase:           v1.PhaseFor(sig, scheduled),
			Signal:          sig,
			ScheduledSignal: scheduled,
		},
	}
}

func TestFixturesRoundTripThroughAPIServer(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(ctx, t)

	cases := []struct {
		name string
		file string
		row  func(*v1.StrategyState) any
		set  func(*v1.StrategyState, []byte) error
	}{
		{"active signal", "signal-opened.json",
			func(s *v1.StrategyState) any { return s.Spec.Signal }, nil},
		{"activated from schedule", "signal-activated-from-schedule.json",
			func(s *v1.StrategyState) any { return s.Spec.Signal }, nil},
		{"scheduled signal", "schedule-scheduled.json",
			func(s *v1.StrategyState) any { return s.Spec.ScheduledSignal }, nil},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			sig := decodeSignal(t, tc.file)
			var st *v1.StrategyState
			if sig.IsScheduled {
				st = stateFor(ns, fmt.Sprintf("rt-%d", i), nil, sig)
			} else {
				st = stateFor(ns, fmt.Sprintf("rt-%d", i), sig, nil)
			}
			g.Expect(env.Client.Create(ctx, st)).To(Succeed())

			var got v1.StrategyState
			g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(st), &got)).To(Succeed())
			out, err := json.Marshal(tc.row(&got))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out).To(MatchJSON(fixture(t, tc.file)))
		})
	}

	t.Run("snapshot, partial and breakeven", func(t *testing.T) {
		g := NewWithT(t)
		sig := decodeSignal(t, "signal-opened.json")
		st := stateFor(ns, "rt-domains", sig, nil)
		var snap v1.StrategySnapshot
		var partial v1.PartialData
		var breakeven v1.BreakevenData
		g.Expect(json.Unmarshal(fixture(t, "strategy-snapshot.json"), &snap)).To(Succeed())
		g.Expect(json.Unmarshal(fixture(t, "partial.json"), &partial)).To(Succeed())
		g.Expect(json.Unmarshal(fixture(t, "breakeven.json"), &breakeven)).To(Succeed())
		st.Spec.Snapshot = &snap
		st.Spec.Partial = map[string]v1.PartialData{sig.ID: partial}
		st.Spec.Breakeven = map[string]v1.BreakevenData{sig.ID: breakeven}
		g.Expect(env.Client.Create(ctx, st)).To(Succeed())

		var got v1.StrategyState
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(st), &got)).To(Succeed())
		for file, v := range map[string]any{
			"strategy-snapshot.json": got.Spec.Snapshot,
			"partial.json":           got.Spec.Partial[sig.ID],
			"breakeven.json":         got.Spec.Breakeven[sig.ID],
		} {
			out, err := json.Marshal(v)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out).To(MatchJSON(fixture(t, file)), file)
		}
	})

	t.Run("unbounded minuteEstimatedTime and unknown fields", func(t *testing.T) {
		g := NewWithT(t)
		sig := decodeSignal(t, "signal-opened.json")
		sig.MinuteEstimatedTime = nil
		raw := []byte(`{"level":3}`)
		sig.Extra = map[string]apiextensionsv1.JSON{"_futureField": {Raw: raw}}
		st := stateFor(ns, "rt-unbounded", sig, nil)
		g.Expect(env.Client.Create(ctx, st)).To(Succeed())
		var got v1.StrategyState
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(st), &got)).To(Succeed())
		g.Expect(got.Spec.Signal.MinuteEstimatedTime).To(BeNil())
		g.Expect(got.Spec.Signal.Extra).To(HaveKey("_futureField"))
		g.Expect(got.Spec.Signal.Extra["_futureField"].Raw).To(MatchJSON(raw))
	})
}

// TestInvalidSignalsRejected sends one signal per rule that breaks it and expects the API
// server to refuse it with that rule's message.
func TestInvalidSignalsRejected(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(ctx, t)
	minutes := func(v int64) *int64 { return &v }
	num := func(v float64) *float64 { return &v }

	cases := []struct {
		name    string
		mutate  func(*v1.Signal)
		message string
	}{
		{"position", func(s *v1.Signal) { s.Position = "sideways" }, `supported values: "long", "short"`},
		{"priceOpen positive", func(s *v1.Signal) { s.PriceOpen = 0 }, "priceOpen must be positive"},
		{"priceTakeProfit positive", func(s *v1.Signal) { s.PriceTakeProfit = -1 }, "priceTakeProfit must be positive"},
		{"priceStopLoss positive", func(s *v1.Signal) { s.PriceStopLoss = 0 }, "priceStopLoss must be positive"},
		{"long take profit", func(s *v1.Signal) { s.PriceTakeProfit = 99.9 }, "Long: priceTakeProfit must be > priceOpen"},
		{"long stop loss", func(s *v1.Signal) { s.PriceStopLoss = 100 }, "Long: priceStopLoss must be < priceOpen"},
		{"short take profit", func(s *v1.Signal) {
			s.Position, s.PriceTakeProfit, s.PriceStopLoss = v1.PositionShort, 100.5, 101.5
		}, "Short: priceTakeProfit must be < priceOpen"},
		{"short stop loss", func(s *v1.Signal) {
			s.Position, s.PriceTakeProfit, s.PriceStopLoss = v1.PositionShort, 98.5, 99.5
		}, "Short: priceStopLoss must be > priceOpen"},
		{"minuteEstimatedTime zero", func(s *v1.Signal) { s.MinuteEstimatedTime = minutes(0) },
			"minuteEstimatedTime must be a positive integer, or null for unbounded"},
		{"minuteEstimatedTime negative", func(s *v1.Signal) { s.MinuteEstimatedTime = minutes(-5) },
			"minuteEstimatedTime must be a positive integer, or null for unbounded"},
		{"multiplier", func(s *v1.Signal) { s.Multiplier = num(0) }, "multiplier must be positive"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			for _, scheduled := range []bool{false, true} {
				sig := decodeSignal(t, "signal-opened.json")
				tc.mutate(sig)
				st := stateFor(ns, fmt.Sprintf("bad-%d-%t", i, scheduled), sig, nil)
				if scheduled {
					st = stateFor(ns, fmt.Sprintf("bad-%d-%t", i, scheduled), nil, sig)
				}
				err := env.Client.Create(ctx, st)
				g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
				g.Expect(err.Error()).To(ContainSubstring(tc.message))
				field := "spec.signal"
				if scheduled {
					field = "spec.scheduledSignal"
				}
				g.Expect(err.Error()).To(ContainSubstring(field))
			}
		})
	}

	t.Run("minuteEstimatedTime must be an integer", func(t *testing.T) {
		g := NewWithT(t)
		obj := sampleStateUnstructured(t, ns, "bad-fraction")
		g.Expect(unstructured.SetNestedField(obj.Object, 1.5, "spec", "signal", "minuteEstimatedTime")).To(Succeed())
		err := env.Client.Create(ctx, obj)
		g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
		g.Expect(err.Error()).To(ContainSubstring("spec.signal.minuteEstimatedTime"))
	})

	t.Run("several broken rules are reported together", func(t *testing.T) {
		g := NewWithT(t)
		sig := decodeSignal(t, "signal-opened.json")
		sig.PriceTakeProfit, sig.PriceStopLoss = 99, 101
		err := env.Client.Create(ctx, stateFor(ns, "bad-many", sig, nil))
		g.Expect(err).To(HaveOccurred())
		g.Expect(err.Error()).To(And(
			ContainSubstring("Long: priceTakeProfit must be > priceOpen"),
			ContainSubstring("Long: priceStopLoss must be < priceOpen")))
	})
}

func TestStateInvariants(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(ctx, t)

	t.Run("phase must match the signals", func(t *testing.T) {
		g := NewWithT(t)
		st := stateFor(ns, "phase-wrong", decodeSignal(t, "signal-opened.json"), nil)
		st.Spec.Phase = v1.PhaseIdle
		err := env.Client.Create(ctx, st)
		g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
		g.Expect(err.Error()).To(ContainSubstring("phase must be Open while signal is set"))
	})

	t.Run("phase defaults to Idle", func(t *testing.T) {
		g := NewWithT(t)
		st := &v1.StrategyState{
			ObjectMeta: metav1.ObjectMeta{Name: "idle", Namespace: ns},
			Spec:       v1.StrategyStateSpec{StrategyName: "s", ExchangeName: "e", Symbol: "BTCUSDT"},
		}
		g.Expect(env.Client.Create(ctx, st)).To(Succeed())
		g.Expect(st.Spec.Phase).To(Equal(v1.PhaseIdle))
	})

	t.Run("a row of another symbol is refused", func(t *testing.T) {
		g := NewWithT(t)
		st := stateFor(ns, "other-symbol", decodeSignal(t, "signal-opened.json"), nil)
		st.Spec.Symbol = "ETHUSDT"
		err := env.Client.Create(ctx, st)
		g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
		g.Expect(err.Error()).To(ContainSubstring("signal must belong to this state's symbol"))
	})
}

func TestStrategyValidation(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(ctx, t)
	strategy := func(name string, mutate func(*v1.Strategy)) *v1.Strategy {
		s := &v1.Strategy{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec:       v1.StrategySpec{ExchangeName: "simulated", Symbols: []string{"BTCUSDT"}},
		}
		mutate(s)
		return s
	}

	t.Run("defaults", func(t *testing.T) {
		g := NewWithT(t)
		s := strategy("defaults", func(*v1.Strategy) {})
		g.Expect(env.Client.Create(ctx, s)).To(Succeed())
		g.Expect(s.Spec.Persistence.Backend).To(Equal(v1.BackendStrategyState))
		g.Expect(s.Spec.Retention).To(Equal(v1.RetainState))
		g.Expect(s.EffectiveStrategyName()).To(Equal("defaults"))
		g.Expect(s.EffectiveRiskProfiles()).To(Equal([]string{"defaults"}))
	})

	t.Run("a cache of 64Mi, or of 1024 bytes", func(t *testing.T) {
		g := NewWithT(t)
		for i, q := range []string{"64Mi", "1024"} {
			s := strategy(fmt.Sprintf("cache-%d", i), func(s *v1.Strategy) {
				s.Spec.Persistence = v1.PersistenceSpec{Backend: v1.BackendRedis,
					Cache:    &v1.StoreCache{MaxBytes: new(resource.MustParse(q))},
					Redis:    &v1.DatabasePersistence{URLSecretRef: v1.SecretKeyRef{Name: "r", Key: "url"}},
					Replicas: []v1.StoreReplica{{Name: "copy", Backend: v1.BackendMongoDB, URLSecretRef: v1.SecretKeyRef{Name: "m", Key: "url"}}}}
			})
			g.Expect(env.Client.Create(ctx, s)).To(Succeed())
		}
	})

	t.Run("file size defaults", func(t *testing.T) {
		g := NewWithT(t)
		s := strategy("file-default", func(s *v1.Strategy) {
			s.Spec.Persistence = v1.PersistenceSpec{Backend: v1.BackendFile, File: &v1.FilePersistence{}}
		})
		g.Expect(env.Client.Create(ctx, s)).To(Succeed())
		g.Expect(s.Spec.Persistence.File.Size.String()).To(Equal("1Gi"))
	})

	bad := []struct {
		name    string
		mutate  func(*v1.Strategy)
		message string
	}{
		{"no symbols", func(s *v1.Strategy) { s.Spec.Symbols = nil }, "spec.symbols"},
		{"duplicate symbol", func(s *v1.Strategy) { s.Spec.Symbols = []string{"BTCUSDT", "BTCUSDT"} },
			`Duplicate value: "BTCUSDT"`},
		{"missing exchange", func(s *v1.Strategy) { s.Spec.ExchangeName = "" }, "spec.exchangeName"},
		{"unknown backend", func(s *v1.Strategy) { s.Spec.Persistence.Backend = "Floppy" },
			`spec.persistence.backend: Unsupported value: "Floppy"`},
		{"file settings on another backend", func(s *v1.Strategy) {
			s.Spec.Persistence = v1.PersistenceSpec{Backend: v1.BackendConfigMap, File: &v1.FilePersistence{}}
		}, "persistence.file may only be set when persistence.backend is File"},
		{"retention", func(s *v1.Strategy) { s.Spec.Retention = "Forever" }, `spec.retention: Unsupported value`},
		{"a negative history maxAge", func(s *v1.Strategy) { s.Spec.History.MaxAge = &metav1.Duration{Duration: -time.Hour} },
			"maxAge must be a positive duration"},
		{"symbol with a space", func(s *v1.Strategy) { s.Spec.Symbols = []string{"BTC USDT"} }, "spec.symbols[0]"},
		{"a command without an image", func(s *v1.Strategy) { s.Spec.Command = []string{"node", "bot.js"} },
			"spec.command needs spec.image"},
		{"-- in args", func(s *v1.Strategy) { s.Spec.Args = []string{"--speed=2", "--", "sh"} },
			"spec.args cannot hold --"},
		{"risk profiles through args", func(s *v1.Strategy) { s.Spec.Args = []string{"-risk-profiles", "other"} },
			"spec.args cannot set --risk-profiles"},
		{"a risk profile that is no name", func(s *v1.Strategy) { s.Spec.RiskProfiles = []string{"Team Risk"} },
			"spec.riskProfiles[0]"},
		{"a risk profile twice", func(s *v1.Strategy) { s.Spec.RiskProfiles = []string{"team", "team"} },
			`Duplicate value: "team"`},
		{"env the operator sets", func(s *v1.Strategy) {
			s.Spec.Env = []corev1.EnvVar{{Name: "POD_NAMESPACE", Value: "other"}, {Name: "KUBERNETES_SERVICE_HOST", Value: "10.9.9.9"}}
		}, "spec.env[1]: Invalid value: KUBERNETES_SERVICE_HOST is set for the runner by the operator or the kubelet"},
		{"a cache of no bytes", func(s *v1.Strategy) {
			s.Spec.Persistence = v1.PersistenceSpec{Backend: v1.BackendRedis, Cache: &v1.StoreCache{MaxBytes: new(resource.MustParse("-1"))},
				Redis: &v1.DatabasePersistence{URLSecretRef: v1.SecretKeyRef{Name: "r", Key: "url"}}}
		}, "maxBytes must be positive"},
		{"a replica on a Kubernetes backend", func(s *v1.Strategy) {
			s.Spec.Persistence = v1.PersistenceSpec{Backend: v1.BackendRedis,
				Redis: &v1.DatabasePersistence{URLSecretRef: v1.SecretKeyRef{Name: "r", Key: "url"}},
				Replicas: []v1.StoreReplica{{Name: "copy", Backend: v1.BackendConfigMap,
					URLSecretRef: v1.SecretKeyRef{Name: "r", Key: "url"}}}}
		}, "a replica's backend must be Redis, PostgreSQL or MongoDB"},
		{"a replica name that is no DNS label", func(s *v1.Strategy) {
			s.Spec.Persistence = v1.PersistenceSpec{Backend: v1.BackendRedis,
				Redis: &v1.DatabasePersistence{URLSecretRef: v1.SecretKeyRef{Name: "r", Key: "url"}},
				Replicas: []v1.StoreReplica{{Name: "Copy_1", Backend: v1.BackendPostgreSQL,
					URLSecretRef: v1.SecretKeyRef{Name: "r", Key: "url"}}}}
		}, "spec.persistence.replicas[0].name"},
	}
	for i, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			err := env.Client.Create(ctx, strategy(fmt.Sprintf("bad-%d", i), tc.mutate))
			g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
			g.Expect(err.Error()).To(ContainSubstring(tc.message))
		})
	}
}

// TestSamplesStartClean: what make run-local applies (config/samples' kustomization)
// holds no signal, so its first screen shows trades its runners open, not one stale from
// the day the sample was written; and the StrategyState sample kept beside it, to show the
// format, belongs to no strategy the samples run.
func TestSamplesStartClean(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(), "config", "samples")
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatal(err)
	}
	applied := map[string]bool{}
	for _, r := range k.Resources {
		applied[r] = true
	}
	running := map[string]bool{}
	states := map[string]*unstructured.Unstructured{}
	for file, obj := range sampleFiles(t) {
		switch obj.GetKind() {
		case "Strategy":
			name, _, _ := unstructured.NestedString(obj.Object, "spec", "strategyName")
			running[cmp.Or(name, obj.GetName())] = true
		case "StrategyState":
			states[file] = obj
		}
	}
	for file, st := range states {
		signal, _, _ := unstructured.NestedMap(st.Object, "spec", "signal")
		if applied[file] && signal != nil {
			t.Errorf("config/samples/kustomization.yaml applies %s, whose signal would be resumed stale", file)
		}
		if name, _, _ := unstructured.NestedString(st.Object, "spec", "strategyName"); running[name] {
			t.Errorf("%s holds the state of strategy %q, which a sample Strategy runs", file, name)
		}
	}
}

// samples reads every object in config/samples.
func samples(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	files := sampleFiles(t)
	objs := make([]*unstructured.Unstructured, 0, len(files))
	for _, f := range slices.Sorted(maps.Keys(files)) {
		objs = append(objs, files[f])
	}
	return objs
}

// sampleFiles reads the object of each file of config/samples, by the file's name.
func sampleFiles(t *testing.T) map[string]*unstructured.Unstructured {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(), "config", "samples")
	files, err := filepath.Glob(filepath.Join(dir, "trading_*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples in %s: %v", dir, err)
	}
	objs := map[string]*unstructured.Unstructured{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewYAMLOrJSONDecoder(strings.NewReader(string(data)), 4096)
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		objs[filepath.Base(f)] = obj
	}
	return objs
}

func sampleStateUnstructured(t *testing.T, ns, name string) *unstructured.Unstructured {
	t.Helper()
	for _, obj := range samples(t) {
		if obj.GetKind() == "StrategyState" {
			obj.SetNamespace(ns)
			obj.SetName(name)
			return obj
		}
	}
	t.Fatal("no StrategyState sample")
	return nil
}

func TestSamplesApply(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(ctx, t)
	kinds := map[string]int{}
	backends := map[string]bool{}
	for _, obj := range samples(t) {
		g := NewWithT(t)
		obj.SetNamespace(ns)
		g.Expect(env.Client.Create(ctx, obj)).To(Succeed(), obj.GetName())
		kinds[obj.GetKind()]++
		if obj.GetKind() == "Strategy" {
			var s v1.Strategy
			g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(obj), &s)).To(Succeed())
			backends[string(s.Spec.Persistence.Backend)] = true
		}
	}
	g := NewWithT(t)
	g.Expect(kinds).To(HaveKeyWithValue("StrategyState", 1))
	g.Expect(backends).To(Equal(map[string]bool{"File": true, "ConfigMap": true, "StrategyState": true,
		"Redis": true, "PostgreSQL": true, "MongoDB": true}), "one sample Strategy per backend")
}
