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

package store

import (
	"github.com/strategyops/strategy-operator/internal/persist/filestore"
	"github.com/strategyops/strategy-operator/internal/persist/memstore"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// Driver is the contract a backend implements: package driver.
type Driver = driver.Driver

// File returns a driver on the folder dir: one JSON file per key, written as backtest-kit
// writes them (temporary file, sync, rename), the folder locked by one process at a time.
func File(dir string) driver.Driver { return filestore.New(dir) }

// Memory returns a driver that keeps the values in memory.
func Memory() driver.Driver { return memstore.New() }
