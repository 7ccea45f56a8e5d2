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

// Package ociimage builds the project's container images without a container engine: a
// base layer made here (CA certificates, a non-root user, /tmp) and a layer with one
// static binary, for each platform, gathered in an OCI image index. It writes the
// indexes to an OCI image layout folder, reads them back, and pushes them to a registry.
// Layers and configs are reproducible: every file and the image carry one fixed time.
package ociimage

import (
	"archive/tar"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// NonRootUID is the user and group the images run as (distroless's "nonroot").
const NonRootUID = 65532

// RefNameAnnotation names an image in an OCI layout's index (name:tag).
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// Spec is one image: one binary per platform, run as the entrypoint.
type Spec struct {
	// Ref is name:tag, for example strategy-runner:v0.3.0.
	Ref string
	// Entrypoint is where the binary goes in the image, for example /usr/local/bin/runner.
	Entrypoint string
	// Binaries maps a platform ("linux/amd64") to the static binary built for it.
	Binaries map[string]string
	// CACertificates is the PEM bundle installed as /etc/ssl/certs/ca-certificates.crt.
	CACertificates []byte
	// Version and Commit label the image (org.opencontainers.image.version, .revision).
	Version, Commit string
	// Created is the time of every file and of the image (reproducible builds use a fixed one).
	Created time.Time
	// App, when set, is a folder of the user's copied into every platform's image at AppPath
	// (a bot and its installed packages), in a layer of its own.
	App string
	// WorkingDir is the folder the image's process starts in ("/" when empty).
	WorkingDir string
}

// AppPath is where the image holds Spec.App.
const AppPath = "/app"

// ErrSpec: a Spec lacks something an image needs.
var ErrSpec = errors.New("invalid image spec")

// Build makes the image index of s: one image per platform, each the base layer and the
// binary's layer.
func Build(s Spec) (v1.ImageIndex, error) {
	if s.Ref == "" || !strings.HasPrefix(s.Entrypoint, "/") || len(s.Binaries) == 0 || len(s.CACertificates) == 0 {
		return nil, fmt.Errorf("%w %q: ref, an absolute entrypoint, binaries and CA certificates are required", ErrSpec, s.Ref)
	}
	base, err := layer(baseFiles(s.CACertificates), s.Created)
	if err != nil {
		return nil, err
	}
	layers := []v1.Layer{base}
	if s.App != "" {
		files, err := folderFiles(s.App, AppPath)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", s.Ref, err)
		}
		app, err := layer(files, s.Created)
		if err != nil {
			return nil, err
		}
		layers = append(layers, app)
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, platform := range slices.Sorted(maps.Keys(s.Binaries)) {
		osName, arch, ok := strings.Cut(platform, "/")
		if !ok {
			return nil, fmt.Errorf("%w %q: platform %q is not os/arch", ErrSpec, s.Ref, platform)
		}
		bin, err := os.ReadFile(s.Binaries[platform])
		if err != nil {
			return nil, fmt.Errorf("image %s, platform %s: %w", s.Ref, platform, err)
		}
		binLayer, err := layer(append(parents(s.Entrypoint), file{name: s.Entrypoint, mode: 0o755, data: bin}), s.Created)
		if err != nil {
			return nil, err
		}
		img, err := image(s, osName, arch, append(slices.Clone(layers), binLayer)...)
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: osName, Architecture: arch}}})
	}
	return idx, nil
}

func image(s Spec, osName, arch string, layers ...v1.Layer) (v1.Image, error) {
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = osName, arch
	cf.Created = v1.Time{Time: s.Created}
	cf.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", NonRootUID, NonRootUID),
		Entrypoint: []string{s.Entrypoint},
		WorkingDir: cmp.Or(s.WorkingDir, "/"),
		Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin",
			"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
		Labels: map[string]string{
			"org.opencontainers.image.title":    strings.SplitN(s.Ref, ":", 2)[0],
			"org.opencontainers.image.version":  s.Version,
			"org.opencontainers.image.revision": s.Commit,
			"org.opencontainers.image.source":   "https://github.com/strategyops/strategy-operator",
		},
	}
	return mutate.ConfigFile(img, cf)
}

// file is one entry of a layer: a directory, a symbolic link to linkname, or a regular
// file holding data.
type file struct {
	name     string
	mode     int64
	dir      bool
	uid      int
	data     []byte
	linkname string
}

func baseFiles(ca []byte) []file {
	return []file{
		{name: "/etc", dir: true, mode: 0o755},
		{name: "/etc/passwd", mode: 0o644, data: fmt.Appendf(nil,
			"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", NonRootUID, NonRootUID)},
		{name: "/etc/group", mode: 0o644, data: fmt.Appendf(nil, "root:x:0:\nnonroot:x:%d:\n", NonRootUID)},
		// Go's resolver reads it: the hosts file first, then DNS.
		{name: "/etc/nsswitch.conf", mode: 0o644, data: []byte("hosts: files dns\n")},
		{name: "/etc/ssl", dir: true, mode: 0o755},
		{name: "/etc/ssl/certs", dir: true, mode: 0o755},
		{name: "/etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: ca},
		{name: "/home", dir: true, mode: 0o755},
		{name: "/home/nonroot", dir: true, mode: 0o700, uid: NonRootUID},
		{name: "/root", dir: true, mode: 0o700},
		{name: "/tmp", dir: true, mode: 0o1777},
	}
}

// folderFiles are the folder dir's directories, regular files and symbolic links (kept as
// links, as a Dockerfile's COPY keeps them), named as under at.
func folderFiles(dir, at string) ([]file, error) {
	out := []file{{name: at, dir: true, mode: 0o755}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		f := file{name: path.Join(at, filepath.ToSlash(rel))}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			f.dir, f.mode = true, 0o755
		case d.Type()&fs.ModeSymlink != 0:
			if f.linkname, err = os.Readlink(p); err != nil {
				return err
			}
			f.mode = 0o777
		case d.Type().IsRegular():
			if f.data, err = os.ReadFile(p); err != nil {
				return err
			}
			f.mode = int64(info.Mode().Perm() | 0o444) // readable by the image's user
		default:
			return nil // sockets, devices and fifos have no place in an image
		}
		out = append(out, f)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("the folder to put in the image: %w", err)
	}
	return out, nil
}

// parents are the directories above p, outermost first.
func parents(p string) []file {
	var out []file
	for d := path.Dir(p); d != "/"; d = path.Dir(d) {
		out = append([]file{{name: d, dir: true, mode: 0o755}}, out...)
	}
	return out
}

// layer is a gzip-compressed OCI layer of files, every entry stamped with the time t.
func layer(files []file, t time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: strings.TrimPrefix(f.name, "/"), Mode: f.mode, Uid: f.uid, Gid: f.uid,
			ModTime: t, Format: tar.FormatPAX}
		switch {
		case f.dir:
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		case f.linkname != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.linkname
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer))
}
