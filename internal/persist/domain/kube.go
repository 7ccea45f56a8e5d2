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

package domain

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"

	"github.com/strategyops/strategy-operator/internal/persist/configmapstore"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
	"github.com/strategyops/strategy-operator/internal/persist/strategystatestore"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// KubeOptions configure the Kubernetes backends.
type KubeOptions struct {
	// Namespace holds the store objects.
	Namespace string
	// Create lets a store create its object when missing; off for a runner whose RBAC
	// allows only the objects the operator made for it.
	Create bool
	// Fencing fences the writer (see kubestore).
	Fencing kubestore.Fencing
	// Labels are added to the objects the stores create (the operator's LabelOwner).
	Labels map[string]string
}

func (o KubeOptions) store() kubestore.Options {
	return kubestore.Options{Create: o.Create, Fencing: o.Fencing, Labels: o.Labels}
}

// ConfigMapName is the ConfigMap that holds domain d of context k.
func ConfigMapName(d Domain, k Key) string {
	if d == Risk {
		return kubestore.ObjectName(string(d), k.RiskName, k.ExchangeName)
	}
	return kubestore.ObjectName(string(d), k.StrategyName, k.ExchangeName, kubestore.SymbolPart(k.Symbol))
}

// LegacyConfigMapName is the name ConfigMapName gave before names were unambiguous (see
// kubestore.LegacyObjectName), to find an earlier version's objects.
func LegacyConfigMapName(d Domain, k Key) string {
	if d == Risk {
		return kubestore.LegacyObjectName(string(d), k.RiskName, k.ExchangeName)
	}
	return kubestore.LegacyObjectName(string(d), k.StrategyName, k.ExchangeName, k.Symbol)
}

// ConfigMapLabels are the labels of that ConfigMap.
func ConfigMapLabels(d Domain, k Key) map[string]string {
	l := map[string]string{
		kubestore.LabelDomain:   string(d),
		kubestore.LabelExchange: kubestore.LabelValue(k.ExchangeName),
	}
	if d == Risk {
		l[kubestore.LabelRisk] = kubestore.LabelValue(k.RiskName)
	} else {
		l[kubestore.LabelStrategy] = kubestore.LabelValue(k.StrategyName)
		l[kubestore.LabelSymbol] = kubestore.LabelValue(k.Symbol)
	}
	return l
}

// ConfigMapBackend keeps each store context in its own ConfigMap, named by ConfigMapName.
// c must read from the API server directly.
func ConfigMapBackend(c client.Client, o KubeOptions) Backend {
	return func(_ context.Context, d Domain, k Key) (driver.Driver, error) {
		return configMapDriver(c, o, d, k), nil
	}
}

func configMapDriver(c client.Client, o KubeOptions, d Domain, k Key) driver.Driver {
	name := types.NamespacedName{Namespace: o.Namespace, Name: ConfigMapName(d, k)}
	return configmapstore.New(c, name, configmapstore.Options{
		Options: o.store(), Labels: ConfigMapLabels(d, k), Context: string(d) + "/" + k.String(),
	})
}

// CreateObject makes b create the object that holds domain d of context k, when b is a
// Kubernetes backend opened with Create; the operator does this so that a runner needs no
// create permission.
func CreateObject(ctx context.Context, b Backend, d Domain, k Key) error {
	drv, err := b(ctx, d, k)
	if err != nil {
		return err
	}
	_, err = drv.Init(ctx, true)
	return errors.Join(err, drv.Close())
}

// StateKey is the StrategyState that holds the symbol-keyed domains of k.
func StateKey(k Key) strategystatestore.Key {
	return strategystatestore.Key{StrategyName: k.StrategyName, ExchangeName: k.ExchangeName, Symbol: k.Symbol}
}

var stateFields = map[Domain]strategystatestore.Field{
	Signal:    strategystatestore.FieldSignal,
	Schedule:  strategystatestore.FieldSchedule,
	Strategy:  strategystatestore.FieldSnapshot,
	Partial:   strategystatestore.FieldPartial,
	Breakeven: strategystatestore.FieldBreakeven,
}

// StrategyStateBackend keeps the symbol-keyed domains as fields of one StrategyState per
// strategy, exchange and symbol. Risk positions, keyed by risk profile, have no such
// object, and the history ledger grows without bound: both go to ConfigMaps, as with
// ConfigMapBackend.
func StrategyStateBackend(c client.Client, o KubeOptions) Backend {
	return func(_ context.Context, d Domain, k Key) (driver.Driver, error) {
		if d == Risk || d == History {
			return configMapDriver(c, o, d, k), nil
		}
		field, ok := stateFields[d]
		if !ok {
			return nil, fmt.Errorf("the StrategyState backend has no field for domain %q", d)
		}
		return strategystatestore.New(c, o.Namespace, StateKey(k), field,
			strategystatestore.Options{Options: o.store()}), nil
	}
}

// KubeBackend is the Kubernetes backend named b (ConfigMap or StrategyState).
func KubeBackend(b v1.PersistenceBackend, c client.Client, o KubeOptions) (Backend, error) {
	switch b {
	case v1.BackendConfigMap:
		return ConfigMapBackend(c, o), nil
	case v1.BackendStrategyState:
		return StrategyStateBackend(c, o), nil
	default:
		return nil, fmt.Errorf("%q is not a Kubernetes backend (ConfigMap or StrategyState)", b)
	}
}

// StoreObject is one Kubernetes object that a backend keeps stores of a strategy in.
type StoreObject struct {
	// Kind is ConfigMap or StrategyState.
	Kind, Name string
	// Context is the first context the object holds: opening its store makes the object.
	Context Context
}

// Kinds of StoreObject.
const (
	KindConfigMap     = "ConfigMap"
	KindStrategyState = "StrategyState"
)

// StoreObjects lists the objects backend b keeps every context of a strategy in (see
// StrategyContexts): on ConfigMap one per context; on StrategyState one StrategyState per
// symbol for the symbol-keyed domains, and the ConfigMaps of the risk profile and of each
// symbol's history; on any other backend none. It is the one place that maps contexts to
// objects: the operator's Role, pre-creation, migration and clean-up all follow it.
func StoreObjects(b v1.PersistenceBackend, strategyName, exchangeName string, symbols []string) []StoreObject {
	if !b.IsKube() {
		return nil // the volume's files, a database's rows
	}
	var out []StoreObject
	seen := map[string]bool{}
	for _, c := range StrategyContexts(strategyName, exchangeName, symbols) {
		o := StoreObject{Kind: KindConfigMap, Name: ConfigMapName(c.Domain, c.Key), Context: c}
		if _, inState := stateFields[c.Domain]; inState && b == v1.BackendStrategyState {
			o.Kind, o.Name = KindStrategyState, strategystatestore.ObjectName(StateKey(c.Key))
		}
		if !seen[o.Kind+"/"+o.Name] {
			seen[o.Kind+"/"+o.Name] = true
			out = append(out, o)
		}
	}
	return out
}

// LegacyName is the name an earlier version gave the object (see LegacyConfigMapName).
func (o StoreObject) LegacyName() string {
	if o.Kind == KindStrategyState {
		return strategystatestore.LegacyObjectName(StateKey(o.Context.Key))
	}
	return LegacyConfigMapName(o.Context.Domain, o.Context.Key)
}

// Context is one store context: a domain and its key.
type Context struct {
	Domain Domain
	Key    Key
}

// StrategyContexts lists every store context a strategy's runner writes: each domain of
// each symbol, and its risk profile (named after the strategy).
func StrategyContexts(strategyName, exchangeName string, symbols []string) []Context {
	out := []Context{{Risk, RiskKey(strategyName, exchangeName)}}
	for _, sym := range symbols {
		for _, d := range Domains {
			if d != Risk {
				out = append(out, Context{d, StrategyKey(sym, strategyName, exchangeName)})
			}
		}
	}
	return out
}

// HighestToken returns the newest fencing token recorded on the objects that hold the
// given contexts on backend b (0 when no fenced writer has written). A new writer starts
// above it, so that recreating the Lease cannot hand out a token the stores already saw.
func HighestToken(ctx context.Context, b Backend, contexts []Context) (int64, error) {
	var highest int64
	for _, c := range contexts {
		drv, err := b(ctx, c.Domain, c.Key)
		if err != nil {
			return 0, err
		}
		r, ok := drv.(driver.TokenRecorder)
		if !ok {
			return 0, fmt.Errorf("the %s store of %s records no fencing tokens", c.Domain, c.Key)
		}
		token, err := r.RecordedToken(ctx)
		if err != nil {
			return 0, err
		}
		highest = max(highest, token)
	}
	return highest, nil
}
