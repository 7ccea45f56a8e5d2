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

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// The ConfigMap backend: a ConfigMap per store context (ConfigMapBackend).
func init() {
	Register(Kind{Name: v1.BackendConfigMap, Home: InObjects, OpenObjects: ConfigMapBackend,
		Objects: func(contexts []Context) []StoreObject { return storeObjects(contexts, configMapObject) }})
}

// ConfigMapBackend keeps each store context in its own ConfigMap, named by ConfigMapName.
// c must read from the API server directly.
func ConfigMapBackend(c client.Client, o KubeOptions) Backend {
	return func(_ context.Context, d Domain, k Key) (driver.Driver, error) {
		return configMapDriver(c, o, d, k), nil
	}
}
