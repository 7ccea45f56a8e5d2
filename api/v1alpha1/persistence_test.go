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
*/package v1alpha1_test

import (
	"testing"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
)

// TestSetDatabaseIsReadBack: the configuration SetDatabase gives a database backend is the
// one Database reads, and no other backend's; a backend that is no database takes none.
func TestSetDatabaseIsReadBack(t *testing.T) {
	databases := []v1.PersistenceBackend{v1.BackendRedis, v1.BackendPostgreSQL, v1.BackendMongoDB}
	for _, b := range databases {
		var p v1.PersistenceSpec
		db := &v1.DatabasePersistence{URLSecretRef: v1.SecretKeyRef{Name: string(b), Key: "url"}}
		p.SetDatabase(b, db)
		for _, other := range databases {
			if got := p.Database(other); (other == b) != (got == db) {
				t.Errorf("set on %s, read on %s: %+v", b, other, got)
			}
		}
	}
	var p v1.PersistenceSpec
	p.SetDatabase(v1.BackendFile, &v1.DatabasePersistence{})
	if p.Redis != nil || p.PostgreSQL != nil || p.MongoDB != nil {
		t.Errorf("File took a database's configuration: %+v", p)
	}
}
