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
	"time"

	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// enqueue queues c, stamped now, for every replica.
func (d *replicated) enqueue(c change) {
	c.at = time.Now()
	for _, r := range d.replicas {
		if r.enqueue(c) {
			d.log.Warn("Replica queue full: rebuilding the replica from the primary", "replica", r.Name,
				"queueSize", r.size)
		}
	}
}

// enqueue queues c and reports whether the queue overflowed, which drops it and owes a
// rebuild. A change made while a rebuild is owed is not queued: the copy, not made yet,
// will hold it.
func (r *replica) enqueue(c change) (overflowed bool) {
	r.mu.Lock()
	switch {
	case !r.owed.IsZero():
	case len(r.queue) >= r.size:
		r.owe(r.queue[0].at)
		overflowed = true
	default:
		r.queue = append(r.queue, c)
	}
	r.mu.Unlock()
	r.signal()
	return overflowed
}

// copier is the driver copies of the primary's state write with: the Copier, or Driver.
func (r *replica) copier() driver.Driver {
	if r.Copier != nil {
		return r.Copier
	}
	return r.Driver
}

// oweRebuild drops the queue and owes a rebuild; it returns a channel closed once that
// rebuild is done.
func (r *replica) oweRebuild() <-chan struct{} {
	r.mu.Lock()
	since := time.Now()
	if len(r.queue) > 0 {
		since = r.queue[0].at
	}
	done := r.owe(since)
	r.mu.Unlock()
	r.signal()
	return done
}

// owe drops the queue and owes a rebuild covering the changes since since. The caller
// holds mu.
func (r *replica) owe(since time.Time) chan struct{} {
	clear(r.queue)
	r.queue = r.queue[:0]
	if r.owed.IsZero() || since.Before(r.owed) {
		r.owed = since
	}
	if r.owedDone == nil {
		r.owedDone = make(chan struct{})
	}
	return r.owedDone
}

func (r *replica) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// lag implements Lag.
func (r *replica) lag() (time.Duration, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.queue)
	oldest := r.owed
	for _, t := range []time.Time{r.rebuilding, r.applying} {
		if !t.IsZero() && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t
		}
	}
	if n > 0 && (oldest.IsZero() || r.queue[0].at.Before(oldest)) {
		oldest = r.queue[0].at
	}
	if !r.applying.IsZero() {
		n++
	}
	if oldest.IsZero() {
		return 0, n
	}
	return max(time.Since(oldest), time.Nanosecond), n
}

// task is the next work of a replica's goroutine: a rebuild (done is then the channel
// to close when it is done) or a change.
type task struct {
	rebuild bool
	done    chan struct{}
	change  change
}

// next waits for the next task; false once the driver is closing and nothing is left.
func (r *replica) next(stopping <-chan struct{}) (task, bool) {
	for {
		r.mu.Lock()
		switch {
		case !r.owed.IsZero():
			t := task{rebuild: true, done: r.owedDone}
			r.rebuilding, r.owed, r.owedDone = r.owed, time.Time{}, nil
			r.mu.Unlock()
			return t, true
		case len(r.queue) > 0:
			t := task{change: r.queue[0]}
			r.queue[0] = change{}
			r.queue = r.queue[1:]
			r.applying = t.change.at
			r.mu.Unlock()
			return t, true
		}
		r.mu.Unlock()
		select {
		case <-stopping:
			return task{}, false
		default:
		}
		select {
		case <-r.wake:
		case <-stopping:
		}
	}
}
