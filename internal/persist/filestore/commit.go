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

package filestore

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"

	"github.com/strategyops/strategy-operator/internal/groupcommit"
)

// committer makes written temp files durable and renames them into place, in batches.
//
// Each writer writes its temp file without syncing it and hands it to commit. Through a
// groupcommit.Batcher, one writer at a time takes every file handed in so far, flushes them
// all with a single syncfs (one fsync when the batch holds one file), renames each over its
// target, fsyncs the folder once, and only then releases the writers of that batch.
// Sixty-four writers on different keys thus share two flushes instead of issuing 128.
type committer struct {
	dir     string
	batcher groupcommit.Batcher[*commitReq]
}

func newCommitter(dir string) *committer {
	c := &committer{dir: dir}
	c.batcher.Commit = c.commitBatch
	return c
}

type commitReq struct {
	tmp, dst string
	err      error
}

// commit makes tmp durable as dst and returns when it is, or with the error that kept it
// from being so (tmp is then removed).
func (c *committer) commit(tmp, dst string) error {
	r := &commitReq{tmp: tmp, dst: dst}
	c.batcher.Do(r)
	return r.err
}

func (c *committer) commitBatch(batch []*commitReq) {
	defer func() {
		for _, r := range batch {
			if r.err != nil {
				_ = os.Remove(r.tmp)
			}
		}
	}()
	fail := func(err error) {
		for _, r := range batch {
			if r.err == nil {
				r.err = err
			}
		}
	}
	if err := c.flush(batch); err != nil {
		fail(err)
		return
	}
	renamed := false
	for _, r := range batch {
		if r.err = os.Rename(r.tmp, r.dst); r.err == nil {
			renamed = true
		}
	}
	if renamed {
		if err := syncDir(c.dir); err != nil {
			fail(err)
		}
	}
}

// flush makes the data of every temp file in batch durable.
func (c *committer) flush(batch []*commitReq) error {
	if len(batch) == 1 {
		f, err := os.OpenFile(batch[0].tmp, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		return errors.Join(f.Sync(), f.Close())
	}
	d, err := os.Open(c.dir)
	if err != nil {
		return err
	}
	return errors.Join(unix.Syncfs(int(d.Fd())), d.Close())
}
