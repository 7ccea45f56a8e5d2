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

package strategystatestore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"testing"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
	"github.com/strategyops/strategy-operator/internal/persist/strategystatestore"
	"github.com/strategyops/strategy-operator/internal/testenv"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
	"github.com/strategyops/strategy-operator/pkg/store/drivertest"
)

var env *testenv.Environment

func TestMain(m *testing.M) { testenv.RunMain(m, &env) }

var stateCount atomic.Int64

// asPartial carries the suite's documents through the typed partial field: a document
// becomes the one key of a PartialData record, which the field stores exactly. Every
// semantic the suite checks (revisions, preconditions, fencing, concurrency, order, key
// and size limits) is then the StrategyState store's own.
type asPartial struct{ *kubestore.Driver }

var emptyLevels = json.RawMessage(`{"profitLevels":[],"lossLevels":[]}`)

func (a asPartial) Get(ctx context.Context, key string) (driver.Entry, error) {
	e, err := a.Driver.Get(ctx, key)
	if err != nil {
		return e, err
	}
	e.Value, err = carried(e.Value)
	return e, err
}

// carried is the document a partial record carries.
func carried(value []byte) ([]byte, error) {
	var record map[string]json.RawMessage
	if err := json.Unmarshal(value, &record); err != nil || len(record) != 1 {
		return nil, fmt.Errorf("partial record %s is not a carried document: %v", value, err)
	}
	return []byte(slices.Collect(maps.Keys(record))[0]), nil
}

// Snapshot translates like Get: the embedded driver's own Snapshot would be promoted, and
// package persist reads whole stores with it.
func (a asPartial) Snapshot(ctx context.Context) (map[string]driver.Entry, error) {
	all, err := a.Driver.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	for k, e := range all {
		if e.Value, err = carried(e.Value); err != nil {
			return nil, err
		}
		all[k] = e
	}
	return all, nil
}

func (a asPartial) Put(ctx context.Context, key string, value []byte, pre driver.Precondition) (driver.Revision, error) {
	record, err := json.Marshal(map[string]json.RawMessage{string(value): emptyLevels})
	if err != nil {
		return "", err
	}
	return a.Driver.Put(ctx, key, record, pre)
}

func newPartialStore(ns string, k strategystatestore.Key, opts strategystatestore.Options) asPartial {
	return asPartial{strategystatestore.New(env.Client, ns, k, strategystatestore.FieldPartial, opts)}
}

func TestConformance(t *testing.T) {
	ns := env.Namespace(t.Context(), t)
	keyOf := map[driver.Driver]strategystatestore.Key{}
	drivertest.RunConformanceTests(t, drivertest.Harness{
		New: func(*testing.T) driver.Driver {
			k := strategystatestore.Key{StrategyName: "conformance", ExchangeName: "e",
				Symbol: fmt.Sprintf("SYM%04d", stateCount.Add(1))}
			d := newPartialStore(ns, k, strategystatestore.Options{Options: kubestore.Options{Create: true}})
			keyOf[d] = k
			return d
		},
		Reopen: func(_ *testing.T, d driver.Driver) driver.Driver {
			return newPartialStore(ns, keyOf[d], strategystatestore.Options{})
		},
		Fenced: func(_ *testing.T, d driver.Driver, writer string, token int64) driver.Driver {
			return newPartialStore(ns, keyOf[d], strategystatestore.Options{
				Options: kubestore.Options{Fencing: kubestore.Fencing{Writer: writer, Token: token}},
			})
		},
		// The spec takes up to MaxSpecBytes; a carried document costs its own length plus
		// the spec around it. Corrupt data has no Corrupt hook: the API server holds every
		// field to its schema.
		MaxValueSize: strategystatestore.MaxSpecBytes - specOverhead(t),
	})
	if len(keyOf) == 0 {
		t.Fatal("no store was made")
	}
}

// specOverhead is the size of a conformance StrategyState's spec around the document
// carried under the suite's size-case key.
func specOverhead(t *testing.T) int {
	spec := v1.StrategyStateSpec{StrategyName: "conformance", ExchangeName: "e", Symbol: "SYM0000",
		Phase: v1.PhaseIdle, Partial: map[string]v1.PartialData{"big": {"": {ProfitLevels: []float64{}, LossLevels: []float64{}}}}}
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	return len(data)
}
