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

package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/strategyops/strategy-operator/internal/ociimage"
	"github.com/strategyops/strategy-operator/internal/podprocess"
)

// NodeBotImage is the name of the exec sample's image. A real one holds a Node.js runtime
// and the runner at /usr/local/bin/runner; the local registry serves the runner image
// under this name too, and the process kubelet finds node on this machine's PATH.
const NodeBotImage = "node-bot"

// RunnerImage is the name of the runner image.
const RunnerImage = "strategy-runner"

// Registry is an image registry served by this process on a loopback port, holding the
// images of an OCI layout (make images writes bin/images).
type Registry struct {
	// Host is the registry's host:port; the local kubelet pulls every image from it.
	Host   string
	server *http.Server
	// Images are the references it serves, as pods name them (strategy-runner:dev).
	Images []string
}

// StartRegistry serves a registry (blobs kept under dir) with every image of the OCI
// layout at layoutDir, plus the runner image as node-bot for the exec sample, each under
// the repository a pod's reference maps to through podprocess's mirror.
func StartRegistry(ctx context.Context, layoutDir, dir string) (*Registry, error) {
	images, err := ociimage.ReadLayout(layoutDir)
	if err != nil {
		return nil, err
	}
	blobs := filepath.Join(dir, "registry")
	if err := os.MkdirAll(blobs, 0o700); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Registry{Host: ln.Addr().String(), server: &http.Server{
		Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)),
			registry.WithBlobHandler(registry.NewDiskBlobHandler(blobs))),
		ReadHeaderTimeout: 10 * time.Second,
	}}
	go func() { _ = r.server.Serve(ln) }()
	for ref, idx := range images {
		refs := []string{ref}
		if name, tag, _ := strings.Cut(ref, ":"); name == RunnerImage {
			refs = append(refs, NodeBotImage+":"+tag)
		}
		for _, as := range refs {
			to, err := podprocess.MirrorRef(r.Host, as)
			if err == nil {
				err = remote.WriteIndex(to, idx, remote.WithContext(ctx))
			}
			if err != nil {
				_ = r.Stop()
				return nil, fmt.Errorf("pushing %s to the local registry: %w", as, err)
			}
			r.Images = append(r.Images, as)
		}
	}
	slices.Sort(r.Images)
	return r, nil
}

// Stop stops serving.
func (r *Registry) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.server.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
