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

import v1 "github.com/strategyops/strategy-operator/api/v1alpha1"

// The File backend: backtest-kit's own data folder, on the strategy's volume (FileBackend).
func init() {
	Register(Kind{Name: v1.BackendFile, Home: OnVolume, OpenFiles: FileBackend})
}
