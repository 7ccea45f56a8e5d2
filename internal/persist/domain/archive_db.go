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
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// ArchiveLedger is ArchiveLedger on the database, unfenced (the operator's pass), after
// moving into the archive table what an older operator archived beside the live ledgers
// (see oldArchive).
func (db *Database) ArchiveLedger(ctx context.Context, k Key, keep int) (int, error) {
	if err := db.MoveOldArchive(ctx, k); err != nil {
		return 0, err
	}
	return ArchiveLedger(ctx, db.Backend(NoFencing), k, keep)
}

// DeleteState deletes every store of contexts, unfenced; for an archive, what an older
// operator left in the old place too.
func (db *Database) DeleteState(ctx context.Context, contexts []Context) error {
	b := db.Backend(NoFencing)
	errs := make([]error, 0, len(contexts))
	for _, c := range contexts {
		d, err := b(ctx, c.Domain, c.Key)
		if err == nil {
			err = empty(ctx, d)
		}
		errs = append(errs, err)
		if c.Domain != HistoryArchive {
			continue
		}
		if old := db.oldArchive(c.Key); old != nil {
			errs = append(errs, empty(ctx, old))
		}
	}
	return errors.Join(errs...)
}

// empty deletes every entry of d and closes it. (Init first: a database's driver reads
// and deletes only in a table made, and nothing may have made this one yet.)
func empty(ctx context.Context, d driver.Driver) error {
	defer func() { _ = d.Close() }()
	if _, err := d.Init(ctx, false); err != nil {
		return err
	}
	return d.DeleteAll(ctx)
}

// oldArchive is where operators before the archive table kept k's archive: this project's
// own table, beside the live ledgers; nil on a database whose tables do not place its
// stores (Redis), where nothing moved.
func (db *Database) oldArchive(k Key) driver.Driver {
	if !db.tables {
		return nil
	}
	return db.ownStore(string(HistoryArchive)+" "+k.String(), NoFencing)
}

// movedOldArchives remembers, per database and context, that the old place of its archive
// was found empty by this process: nothing puts entries there again, so it is not read on
// every pass (a scan on a server such as FerretDB). One entry per archive this process
// has tended.
var movedOldArchives sync.Map

// MoveOldArchive moves the entries of k's old archive into its archive store: each is
// written there (merged with a copy already there) before it leaves the old place, at the
// revision copied, so an interrupted move loses nothing and the next pass finishes it.
// Once this process finds the old place empty, it looks no more.
func (db *Database) MoveOldArchive(ctx context.Context, k Key) error {
	if _, moved := movedOldArchives.Load(db.movedKey(k)); moved || !db.tables {
		return nil
	}
	if err := db.moveOldArchive(ctx, k, db.oldArchive(k)); err != nil {
		return fmt.Errorf("moving the archive of %s to its table: %w", k, err)
	}
	return nil
}

func (db *Database) movedKey(k Key) string { return db.id + "\x00" + k.String() }

func (db *Database) moveOldArchive(ctx context.Context, k Key, old driver.Driver) error {
	defer func() { _ = old.Close() }()
	if _, err := old.Init(ctx, false); err != nil {
		return err
	}
	left, err := liveEntries(ctx, old)
	if err != nil {
		return err
	}
	if len(left) == 0 {
		movedOldArchives.Store(db.movedKey(k), true)
		return nil
	}
	archive, err := openStore(ctx, db.Backend(NoFencing), HistoryArchive, k)
	if err != nil {
		return err
	}
	defer func() { _ = archive.Close() }()
	moving := make([]*HistoryEntry, 0, len(left))
	for _, e := range left {
		moving = append(moving, e.HistoryEntry)
	}
	slices.SortFunc(moving, byFirstEvent)
	for _, e := range moving {
		if err := archiveEntry(ctx, archive, e); err != nil {
			return err
		}
	}
	_, err = removeArchived(ctx, old, left, moving)
	return err
}
