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

// Package filestore is the default persistence backend: one JSON file per key in one folder
// per store, written crash-safely.
//
// A write goes to a temporary file in the same folder, is flushed to disk, renamed over
// the target, and the folder is flushed, so after a crash a key holds either its old or
// its new value, never a torn one. Concurrent writes share their flushes (see committer). The folder is locked (flock) for the lifetime of the
// driver: a second process opening it gets ErrLocked. Corrupt entries found at Init are
// moved to quarantine/ with the reason logged, never deleted.
//
// Keys map to file names reversibly: bytes outside [A-Za-z0-9._-] (and a leading '.')
// are written as %XX. A key whose name would be too long for the file system is stored
// under a hash, with its key in a ".key" file beside it.
package filestore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/strategyops/strategy-operator/internal/keylock"
	"github.com/strategyops/strategy-operator/internal/persist/keyname"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

const (
	tmpPrefix     = ".tmp-"
	lockName      = ".lock"
	quarantineDir = "quarantine"
	valueExt      = ".json"
	keyExt        = ".key"
	hashedPrefix  = "~"
	// staleTmpAge: temp files older than this belong to no live writer.
	staleTmpAge = 2 * time.Minute
	removeTries = 5
)

// Driver stores one key per file in Dir.
type Driver struct {
	dir    string
	log    *slog.Logger
	retryE time.Duration

	lockMu  sync.Mutex
	lock    *os.File
	keys    keylock.Set // by file base name, while a write holds or waits for one
	commits *committer
}

var _ driver.Driver = (*Driver)(nil)

// Option configures a Driver.
type Option func(*Driver)

// WithLogger sets the logger for quarantine and clean-up reports.
func WithLogger(l *slog.Logger) Option { return func(d *Driver) { d.log = l } }

// New returns a driver for the folder dir (created by Init), in backtest-kit's layout
// baseDir/entityName when dir is filepath.Join(baseDir, entityName).
func New(dir string, opts ...Option) *Driver {
	d := &Driver{dir: dir, log: slog.Default(), retryE: 100 * time.Millisecond, commits: newCommitter(dir)}
	for _, o := range opts {
		o(d)
	}
	return d
}

// Dir is the store's folder.
func (d *Driver) Dir() string { return d.dir }

// names encodes keys as file names.
var names = keyname.Escaper{Escape: '%', Hashed: hashedPrefix}

// The modes backtest-kit gives its folders and files (before the umask).
const (
	dirMode  = 0o755
	fileMode = 0o644
)

// DecodeName is the key EncodeName made name from.
func DecodeName(name string) (string, error) { return names.Decode(name) }

// MoveDir renames the folder from to to, which must not exist, durably (the parent
// folder is synced). A crash leaves it under one name or the other.
//
// It holds the source folder's lock while it moves it: a folder another process has open
// for writing is not moved (driver.ErrLocked), so that process never writes to a folder
// that is no longer where it is looked for.
func MoveDir(from, to string) error {
	if _, err := os.Lstat(to); err == nil {
		return fmt.Errorf("moving %s: %s exists already", from, to)
	}
	lock, err := lockFolder(from)
	if err != nil {
		return fmt.Errorf("moving %s: %w", from, err)
	}
	defer func() { _ = unlockFolder(lock) }()
	if err := os.Rename(from, to); err != nil {
		return err
	}
	return syncDir(filepath.Dir(to))
}

// EscapedName is name escaped as EncodeName escapes it, but never hashed, however long:
// a folder name that must stay readable.
func EscapedName(name string) string { return names.Escaped(name) }

// IsHashedName reports whether a file or folder name is a hash of a name too long to
// keep (see EncodeName): the name it stands for cannot be read back from it.
func IsHashedName(name string) bool { return names.IsHashed(name) }

// lockFolder takes dir's write lock without waiting: driver.ErrLocked while another
// process holds it. Closing the file releases it.
func lockFolder(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer func() { _ = f.Close() }()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder, _ := io.ReadAll(io.LimitReader(f, 256))
			if h := strings.TrimSpace(string(holder)); h != "" {
				return nil, fmt.Errorf("%w: %s, held by %s (as the holder recorded)", driver.ErrLocked, dir, h)
			}
			return nil, fmt.Errorf("%w: %s", driver.ErrLocked, dir)
		}
		return nil, err
	}
	// Who holds it, for the error another process gets (best effort: the lock is the flock,
	// and a holder killed before unlockFolder leaves its words behind).
	host, _ := os.Hostname()
	if f.Truncate(0) == nil {
		_, _ = f.WriteAt(fmt.Appendf(nil, "process %d on host %s\n", os.Getpid(), host), 0)
	}
	return f, nil
}

// unlockFolder releases a lock lockFolder took, first erasing who held it.
func unlockFolder(f *os.File) error {
	_ = f.Truncate(0)
	return f.Close() // closing the descriptor releases the flock
}

// EncodeName is the file base name (without extension) that holds key: reversible for
// names of up to 200 bytes, a hash beyond (see keyname).
func EncodeName(key string) string { return names.Encode(key) }

func (d *Driver) path(name, ext string) string { return filepath.Join(d.dir, name+ext) }

// Init creates the folder, takes its lock, removes stale temp files and quarantines
// entries that are not valid JSON.
func (d *Driver) Init(_ context.Context, _ bool) (driver.InitReport, error) {
	var report driver.InitReport
	if err := os.MkdirAll(d.dir, dirMode); err != nil {
		return report, err
	}
	if err := d.takeLock(); err != nil {
		return report, err
	}
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return report, err
	}
	now := time.Now()
	for _, e := range entries {
		name := e.Name()
		switch {
		case e.IsDir():
			continue
		case strings.HasPrefix(name, tmpPrefix):
			if info, err := e.Info(); err == nil && now.Sub(info.ModTime()) > staleTmpAge {
				if err := d.removeFile(filepath.Join(d.dir, name)); err != nil {
					d.log.Warn("Could not remove stale temp file", "file", name, "err", err)
				}
			}
		case strings.HasSuffix(name, keyExt):
			base := strings.TrimSuffix(name, keyExt)
			if _, err := os.Stat(d.path(base, valueExt)); errors.Is(err, os.ErrNotExist) {
				_ = d.removeFile(d.path(base, keyExt)) // a hashed key whose value was never written
			}
		case strings.HasSuffix(name, valueExt):
			data, err := os.ReadFile(filepath.Join(d.dir, name))
			if err != nil {
				return report, err
			}
			if json.Valid(data) {
				continue
			}
			if err := d.quarantine(name, "not valid JSON"); err != nil {
				return report, err
			}
			report.Quarantined++
		}
	}
	return report, nil
}

func (d *Driver) takeLock() error {
	d.lockMu.Lock()
	defer d.lockMu.Unlock()
	if d.lock != nil {
		return nil
	}
	f, err := lockFolder(d.dir)
	if err != nil {
		return err
	}
	d.lock = f
	return nil
}

// quarantine moves a corrupt entry (and a hashed key's .key file) aside.
func (d *Driver) quarantine(name, reason string) error {
	qdir := filepath.Join(d.dir, quarantineDir)
	if err := os.MkdirAll(qdir, dirMode); err != nil {
		return err
	}
	stamp := time.Now().UTC().Format("20060102T150405.000000000Z")
	target := filepath.Join(qdir, name+"."+stamp)
	if err := os.Rename(filepath.Join(d.dir, name), target); err != nil {
		return err
	}
	base := strings.TrimSuffix(name, valueExt)
	if strings.HasPrefix(base, hashedPrefix) {
		_ = os.Rename(d.path(base, keyExt), filepath.Join(qdir, base+keyExt+"."+stamp))
	}
	d.log.Warn("Quarantined a corrupt entry", "dir", d.dir, "file", name, "movedTo", target, "reason", reason)
	return syncDir(d.dir)
}

func revisionOf(info os.FileInfo, data []byte) driver.Revision {
	var ino uint64
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	return driver.Revision(fmt.Sprintf("%x.%x.%x", ino, info.ModTime().UnixNano(), crc32.ChecksumIEEE(data)))
}

func (d *Driver) read(name string) (driver.Entry, error) {
	f, err := os.Open(d.path(name, valueExt))
	if errors.Is(err, os.ErrNotExist) {
		return driver.Entry{}, driver.ErrNotFound
	}
	if err != nil {
		return driver.Entry{}, err
	}
	defer func() { _ = f.Close() }()
	info, err := f.Stat()
	if err != nil {
		return driver.Entry{}, err
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return driver.Entry{}, err
	}
	return driver.Entry{Value: buf.Bytes(), Revision: revisionOf(info, buf.Bytes())}, nil
}

// Get implements driver.Driver.
func (d *Driver) Get(_ context.Context, key string) (driver.Entry, error) {
	return d.read(EncodeName(key))
}

func (d *Driver) check(name string, pre driver.Precondition) error {
	if pre.IsZero() {
		return nil
	}
	cur, err := d.read(name)
	exists := err == nil
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	switch {
	case pre.IfAbsent && exists:
		return fmt.Errorf("%w: key exists", driver.ErrConflict)
	case pre.IfRevision != "" && (!exists || cur.Revision != pre.IfRevision):
		return fmt.Errorf("%w: want revision %s", driver.ErrConflict, pre.IfRevision)
	}
	return nil
}

// Put implements driver.Driver.
func (d *Driver) Put(ctx context.Context, key string, value []byte, pre driver.Precondition) (driver.Revision, error) {
	name := EncodeName(key)
	release, err := d.keys.Acquire(ctx, name)
	if err != nil {
		return "", err
	}
	defer release()
	if err := d.check(name, pre); err != nil {
		return "", err
	}
	if strings.HasPrefix(name, hashedPrefix) {
		if err := d.writeAtomic(name+keyExt, []byte(key)); err != nil {
			return "", err
		}
	}
	if err := d.writeAtomic(name+valueExt, value); err != nil {
		return "", err
	}
	info, err := os.Stat(d.path(name, valueExt))
	if err != nil {
		return "", err
	}
	return revisionOf(info, value), nil
}

// writeAtomic replaces dir/name with data: a temp file in the same folder, flushed,
// renamed over the target, and the folder flushed (see committer).
func (d *Driver) writeAtomic(name string, data []byte) error {
	var suffix [8]byte
	_, _ = rand.Read(suffix[:])
	tmp := filepath.Join(d.dir, tmpPrefix+hex.EncodeToString(suffix[:])+"-"+name)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err = errors.Join(err, f.Close()); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return d.commits.commit(tmp, filepath.Join(d.dir, name))
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeFile removes path, trying again on transient errors; a missing file is not an error.
func (d *Driver) removeFile(path string) error {
	var err error
	for try := range removeTries {
		err = os.Remove(path)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(d.retryE * time.Duration(try+1))
	}
	return err
}

// Delete implements driver.Driver.
func (d *Driver) Delete(ctx context.Context, key string, pre driver.Precondition) error {
	name := EncodeName(key)
	release, err := d.keys.Acquire(ctx, name)
	if err != nil {
		return err
	}
	defer release()
	if _, err := os.Stat(d.path(name, valueExt)); errors.Is(err, os.ErrNotExist) {
		return driver.ErrNotFound
	}
	if err := d.check(name, pre); err != nil {
		return err
	}
	if err := d.removeFile(d.path(name, valueExt)); err != nil {
		return err
	}
	if strings.HasPrefix(name, hashedPrefix) {
		if err := d.removeFile(d.path(name, keyExt)); err != nil {
			return err
		}
	}
	return syncDir(d.dir)
}

// DeleteAll implements driver.Driver.
func (d *Driver) DeleteAll(ctx context.Context) error {
	keys, err := d.Keys(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := d.Delete(ctx, k, driver.Precondition{}); err != nil && !errors.Is(err, driver.ErrNotFound) {
			return err
		}
	}
	return nil
}

// Keys implements driver.Driver.
func (d *Driver) Keys(context.Context) ([]string, error) {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(entries))
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, valueExt) {
			continue
		}
		base := strings.TrimSuffix(name, valueExt)
		var key string
		if strings.HasPrefix(base, hashedPrefix) {
			data, err := os.ReadFile(d.path(base, keyExt))
			if err != nil {
				return nil, fmt.Errorf("key file of %s: %w", name, err)
			}
			key = string(data)
		} else if key, err = names.Decode(base); err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// Close releases the folder lock.
func (d *Driver) Close() error {
	d.lockMu.Lock()
	defer d.lockMu.Unlock()
	if d.lock == nil {
		return nil
	}
	err := unlockFolder(d.lock)
	d.lock = nil
	return err
}
