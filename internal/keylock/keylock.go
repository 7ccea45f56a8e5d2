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

// Package keylock holds locks by name, keeping only the ones some caller holds or waits
// for: a process that locks a name per key it ever wrote does not grow with those keys.
package keylock

import (
	"context"
	"sync"
)

// Set is a set of named locks. Its zero value is ready to use.
type Set struct {
	mu   sync.Mutex
	held map[string]*lock
}

type lock struct {
	ch    chan struct{} // holds a token while the lock is taken
	users int           // callers holding or waiting
}

// Acquire takes the lock named name, or gives up when ctx ends (a ctx ended already takes
// nothing); release gives it back, once however often it is called.
func (s *Set) Acquire(ctx context.Context, name string) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.held == nil {
		s.held = map[string]*lock{}
	}
	l := s.held[name]
	if l == nil {
		l = &lock{ch: make(chan struct{}, 1)}
		s.held[name] = l
	}
	l.users++
	s.mu.Unlock()
	leave := func() {
		s.mu.Lock()
		if l.users--; l.users == 0 {
			delete(s.held, name)
		}
		s.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-l.ch; leave() }) }, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}

// Len is how many names are held or waited for.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held)
}
