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
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/strategystatestore"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// The StrategyState backend: a StrategyState per strategy, exchange and symbol for the
// symbol-keyed domains, ConfigMaps for the risk positions and the ledger
// (StrategyStateBackend).
func init() {
	Register(Kind{Name: v1.BackendStrategyState, Home: InObjects, OpenObjects: StrategyStateBackend,
		Objects: func(contexts []Context) []StoreObject { return storeObjects(contexts, strategyStateObject) }})
}

// strategyStateObject is the object that holds context c on the StrategyState backend.
func strategyStateObject(c Context) StoreObject {
	if _, inState := stateFields[c.Domain]; inState {
		return StoreObject{Kind: KindStrategyState, Name: strategystatestore.ObjectName(StateKey(c.Key)), Context: c}
	}
	return configMapObject(c)
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
