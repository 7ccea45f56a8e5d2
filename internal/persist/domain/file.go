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
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/strategyops/strategy-operator/internal/persist/filestore"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// FileBackend keeps each context in baseDir/<domain>/<folder>/, one JSON file per entity,
// laid out as backtest-kit 19.5.0 lays out its data folder (./dump/data), so that either
// reads what the other wrote (see FileFolder). On first use it moves the folders that
// earlier versions of this project named otherwise (MoveLegacyFolders).
func FileBackend(baseDir string) Backend {
	var once sync.Once
	var moveErr error
	return func(_ context.Context, d Domain, k Key) (driver.Driver, error) {
		once.Do(func() { moveErr = MoveLegacyFolders(baseDir, slog.Default()) })
		if moveErr != nil {
			return nil, moveErr
		}
		folder, err := FileFolder(d, k)
		if err != nil {
			return nil, err
		}
		return filestore.New(filepath.Join(baseDir, string(d), folder)), nil
	}
}

// FileFolder is the folder of context k in domain d, as backtest-kit names it: the key
// parts joined with '_', unescaped — symbol_strategyName_exchangeName, and for risk
// riskName_exchangeName. A name backtest-kit would turn into nested folders (a '/', as in
// "BTC/USDT") or that is no folder name at all is escaped instead, as file names are
// (filestore.EscapedName): it stays one folder inside the domain's.
func FileFolder(d Domain, k Key) (string, error) {
	parts := []string{k.Symbol, k.StrategyName, k.ExchangeName}
	if d == Risk {
		parts = []string{k.RiskName, k.ExchangeName}
	}
	name := strings.Join(parts, "_")
	if strings.ContainsAny(name, "/\\\x00") || name == "." || name == ".." {
		return filestore.EscapedName(name), nil // never a hash: MoveLegacyFolders reports those
	}
	return name, nil
}

// MoveLegacyFolders renames the context folders earlier versions of this project wrote
// (the context's key string escaped, "BTCUSDT%3Amy-strategy%3Abinance") to backtest-kit's
// names, logging each move. A rename is atomic, so a crash leaves each folder under one
// name or the other, and the next run moves the rest. A folder it cannot map is reported
// and left as it is, never dropped. When today's name is taken by a folder that holds
// values too (a downgrade and upgrade again), neither is touched and it returns
// ErrFolderConflict: trading from either would drop the other's signals. A folder another process
// still writes (its lock is held) is not moved: that is an error wrapping driver.ErrLocked,
// as opening a folder another runner holds is. So is a domain folder it cannot read.
func MoveLegacyFolders(baseDir string, log *slog.Logger) error {
	for _, d := range Domains {
		dir := filepath.Join(baseDir, string(d))
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		for _, e := range entries {
			from := filepath.Join(dir, e.Name())
			if e.IsDir() && filestore.IsHashedName(e.Name()) {
				// Today's names are never hashed: an earlier version's name of a context over
				// 200 bytes, which the name alone cannot give back.
				log.Error("Cannot map a state folder of an earlier version (a hash of a long name); left as it is",
					"folder", from)
				continue
			}
			if !e.IsDir() || !strings.Contains(e.Name(), "%3A") {
				continue // the earlier names escaped the key's ':' separators; today's have none
			}
			folder, err := legacyFolder(d, e.Name())
			if err != nil {
				log.Error("Cannot map a state folder of an earlier version; left as it is", "folder", from,
					"error", err.Error())
				continue
			}
			to := filepath.Join(dir, folder)
			if err := clearEmptyTarget(to); err != nil {
				return fmt.Errorf("moving %s: %w", from, err)
			}
			err = filestore.MoveDir(from, to)
			if errors.Is(err, driver.ErrLocked) {
				return fmt.Errorf("an earlier version's runner still writes %s: %w", from, err)
			}
			if err != nil {
				log.Error("Cannot move a state folder of an earlier version; left as it is", "folder", from,
					"to", to, "error", err.Error())
				continue
			}
			log.Info("Moved a state folder of an earlier version to backtest-kit's name", "from", from, "to", to)
		}
	}
	return nil
}

// ErrFolderConflict: an earlier version's folder and today's folder of one context both
// hold state; which one to trade from is for a person to say.
var ErrFolderConflict = errors.New("the context's state is in two folders")

// clearEmptyTarget makes way for a move to to: a folder there that holds no value (only
// its lock, or nothing) is removed; one that holds values is ErrFolderConflict.
func clearEmptyTarget(to string) error {
	entries, err := os.ReadDir(to)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() != ".lock" {
			return fmt.Errorf("%w: %s holds %s; keep the folder to trade from and remove the other", ErrFolderConflict,
				to, e.Name())
		}
	}
	return os.RemoveAll(to)
}

// legacyFolder maps an earlier version's folder name (the escaped Key.String) to FileFolder.
func legacyFolder(d Domain, name string) (string, error) {
	key, err := filestore.DecodeName(name)
	if err != nil {
		return "", err
	}
	parts := strings.Split(key, ":")
	var k Key
	switch {
	case d == Risk && len(parts) == 2:
		k = RiskKey(parts[0], parts[1])
	case d != Risk && len(parts) >= 3: // the symbol may hold ':'; the names after it do not
		n := len(parts)
		k = StrategyKey(strings.Join(parts[:n-2], ":"), parts[n-2], parts[n-1])
	default:
		return "", fmt.Errorf("%q is not a %s context", key, d)
	}
	if err := k.Validate(d); err != nil {
		return "", err
	}
	return FileFolder(d, k)
}
