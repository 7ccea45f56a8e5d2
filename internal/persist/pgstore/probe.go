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

package pgstore

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

var _ driver.RevisionProber = (*Driver)(nil)

// Revision implements driver.RevisionProber: Get's query, selecting the revision alone.
func (d *Driver) Revision(ctx context.Context, key string) (driver.Revision, error) {
	if !d.layout.Holds(key) {
		return "", driver.ErrNotFound
	}
	where, args := d.row(key)
	var rev string
	err := d.pool.QueryRow(ctx, `SELECT `+d.revision+` FROM `+d.table+` WHERE `+where, args...).Scan(&rev)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", driver.ErrNotFound
	}
	if err != nil {
		return "", d.wrap("revision", err)
	}
	return driver.Revision(rev), nil
}
