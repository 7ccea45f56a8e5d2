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

package configmapstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/strategyops/strategy-operator/internal/persist/configmapstore"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
	"github.com/strategyops/strategy-operator/internal/testenv"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
	"github.com/strategyops/strategy-operator/pkg/store/drivertest"
)

// env is one real kube-apiserver and etcd for the package.
var env *testenv.Environment

func TestMain(m *testing.M) { testenv.RunMain(m, &env) }

var storeCount atomic.Int64

// nameOf is the ConfigMap a test driver uses.
func nameOf(d driver.Driver) types.NamespacedName { return d.(*kubestore.Driver).Name() }

func harness(ns string) drivertest.Harness {
	return drivertest.Harness{
		New: func(*testing.T) driver.Driver {
			name := types.NamespacedName{Namespace: ns, Name: fmt.Sprintf("store-%d", storeCount.Add(1))}
			return configmapstore.New(env.Client, name, configmapstore.Options{Options: kubestore.Options{Create: true}})
		},
		Reopen: func(_ *testing.T, d driver.Driver) driver.Driver {
			return configmapstore.New(env.Client, nameOf(d), configmapstore.Options{})
		},
		Corrupt: func(t *testing.T, d driver.Driver, key string) {
			var cm corev1.ConfigMap
			if err := env.Client.Get(context.Background(), nameOf(d), &cm); err != nil {
				t.Fatal(err)
			}
			cm.Data[configmapstore.EncodeKey(key)] = `{"name": "torn`
			if err := env.Client.Update(context.Background(), &cm); err != nil {
				t.Fatal(err)
			}
		},
		Fenced: func(_ *testing.T, d driver.Driver, writer string, token int64) driver.Driver {
			return configmapstore.New(env.Client, nameOf(d), configmapstore.Options{
				Options: kubestore.Options{Fencing: kubestore.Fencing{Writer: writer, Token: token}},
			})
		},
		// The limit covers keys and values together; the suite's size case uses the key "big".
		MaxValueSize: configmapstore.MaxDataBytes - len("big"),
	}
}

func TestConformance(t *testing.T) {
	ns := env.Namespace(t.Context(), t)
	drivertest.RunConformanceTests(t, harness(ns))
}
