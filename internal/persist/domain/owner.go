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
	"encoding/json"
	"errors"
	"fmt"

	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// A database keeps its rows as backtest-kit keys them (symbol, strategy name, exchange),
// so Strategies of two namespaces, or of two clusters, that name one strategy and exchange
// on one database would share their state. The Lease that elects a state identity's owner
// lives in one namespace of one cluster; a database backend therefore also records the
// owner beside the rows, in this project's own table: one record per identity, made only
// where none is, replaced only at the revision read.

// Owner is the Strategy recorded as the owner of a state identity in a database.
type Owner struct {
	// Cluster names the owner's cluster (the operator's --cluster-name, or the UID of its
	// kube-system namespace); empty when the operator could not tell.
	Cluster   string `json:"cluster,omitempty"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
	// Releasing: the owner is deleting the state, and then the record; nobody takes the
	// state over meanwhile.
	Releasing bool `json:"releasing,omitempty"`
}

func (o Owner) String() string {
	s := fmt.Sprintf("Strategy %s/%s (uid %s)", o.Namespace, o.Name, o.UID)
	if o.Cluster != "" {
		s += " of cluster " + o.Cluster
	}
	return s
}

// ownerStore is the store of the owner record of the identity; ownerKey its one key.
func ownerStore(strategyName, exchangeName string) string {
	return "owner " + strategyName + ":" + exchangeName
}

const ownerKey = "owner"

// owners opens the store of the identity's owner record.
func (db *Database) owners(ctx context.Context, strategyName, exchangeName string) (driver.Driver, error) {
	d := db.ownStore(ownerStore(strategyName, exchangeName), NoFencing)
	if _, err := d.Init(ctx, false); err != nil {
		return nil, err
	}
	return d, nil
}

// ReadOwner returns the owner recorded for the identity and the revision it was read at;
// found is false when none is recorded.
func (db *Database) ReadOwner(ctx context.Context, strategyName, exchangeName string) (
	o Owner, rev driver.Revision, found bool, err error) {
	d, err := db.owners(ctx, strategyName, exchangeName)
	if err != nil {
		return Owner{}, "", false, err
	}
	e, err := d.Get(ctx, ownerKey)
	if errors.Is(err, driver.ErrNotFound) {
		return Owner{}, "", false, nil
	}
	if err != nil {
		return Owner{}, "", false, fmt.Errorf("reading the owner of %s:%s: %w", strategyName, exchangeName, err)
	}
	if err := json.Unmarshal(e.Value, &o); err != nil || o.UID == "" {
		return Owner{}, "", false, fmt.Errorf("the owner record of %s:%s holds %q, not an owner: %w",
			strategyName, exchangeName, e.Value, driver.ErrInvalidValue)
	}
	return o, e.Revision, true, nil
}

// RecordOwner records o as the owner of the identity: where no owner is recorded when rev
// is empty, else only in place of the record read at rev. A record changed meanwhile
// fails with driver.ErrConflict, and nothing is written.
func (db *Database) RecordOwner(ctx context.Context, strategyName, exchangeName string, o Owner,
	rev driver.Revision) error {
	d, err := db.owners(ctx, strategyName, exchangeName)
	if err != nil {
		return err
	}
	value, err := json.Marshal(o)
	if err != nil {
		return err
	}
	pre := driver.Precondition{IfRevision: rev, IfAbsent: rev == ""}
	if _, err := d.Put(ctx, ownerKey, value, pre); err != nil {
		return fmt.Errorf("recording %s as the owner of %s:%s: %w", o, strategyName, exchangeName, err)
	}
	return nil
}

// ReleaseOwner removes the owner record of the identity if it is still at rev.
func (db *Database) ReleaseOwner(ctx context.Context, strategyName, exchangeName string, rev driver.Revision) error {
	d, err := db.owners(ctx, strategyName, exchangeName)
	if err != nil {
		return err
	}
	err = d.Delete(ctx, ownerKey, driver.Precondition{IfRevision: rev})
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		return fmt.Errorf("releasing the owner record of %s:%s: %w", strategyName, exchangeName, err)
	}
	return nil
}

// CheckOwner fails with driver.ErrNotOwned, naming the owner, when the database records
// another Strategy than me as the owner of the identity: a runner then refuses to write.
// me names the namespace and name of the runner's Strategy, and its UID when the runner
// knows it: a Strategy of the same namespace and name in another cluster (two clusters
// applying one set of manifests) is another owner, told apart by its UID alone. None
// recorded passes: the operator records one before it starts a runner, and a runner
// started by hand writes where it is told.
func (db *Database) CheckOwner(ctx context.Context, strategyName, exchangeName string, me Owner) error {
	o, _, found, err := db.ReadOwner(ctx, strategyName, exchangeName)
	switch {
	case err != nil:
		return err
	case found && (o.Namespace != me.Namespace || o.Name != me.Name || me.UID != "" && o.UID != me.UID):
		mine := fmt.Sprintf("Strategy %s/%s", me.Namespace, me.Name)
		if me.UID != "" {
			mine = me.String()
		}
		return fmt.Errorf("%w: the database records %s as the owner of %s:%s, not %s", driver.ErrNotOwned,
			o, strategyName, exchangeName, mine)
	}
	return nil
}
