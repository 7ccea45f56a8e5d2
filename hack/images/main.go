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

// Command images builds the project's container images without a container engine (make
// images): it cross-compiles the manager, the runner and the Go SDK's example strategy as
// static binaries for each platform, packs each as an image on a base layer made here
// (internal/ociimage), writes them all into an OCI image layout folder, and, given a
// registry, pushes them there.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/strategyops/strategy-operator/internal/names"
	"github.com/strategyops/strategy-operator/internal/ociimage"
)

// target is one image: the Go package of its binary and where the binary goes.
type target struct{ name, pkg, binary, entrypoint string }

var targets = []target{
	{name: "strategy-operator", pkg: "./cmd/manager", binary: "manager", entrypoint: "/manager"},
	{name: "strategy-runner", pkg: "./cmd/runner", binary: "runner", entrypoint: names.RunnerPath},
	{name: "go-strategy", pkg: "./examples/go-strategy", binary: "go-strategy", entrypoint: "/go-strategy"},
}

const versionPkg = "github.com/strategyops/strategy-operator/internal/version"

func main() {
	platforms := flag.String("platforms", "linux/amd64,linux/arm64", "comma-separated os/arch to build for")
	version := flag.String("version", "dev", "version stamped into the binaries, and the images' tag")
	commit := flag.String("commit", "", "source commit stamped into the binaries and the images' labels")
	epoch := flag.Int64("source-date-epoch", 0, "Unix time of every file and image (reproducible builds)")
	out := flag.String("out", "bin/images", "OCI image layout folder to write")
	registry := flag.String("registry", "", "push the images to this registry prefix too (for example ghcr.io/me)")
	ca := flag.String("ca-certificates", "/etc/ssl/certs/ca-certificates.crt", "PEM bundle to install in the images")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	stamp := stamp{version: *version, commit: *commit, created: time.Unix(*epoch, 0).UTC()}
	if err := run(ctx, strings.Split(*platforms, ","), stamp, *out, *registry, *ca); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// stamp is what every binary and image of one build carries.
type stamp struct {
	version, commit string
	created         time.Time
}

func run(ctx context.Context, platforms []string, st stamp, out, registry, caFile string) error {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("CA certificates for the images (Debian: apt-get install ca-certificates): %w", err)
	}
	buildDir := filepath.Join(filepath.Dir(out), "images-build")
	binaries := map[string]map[string]string{} // image name → platform → binary
	for _, platform := range platforms {
		dir, err := compile(ctx, platform, st, buildDir)
		if err != nil {
			return err
		}
		for _, t := range targets {
			if binaries[t.name] == nil {
				binaries[t.name] = map[string]string{}
			}
			binaries[t.name][platform] = filepath.Join(dir, t.binary)
		}
	}
	images := map[string]v1.ImageIndex{}
	for _, t := range targets {
		ref := t.name + ":" + st.version
		idx, err := ociimage.Build(ociimage.Spec{Ref: ref, Entrypoint: t.entrypoint, Binaries: binaries[t.name],
			CACertificates: ca, Version: st.version, Commit: st.commit, Created: st.created})
		if err != nil {
			return err
		}
		images[ref] = idx
		if err := describe(ref, idx); err != nil {
			return err
		}
	}
	if err := ociimage.WriteLayout(out, images); err != nil {
		return err
	}
	fmt.Printf("wrote %d images into the OCI layout %s\n", len(images), out)
	if registry == "" {
		return nil
	}
	for ref, idx := range images {
		to := strings.TrimSuffix(registry, "/") + "/" + ref
		if err := ociimage.Push(ctx, to, idx); err != nil {
			return err
		}
		fmt.Println("pushed", to)
	}
	return nil
}

// compile builds every target's binary for platform into one folder, static and stamped.
func compile(ctx context.Context, platform string, st stamp, buildDir string) (string, error) {
	goos, goarch, ok := strings.Cut(platform, "/")
	if !ok {
		return "", fmt.Errorf("platform %q: want os/arch, for example linux/arm64", platform)
	}
	dir := filepath.Join(buildDir, goos+"_"+goarch)
	args := []string{"build", "-trimpath", "-o", dir + "/", "-ldflags",
		fmt.Sprintf("-s -w -X %s.Version=%s -X %s.Commit=%s", versionPkg, st.version, versionPkg, st.commit)}
	for _, t := range targets {
		args = append(args, t.pkg)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	fmt.Printf("compiling for %s\n", platform)
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build for %s: %w", platform, err)
	}
	return dir, nil
}

// describe prints each platform's image: its digest and compressed size.
func describe(ref string, idx v1.ImageIndex) error {
	m, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range m.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return err
		}
		layers, err := img.Layers()
		if err != nil {
			return err
		}
		var size int64
		for _, l := range layers {
			n, err := l.Size()
			if err != nil {
				return err
			}
			size += n
		}
		fmt.Printf("%-28s %s/%-6s %s  %s MiB compressed\n", ref, d.Platform.OS, d.Platform.Architecture,
			d.Digest.String()[:19], strconv.FormatFloat(float64(size)/(1<<20), 'f', 1, 64))
	}
	return nil
}
