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

import "hash/maphash"

// locks are the process's store write locks: a fixed set that stores share by hash, so
// that memory stays the same however many stores a process opens (two stores sharing a
// lock only wait for each other).
var (
	locks    [256]chan struct{}
	lockSeed = maphash.MakeSeed()
)

func init() {
	for i := range locks {
		locks[i] = make(chan struct{}, 1)
	}
}

// storeLock is the write lock of store in database db.
func storeLock(db, store string) chan struct{} {
	return locks[maphash.String(lockSeed, db+"\x00"+store)%uint64(len(locks))]
}
