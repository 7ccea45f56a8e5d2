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

package redisstore

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

var _ driver.RevisionProber = (*Driver)(nil)

// Revision implements driver.RevisionProber: one HGET of the key's revision field, which
// every write sets and removes together with its value field.
func (d *Driver) Revision(ctx context.Context, key string) (driver.Revision, error) {
	rev, err := d.client.HGet(ctx, d.items, "r:"+key).Result()
	if errors.Is(err, redis.Nil) {
		return "", driver.ErrNotFound
	}
	if err != nil {
		return "", d.wrap("revision", err)
	}
	return driver.Revision(rev), nil
}
