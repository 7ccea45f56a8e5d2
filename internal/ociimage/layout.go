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

package ociimage

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// ErrNoImages: an OCI layout folder holds no named image.
var ErrNoImages = errors.New("no named images in the OCI layout")

// WriteLayout writes the image indexes, keyed by name:tag, into a new OCI image layout
// at dir (what was there is replaced).
func WriteLayout(dir string, images map[string]v1.ImageIndex) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	for ref, idx := range images {
		if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{RefNameAnnotation: ref})); err != nil {
			return fmt.Errorf("writing %s into %s: %w", ref, dir, err)
		}
	}
	return nil
}

// ReadLayout returns the named image indexes of the OCI image layout at dir.
func ReadLayout(dir string) (map[string]v1.ImageIndex, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the OCI layout %s (run 'make images'): %w", dir, err)
	}
	root, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	m, err := root.IndexManifest()
	if err != nil {
		return nil, err
	}
	out := map[string]v1.ImageIndex{}
	for _, d := range m.Manifests {
		ref := d.Annotations[RefNameAnnotation]
		if ref == "" {
			continue
		}
		idx, err := root.ImageIndex(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("image %s in %s: %w", ref, dir, err)
		}
		out[ref] = idx
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w %s", ErrNoImages, dir)
	}
	return out, nil
}

// Push writes the index to the registry under ref (registry/repository:tag), with the
// credentials of the local Docker configuration when the registry needs them.
func Push(ctx context.Context, ref string, idx v1.ImageIndex) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return fmt.Errorf("image reference %q: %w", ref, err)
	}
	if err := remote.WriteIndex(r, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	return nil
}
