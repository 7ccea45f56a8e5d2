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

package replicastore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// run is a replica's goroutine: it initializes the replica once the primary is, then
// applies its tasks until Close.
func (d *replicated) run(r *replica) {
	select {
	case <-d.inited:
	case <-d.stopping:
		select {
		case <-d.inited: // initialized before Close: apply what is queued
		default:
			return
		}
	}
	if !d.retry(r, "initialize", nil, func(ctx context.Context) error {
		_, err := r.Driver.Init(ctx, d.initial)
		if err == nil && r.Copier != nil {
			_, err = r.Copier.Init(ctx, d.initial)
		}
		return err
	}) {
		return
	}
	for {
		t, ok := r.next(d.stopping)
		if !ok {
			return
		}
		if t.rebuild {
			if !d.retry(r, "rebuild", nil, func(ctx context.Context) error { return d.copyTo(ctx, r) }) {
				return
			}
			r.mu.Lock()
			r.rebuilding = time.Time{}
			r.mu.Unlock()
			close(t.done)
			continue
		}
		// A rebuild owed meanwhile holds the change: the attempts on it can stop.
		superseded := func() bool {
			r.mu.Lock()
			defer r.mu.Unlock()
			return !r.owed.IsZero()
		}
		if !d.retry(r, "apply a change", superseded, func(ctx context.Context) error {
			return d.apply(ctx, r, t.change)
		}) {
			return
		}
		r.mu.Lock()
		r.applying = time.Time{}
		r.mu.Unlock()
	}
}

// retry calls attempt until it succeeds (true), or until the driver's context ends or
// abandon (when set) says to stop (false), waiting longer after each failure.
func (d *replicated) retry(r *replica, what string, abandon func() bool, attempt func(context.Context) error) bool {
	delay := minBackoff
	for {
		err := attempt(d.ctx)
		if err == nil {
			if r.failing {
				r.failing = false
				d.log.Info("Replica recovered", "replica", r.Name)
			}
			return true
		}
		if d.ctx.Err() != nil {
			return false
		}
		if !r.failing {
			r.failing = true
			d.log.Warn("Replica failed; retrying", "replica", r.Name, "task", what, "error", err)
		}
		if abandon != nil && abandon() {
			return true
		}
		select {
		case <-d.ctx.Done():
			return false
		case <-time.After(delay):
		}
		delay = min(2*delay, maxBackoff)
	}
}

// apply makes c on a replica, unconditionally: a write the primary acknowledged with the
// replica's driver, a copy of the key as the primary holds it (a write whose outcome was
// lost, which the primary may not have recorded) with its Copier.
func (d *replicated) apply(ctx context.Context, r *replica, c change) error {
	to := r.Driver
	switch c.op {
	case opPut:
		_, err := to.Put(ctx, c.key, c.value, driver.Precondition{})
		return err
	case opDelete:
		return ignoreNotFound(to.Delete(ctx, c.key, driver.Precondition{}))
	case opDeleteAll:
		return to.DeleteAll(ctx)
	}
	to = r.copier()
	e, err := d.primary.Get(ctx, c.key)
	if errors.Is(err, driver.ErrNotFound) {
		return ignoreNotFound(to.Delete(ctx, c.key, driver.Precondition{}))
	}
	if err != nil {
		return fmt.Errorf("read the primary: %w", err)
	}
	_, err = to.Put(ctx, c.key, e.Value, driver.Precondition{})
	return err
}

func ignoreNotFound(err error) error {
	if errors.Is(err, driver.ErrNotFound) {
		return nil
	}
	return err
}

// copyTo makes a replica hold the primary's state: it reads the primary, empties the
// replica and writes every entry (with its Copier); a replica ahead of the floor is left
// whole.
func (d *replicated) copyTo(ctx context.Context, r *replica) error {
	to := r.copier()
	if tr, ok := r.Driver.(driver.TokenRecorder); ok && d.floor != nil {
		token, err := tr.RecordedToken(ctx)
		if err != nil {
			return fmt.Errorf("read the replica's fencing token: %w", err)
		}
		if token > *d.floor && token != d.token {
			return fmt.Errorf("%w: the replica records fencing token %d, the primary had %d and this writer holds "+
				"%d: not rebuilt, so as not to lose what only the replica holds", ErrPrimaryBehind, token, *d.floor,
				d.token)
		}
	}
	state, err := d.state(ctx)
	if err != nil {
		return fmt.Errorf("read the primary: %w", err)
	}
	if err := to.DeleteAll(ctx); err != nil {
		return err
	}
	for key, e := range state {
		if _, err := to.Put(ctx, key, e.Value, driver.Precondition{}); err != nil {
			return err
		}
	}
	return nil
}

// state reads every entry of the primary: its Snapshot, or Keys and Get. A key deleted
// between the two is left out.
func (d *replicated) state(ctx context.Context) (map[string]driver.Entry, error) {
	if d.snapshotter != nil {
		return d.snapshotter.Snapshot(ctx)
	}
	keys, err := d.primary.Keys(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]driver.Entry, len(keys))
	for _, k := range keys {
		e, err := d.primary.Get(ctx, k)
		switch {
		case errors.Is(err, driver.ErrNotFound):
		case err != nil:
			return nil, err
		default:
			out[k] = e
		}
	}
	return out, nil
}
