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

package podprocess

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
)

// Errors of getting a container's image; the pod's status names them as kubelet does.
var (
	// ErrImagePull: the image could not be pulled (unreachable, unknown, refused).
	ErrImagePull = errors.New("ErrImagePull")
	// ErrInvalidImageName: the image reference does not parse.
	ErrInvalidImageName = errors.New("InvalidImageName")
	// ErrImageNeverPull: the policy is Never and the image is not on the node.
	ErrImageNeverPull = errors.New("ErrImageNeverPull")
)

// pullTimeout bounds one pull, so that a registry that hangs does not hold the others.
const pullTimeout = 5 * time.Minute

// pulledImage is an image unpacked on this node.
type pulledImage struct {
	digest string
	rootfs string
	config v1.Config
}

// imageRef is where an image is pulled from: the reference the pod names, through the
// mirror when there is one.
func (k *Kubelet) imageRef(image string) (name.Reference, error) {
	if k.cfg.Mirror == "" {
		ref, err := name.ParseReference(image)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrInvalidImageName, image, err)
		}
		return ref, nil
	}
	return MirrorRef(k.cfg.Mirror, image)
}

// MirrorRef is where a mirror (host:port) holds image: the same repository and tag or
// digest, on the mirror (strategy-runner:v1 is mirror/library/strategy-runner:v1,
// ghcr.io/a/b@sha256:… is mirror/a/b@sha256:…).
func MirrorRef(mirror, image string) (name.Reference, error) {
	ref, err := name.ParseReference(image)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrInvalidImageName, image, err)
	}
	repo := mirror + "/" + ref.Context().RepositoryStr()
	if d, ok := ref.(name.Digest); ok {
		return name.NewDigest(repo + "@" + d.DigestStr())
	}
	return name.NewTag(repo + ":" + ref.Identifier())
}

// pull returns the container's image unpacked on this node, pulling it as the container's
// pull policy says: Never uses only what is here, IfNotPresent pulls what is not, Always
// asks the registry for the reference's digest each time (and unpacks only a new one).
func (k *Kubelet) pull(ctx context.Context, c corev1.Container) (pulledImage, error) {
	ref, err := k.imageRef(c.Image)
	if err != nil {
		return pulledImage{}, err
	}
	// One pull at a time (two pods of one image unpack it once); the map has a lock of its
	// own, so that status reports do not wait for a pull.
	k.pullMu.Lock()
	defer k.pullMu.Unlock()
	k.imagesMu.Lock()
	have, ok := k.images[c.Image]
	k.imagesMu.Unlock()
	policy := c.ImagePullPolicy
	if policy == "" {
		policy = corev1.PullIfNotPresent
		if _, isTag := ref.(name.Tag); isTag && ref.Identifier() == "latest" {
			policy = corev1.PullAlways
		}
	}
	switch {
	case ok && policy != corev1.PullAlways:
		return have, nil
	case policy == corev1.PullNever:
		return pulledImage{}, fmt.Errorf("%w: image %s is not present on node %s and the pull policy is Never",
			ErrImageNeverPull, c.Image, k.cfg.NodeName)
	}
	platform := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	ctx, cancel := context.WithTimeout(ctx, pullTimeout)
	defer cancel()
	img, err := remote.Image(ref, remote.WithContext(ctx), remote.WithPlatform(platform))
	if err != nil {
		return pulledImage{}, fmt.Errorf("%w: pulling %s (from %s) for %s: %w", ErrImagePull, c.Image, ref, platform.String(), err)
	}
	digest, err := img.Digest()
	if err != nil {
		return pulledImage{}, fmt.Errorf("%w: %s: %w", ErrImagePull, c.Image, err)
	}
	if ok && have.digest == digest.String() {
		return have, nil
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return pulledImage{}, fmt.Errorf("%w: %s: config: %w", ErrImagePull, c.Image, err)
	}
	rootfs := filepath.Join(k.cfg.Dir, "images", digest.Hex)
	if _, err := os.Stat(rootfs); err != nil {
		if err := unpack(img, rootfs); err != nil {
			return pulledImage{}, fmt.Errorf("%w: unpacking %s: %w", ErrImagePull, c.Image, err)
		}
		k.cfg.Log.Info("Pulled an image", "image", c.Image, "from", ref.String(), "digest", digest.String())
	}
	p := pulledImage{digest: digest.String(), rootfs: rootfs, config: cf.Config}
	k.imagesMu.Lock()
	k.images[c.Image] = p
	k.imagesMu.Unlock()
	return p, nil
}

// imageID is the pulled image's digest, as a container status reports it; empty before
// the image is pulled.
func (k *Kubelet) imageID(image string) string {
	k.imagesMu.Lock()
	defer k.imagesMu.Unlock()
	if p, ok := k.images[image]; ok {
		return p.digest
	}
	return ""
}

// unpack writes the image's file system (its layers applied in order, whiteouts
// honoured) into dir, through a temporary folder so that dir is whole or absent. Every
// entry is written through an os.Root of the folder, so no name, symbolic link or hard link
// in a layer reaches outside it.
func unpack(img v1.Image, dir string) error {
	tmp := dir + ".unpacking"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(tmp)
	if err != nil {
		return err
	}
	defer func() { _ = root.Close() }()
	rc := mutate.Extract(img)
	defer func() { _ = rc.Close() }()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := writeEntry(root, h, tr); err != nil {
			return fmt.Errorf("layer entry %q: %w", h.Name, err)
		}
	}
	return os.Rename(tmp, dir)
}

func writeEntry(root *os.Root, h *tar.Header, r io.Reader) error {
	rel := filepath.Clean(strings.TrimPrefix(h.Name, "/"))
	if rel == "." {
		return nil
	}
	if !filepath.IsLocal(rel) {
		return errors.New("leaves the image's root")
	}
	if err := root.MkdirAll(filepath.Dir(rel), 0o755); err != nil {
		return err
	}
	mode := os.FileMode(h.Mode).Perm()
	if h.Mode&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	switch h.Typeflag {
	case tar.TypeDir:
		if err := root.MkdirAll(rel, 0o755); err != nil {
			return err
		}
		// Kept writable by its owner, this kubelet, so that later entries can go in.
		return root.Chmod(rel, mode|0o700)
	case tar.TypeReg:
		f, err := root.OpenFile(rel, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			_ = f.Close()
			return err
		}
		return f.Close()
	case tar.TypeSymlink:
		return root.Symlink(h.Linkname, rel)
	case tar.TypeLink:
		return root.Link(filepath.Clean(strings.TrimPrefix(h.Linkname, "/")), rel)
	default:
		return nil // devices and fifos have no place in a process's image
	}
}
