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

package mongostore

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/strategyops/strategy-operator/internal/keylock"
)

// storeLocks are the process's store write locks, one per client and store while some
// driver waits for it or holds it: they do not grow with the stores a process has opened,
// and stores of two servers (a backend and its replica) never wait for each other.
var storeLocks keylock.Set

// lockKey names the lock of store in db, through client.
func lockKey(db *mongo.Database, store string) string {
	return fmt.Sprintf("%p\x00%s\x00%s", db.Client(), db.Name(), store)
}

// acquire takes the lock named key, or gives up when ctx ends; release gives it back.
func acquire(ctx context.Context, key string) (release func(), err error) {
	return storeLocks.Acquire(ctx, key)
}
