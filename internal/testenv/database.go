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
package testenv

import "testing"

// StartDatabase starts a server of the database backend named backend (Redis,
// PostgreSQL, MongoDB) for t, stopped when t ends, and returns its connection URL (for
// MongoDB, to the database db).
func StartDatabase(t testing.TB, backend, db string) string {
	t.Helper()
	ctx := t.Context()
	switch backend {
	case "Redis":
		r, err := StartRedis(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Stop)
		return r.URL
	case "PostgreSQL":
		p, err := StartPostgres(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Stop)
		return p.URL
	case "MongoDB":
		m, err := StartMongo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Stop)
		return m.URL(db)
	}
	t.Fatalf("%q is not a database backend", backend)
	return ""
}
