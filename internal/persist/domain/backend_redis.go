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

	"github.com/redis/go-redis/v9"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/dblayout"
	"github.com/strategyops/strategy-operator/internal/persist/redisstore"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// The Redis backend: a hash per store, named after the store alone.
func init() {
	Register(Kind{Name: v1.BackendRedis, Home: InDatabase, Connect: connectRedis})
}

// redisConnection is one client, whose stores' concurrent writes share pipelines.
type redisConnection struct {
	client *redis.Client
	batch  *redisstore.Batch
}

func connectRedis(_ context.Context, url string) (Connection, error) {
	c, err := redisstore.Connect(url)
	if err != nil {
		return nil, fmt.Errorf("%w (want redis://[user:password@]host:port/db)", ErrBadURL)
	}
	return redisConnection{c, redisstore.NewBatch(c)}, nil
}

func (c redisConnection) Store(l dblayout.Layout, f driver.Fencing) driver.Driver {
	return redisstore.New(c.client, l.Store, f).WithBatch(c.batch)
}

func (c redisConnection) Close() { _ = c.client.Close() }

func (c redisConnection) Durability(ctx context.Context) (string, error) {
	d, err := redisstore.CheckDurability(ctx, c.client)
	if err != nil {
		return "", fmt.Errorf("redis: reading the persistence settings: %w", err)
	}
	return d.Loss(), nil
}
