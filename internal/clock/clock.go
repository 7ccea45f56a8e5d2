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

// Package clock is the runner's time: real, sped up so that tests run simulated days in
// seconds, or set by hand.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time and sleeps.
type Clock interface {
	Now() time.Time
	// Sleep waits d of this clock's time, or until done is closed; it reports whether the
	// full d passed.
	Sleep(d time.Duration, done <-chan struct{}) bool
}

// Real is the wall clock.
type Real struct{}

// Now implements Clock.
func (Real) Now() time.Time { return time.Now() }

// Sleep implements Clock.
func (Real) Sleep(d time.Duration, done <-chan struct{}) bool { return sleep(d, done) }

func sleep(d time.Duration, done <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}

// Scaled runs Factor times faster than the wall clock from Origin: at wall time
// Start + d it reads Origin + Factor*d. Two Scaled clocks with the same Start, Origin and
// Factor agree, even across processes, so a restarted process picks up where the
// simulated time really is.
type Scaled struct {
	Start  time.Time
	Origin time.Time
	Factor float64
}

// Now implements Clock.
func (s Scaled) Now() time.Time {
	return s.Origin.Add(time.Duration(float64(time.Since(s.Start)) * s.Factor))
}

// Sleep implements Clock: d of simulated time is d/Factor of wall time.
func (s Scaled) Sleep(d time.Duration, done <-chan struct{}) bool {
	return sleep(time.Duration(float64(d)/s.Factor), done)
}

// Manual is moved by hand, for tests. Sleep returns at once after moving the clock on.
type Manual struct {
	mu  sync.Mutex
	now time.Time
}

// NewManual returns a manual clock reading t.
func NewManual(t time.Time) *Manual { return &Manual{now: t} }

// Now implements Clock.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// Sleep implements Clock by moving the clock d on.
func (m *Manual) Sleep(d time.Duration, done <-chan struct{}) bool {
	select {
	case <-done:
		return false
	default:
	}
	m.Advance(d)
	return true
}

// Advance moves the clock d on.
func (m *Manual) Advance(d time.Duration) {
	m.mu.Lock()
	m.now = m.now.Add(d)
	m.mu.Unlock()
}
