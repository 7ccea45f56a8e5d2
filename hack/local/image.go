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

package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/strategyops/strategy-operator/internal/names"
	"github.com/strategyops/strategy-operator/internal/ociimage"
	"github.com/strategyops/strategy-operator/internal/podprocess"
)

// imageUsage is the help of `run-local image`.
const imageUsage = `Usage: run-local image --registry HOST:PORT --image NAME:TAG [--dir FOLDER] [--runner BINARY]

Makes an image of the runner at %s (or, with --runner, a program of yours built with the
Go SDK, which is a runner and the image's entrypoint) and of FOLDER at /app (your bot, its
packages installed), working folder /tmp (the one writable folder of a strategy's pod),
and pushes it to the registry of a running make run-local (it prints "registry HOST:PORT
holds …"), where its kubelet pulls a Strategy's spec.image NAME:TAG from. No container
engine is needed: the kubelet runs pods as local processes, so the runtime (node, python)
is this machine's.

`

// imageCommand is `run-local image`: it builds the image of a user's folder and pushes it
// to run-local's registry.
func imageCommand(args []string) error {
	fs := flag.NewFlagSet("run-local image", flag.ContinueOnError)
	fs.Usage = func() {
		_, _ = fmt.Fprintf(fs.Output(), imageUsage, names.RunnerPath)
		fs.PrintDefaults()
	}
	registry := fs.String("registry", "", "host:port of run-local's registry")
	dir := fs.String("dir", "", "folder to put at /app (none when empty)")
	ref := fs.String("image", "", "name:tag, as the Strategy's spec.image names it")
	runner := fs.String("runner", "bin/runner", "static binary to put at "+names.RunnerPath+
		": the runner (make build), or your Go SDK program")
	ca := fs.String("ca-certificates", "/etc/ssl/certs/ca-certificates.crt", "PEM bundle to install in the image")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	for _, f := range []struct{ name, value string }{{"registry", *registry}, {"image", *ref}} {
		if f.value == "" {
			fs.Usage()
			return fmt.Errorf("%w: --%s is required", errUsage, f.name)
		}
	}
	if fi, err := os.Stat(*dir); *dir != "" && (err != nil || !fi.IsDir()) {
		return fmt.Errorf("--dir %s: not a folder (%v)", *dir, err)
	}
	if fi, err := os.Stat(*runner); err != nil || fi.IsDir() {
		return fmt.Errorf("--runner %s: not a file (%v)", *runner, err)
	}
	certs, err := os.ReadFile(*ca)
	if err != nil {
		return fmt.Errorf("--ca-certificates: %w", err)
	}
	to, err := podprocess.MirrorRef(*registry, *ref)
	if err != nil {
		return fmt.Errorf("--image: %w", err)
	}
	idx, err := ociimage.Build(ociimage.Spec{Ref: *ref, Entrypoint: names.RunnerPath, CACertificates: certs,
		Binaries: map[string]string{"linux/" + runtime.GOARCH: *runner}, App: *dir, WorkingDir: "/tmp",
		Version: "dev", Created: time.Now().UTC()})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := ociimage.Push(ctx, to.String(), idx); err != nil {
		return fmt.Errorf("%w (is make run-local running, with its registry at %s?)", err, *registry)
	}
	fmt.Printf("pushed %s as %s: a Strategy's spec.image %s runs it\n", cmp.Or(*dir, *runner), to, *ref)
	return nil
}

// errUsage: the command line is wrong; the usage was printed.
var errUsage = errors.New("usage")
