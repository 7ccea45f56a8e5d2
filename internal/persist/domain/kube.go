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

	"github.com/strategyops/strategy-operator/internal/names"

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
		return names.ObjectName(string(d), k.RiskName, k.ExchangeName)
	}
	return names.ObjectName(string(d), k.StrategyName, k.ExchangeName, names.SymbolPart(k.Symbol))
}

// LegacyConfigMapName is the name ConfigMapName gave before names were unambiguous (see
// names.LegacyObjectName), to find an earlier version's objects.
func LegacyConfigMapName(d Domain, k Key) string {
	if d == Risk {
		return names.LegacyObjectName(string(d), k.RiskName, k.ExchangeName)
	}
	return names.LegacyObjectName(string(d), k.StrategyName, k.ExchangeName, k.Symbol)
}

// ConfigMapLabels are the labels of that ConfigMap.
func ConfigMapLabels(d Domain, k Key) map[string]string {
	l := map[string]string{
		names.LabelDomain:   string(d),
		names.LabelExchange: names.LabelValue(k.ExchangeName),
	}
	if d == Risk {
		l[names.LabelRisk] = names.LabelValue(k.RiskName)
	} else {
		l[names.LabelStrategy] = names.LabelValue(k.StrategyName)
		l[names.LabelSymbol] = names.LabelValue(k.Symbol)
	}
	return l
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

// KubeBackend is the backend named b, whose home must be InObjects, on the objects that c
// reads and writes.
func KubeBackend(b v1.PersistenceBackend, c client.Client, o KubeOptions) (Backend, error) {
	k, err := lookupAt(b, InObjects)
	if err != nil {
		return nil, err
	}
	return k.OpenObjects(c, o), nil
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
// StrategyContexts), each once; none when b's home is not InObjects (the volume's files,
// a database's rows). It is the one place that maps contexts to objects: the operator's
// Role, pre-creation, migration and clean-up all follow it.
func StoreObjects(b v1.PersistenceBackend, strategyName, exchangeName string, symbols []string,
	riskProfiles ...string) []StoreObject {
	k, err := lookupAt(b, InObjects)
	if err != nil {
		return nil
	}
	return k.Objects(StrategyContexts(strategyName, exchangeName, symbols, riskProfiles...))
}

// storeObjects lists, each once, the object that object picks for each context.
func storeObjects(contexts []Context, object func(Context) StoreObject) []StoreObject {
	var out []StoreObject
	seen := map[string]bool{}
	for _, c := range contexts {
		o := object(c)
		if !seen[o.Kind+"/"+o.Name] {
			seen[o.Kind+"/"+o.Name] = true
			out = append(out, o)
		}
	}
	return out
}

// configMapObject is the ConfigMap that holds context c.
func configMapObject(c Context) StoreObject {
	return StoreObject{Kind: KindConfigMap, Name: ConfigMapName(c.Domain, c.Key), Context: c}
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
// each symbol, and each of its risk profiles (none given: one named after the strategy).
func StrategyContexts(strategyName, exchangeName string, symbols []string, riskProfiles ...string) []Context {
	if len(riskProfiles) == 0 {
		riskProfiles = []string{strategyName}
	}
	out := make([]Context, 0, len(riskProfiles)+len(symbols)*(len(Domains)-1))
	for _, r := range riskProfiles {
		out = append(out, Context{Risk, RiskKey(r, exchangeName)})
	}
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

// RaiseFloor fences every store of the given contexts on b (driver.Fencer) for b's writer:
// a new holder of the Lease does this before it reads its state, so that a deposed holder
// that wakes after the takeover is refused on every store, not only on those the new
// holder has written since. ErrFenced when a newer writer holds one of them.
func RaiseFloor(ctx context.Context, b Backend, contexts []Context) error {
	for _, c := range contexts {
		drv, err := b(ctx, c.Domain, c.Key)
		if err != nil {
			return err
		}
		f, ok := drv.(driver.Fencer)
		if !ok {
			_ = drv.Close()
			return fmt.Errorf("the %s store of %s cannot be fenced", c.Domain, c.Key)
		}
		err = f.Fence(ctx)
		if cerr := drv.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("fencing the %s store of %s: %w", c.Domain, c.Key, err)
		}
	}
	return nil
}
