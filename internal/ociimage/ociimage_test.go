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

package ociimage_test

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/strategyops/strategy-operator/internal/ociimage"
)

func spec(t *testing.T) ociimage.Spec {
	t.Helper()
	dir := t.TempDir()
	bins := map[string]string{}
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		path := filepath.Join(dir, strings.ReplaceAll(p, "/", "_"))
		if err := os.WriteFile(path, []byte("binary for "+p), 0o600); err != nil {
			t.Fatal(err)
		}
		bins[p] = path
	}
	return ociimage.Spec{Ref: "strategy-runner:v1.2.3", Entrypoint: "/usr/local/bin/runner", Binaries: bins,
		CACertificates: []byte("-----BEGIN CERTIFICATE-----\n"), Version: "v1.2.3", Commit: "abc123",
		Created: time.Unix(1_700_000_000, 0).UTC()}
}

// files flattens an image's layers into path → header and content.
func files(t *testing.T, img v1.Image) map[string]struct {
	h    *tar.Header
	data string
} {
	t.Helper()
	rc := mutate.Extract(img)
	defer func() { _ = rc.Close() }()
	out := map[string]struct {
		h    *tar.Header
		data string
	}{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(h.Name, "/")] = struct {
			h    *tar.Header
			data string
		}{h, string(data)}
	}
}

func TestBuildMakesANonRootImagePerPlatform(t *testing.T) {
	s := spec(t)
	idx, err := ociimage.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 2 {
		t.Fatalf("index has %d images, want one per platform (2)", len(m.Manifests))
	}
	for _, d := range m.Manifests {
		platform := d.Platform.OS + "/" + d.Platform.Architecture
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Config.User != "65532:65532" || cf.OS+"/"+cf.Architecture != platform ||
			strings.Join(cf.Config.Entrypoint, " ") != "/usr/local/bin/runner" {
			t.Errorf("%s: config user %q, platform %s/%s, entrypoint %v", platform, cf.Config.User, cf.OS,
				cf.Architecture, cf.Config.Entrypoint)
		}
		if cf.Config.Labels["org.opencontainers.image.version"] != "v1.2.3" ||
			cf.Config.Labels["org.opencontainers.image.revision"] != "abc123" {
			t.Errorf("%s: labels %v", platform, cf.Config.Labels)
		}
		fs := files(t, img)
		bin := fs["usr/local/bin/runner"]
		if bin.h == nil || bin.data != "binary for "+platform || bin.h.Mode != 0o755 {
			t.Errorf("%s: the binary is %+v", platform, bin)
		}
		if !strings.Contains(fs["etc/passwd"].data, "nonroot:x:65532:65532:") || fs["etc/ssl/certs/ca-certificates.crt"].data == "" {
			t.Errorf("%s: base layer: passwd %q, CA %q", platform, fs["etc/passwd"].data, fs["etc/ssl/certs/ca-certificates.crt"].data)
		}
		if tmp := fs["tmp"].h; tmp == nil || tmp.Mode != 0o1777 {
			t.Errorf("%s: /tmp is %+v, want a world-writable sticky directory", platform, tmp)
		}
		if !fs["usr/local/bin/runner"].h.ModTime.Equal(s.Created) {
			t.Errorf("%s: file time %s, want the spec's %s", platform, bin.h.ModTime, s.Created)
		}
	}
}

// TestBuildPutsAnAppFolderInTheImage: a Spec with App holds the folder at /app (files with
// their content, readable by the image's user; folders; symbolic links as links) beside the
// binary, and starts in its WorkingDir.
func TestBuildPutsAnAppFolderInTheImage(t *testing.T) {
	s := spec(t)
	s.App, s.WorkingDir = t.TempDir(), "/tmp"
	if err := os.MkdirAll(filepath.Join(s.App, "node_modules", "pkg"), 0o755); err != nil {
		t.Fatal(err)
	}
	for file, data := range map[string]string{"bot.js": "console.log(1)", "node_modules/pkg/index.js": "export {}"} {
		if err := os.WriteFile(filepath.Join(s.App, file), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/elsewhere/lib", filepath.Join(s.App, "node_modules", "linked")); err != nil {
		t.Fatal(err)
	}
	idx, err := ociimage.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	fs := files(t, img)
	if bot := fs["app/bot.js"]; bot.h == nil || bot.data != "console.log(1)" || bot.h.Mode&0o044 != 0o044 {
		t.Errorf("/app/bot.js is %+v, want the folder's file, readable by all", bot)
	}
	if js := fs["app/node_modules/pkg/index.js"]; js.data != "export {}" || fs["app/node_modules/pkg"].h.Typeflag != tar.TypeDir {
		t.Errorf("/app/node_modules/pkg: %+v, index.js %+v", fs["app/node_modules/pkg"], js)
	}
	if l := fs["app/node_modules/linked"].h; l == nil || l.Typeflag != tar.TypeSymlink || l.Linkname != "/elsewhere/lib" {
		t.Errorf("/app/node_modules/linked is %+v, want the link as it is", l)
	}
	if fs["usr/local/bin/runner"].h == nil {
		t.Error("the image lacks its binary")
	}
	if cf, err := img.ConfigFile(); err != nil || cf.Config.WorkingDir != "/tmp" {
		t.Errorf("working dir: %v, %v", cf, err)
	}
}

func TestBuildIsReproducible(t *testing.T) {
	s := spec(t)
	a, err := ociimage.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ociimage.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Errorf("two builds of one spec differ: %s and %s", da, db)
	}
	s.Version = "v1.2.4"
	c, err := ociimage.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	if dc, _ := c.Digest(); dc == da {
		t.Errorf("another version has the same digest %s", dc)
	}
}

func TestBuildRefusesAnIncompleteSpec(t *testing.T) {
	s := spec(t)
	s.Entrypoint = "runner"
	if _, err := ociimage.Build(s); !errors.Is(err, ociimage.ErrSpec) || !strings.Contains(err.Error(), "strategy-runner") {
		t.Errorf("relative entrypoint: error %v, want ErrSpec naming the image", err)
	}
}

func TestLayoutAndPushRoundTrip(t *testing.T) {
	idx, err := ociimage.Build(spec(t))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	dir := filepath.Join(t.TempDir(), "images")
	if err := ociimage.WriteLayout(dir, map[string]v1.ImageIndex{"strategy-runner:v1.2.3": idx}); err != nil {
		t.Fatal(err)
	}
	read, err := ociimage.ReadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := read["strategy-runner:v1.2.3"]
	if !ok {
		t.Fatalf("layout holds %v, want strategy-runner:v1.2.3", read)
	}
	if d, _ := got.Digest(); d != want {
		t.Fatalf("read back %s, wrote %s", d, want)
	}
	if _, err := ociimage.ReadLayout(t.TempDir()); err == nil {
		t.Error("an empty folder read as a layout")
	}

	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/strategyops/strategy-runner:v1.2.3"
	if err := ociimage.Push(context.Background(), ref, got); err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := pulled.Digest(); d != want {
		t.Errorf("pulled %s, pushed %s", d, want)
	}
}
