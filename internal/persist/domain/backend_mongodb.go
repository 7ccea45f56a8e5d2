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
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/dblayout"
	"github.com/strategyops/strategy-operator/internal/persist/mongostore"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// The MongoDB backend: backtest-kit's collections (DatabaseLayout) in a MongoDB database.
func init() {
	Register(Kind{Name: v1.BackendMongoDB, Home: InDatabase, Connect: connectMongo, Tables: true})
}

// MongoBackend keeps every context in the MongoDB database db, laid out by DatabaseLayout,
// written under fencing f (none when its token is 0).
func MongoBackend(db *mongo.Database, f mongostore.Fencing) Backend {
	return func(_ context.Context, d Domain, k Key) (driver.Driver, error) {
		return mongostore.New(db, DatabaseLayout(d, k), f), nil
	}
}

type mongoConnection struct {
	db *mongo.Database
	// loss is what the URL's write concern could lose (mongostore.Durability).
	loss string
}

func connectMongo(_ context.Context, url string) (Connection, error) {
	_, db, err := mongostore.Connect(url)
	if err != nil {
		return nil, fmt.Errorf("%w (want mongodb://[user:password@]host:port/database)", ErrBadURL)
	}
	return mongoConnection{db: db, loss: mongostore.Durability(url)}, nil
}

func (c mongoConnection) Store(l dblayout.Layout, f driver.Fencing) driver.Driver {
	return mongostore.New(c.db, l, f)
}

func (c mongoConnection) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.db.Client().Disconnect(ctx)
}

func (c mongoConnection) Durability(context.Context) (string, error) { return c.loss, nil }
