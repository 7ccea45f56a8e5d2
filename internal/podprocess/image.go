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
	k.imagesMu.Lock()
	defer k.imagesMu.Unlock()
	have, ok := k.images[c.Image]
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
	k.images[c.Image] = p
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
// honoured) into dir, through a temporary folder so that dir is whole or absent.
func unpack(img v1.Image, dir string) error {
	tmp := dir + ".unpacking"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
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
		if err := writeEntry(tmp, h, tr); err != nil {
			return err
		}
	}
	return os.Rename(tmp, dir)
}

func writeEntry(root string, h *tar.Header, r io.Reader) error {
	rel := filepath.Clean(strings.TrimPrefix(h.Name, "/"))
	if rel == "." {
		return nil
	}
	if !filepath.IsLocal(rel) {
		return fmt.Errorf("layer entry %q leaves the image's root", h.Name)
	}
	path := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	mode := os.FileMode(h.Mode).Perm()
	if h.Mode&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	switch h.Typeflag {
	case tar.TypeDir:
		if err := os.MkdirAll(path, 0o755); err != nil {
			return err
		}
		return os.Chmod(path, mode)
	case tar.TypeReg:
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			_ = f.Close()
			return err
		}
		return f.Close()
	case tar.TypeSymlink:
		return os.Symlink(h.Linkname, path)
	case tar.TypeLink:
		target := filepath.Clean(strings.TrimPrefix(h.Linkname, "/"))
		if !filepath.IsLocal(target) {
			return fmt.Errorf("layer entry %q links outside the image's root", h.Name)
		}
		return os.Link(filepath.Join(root, target), path)
	default:
		return nil // devices and fifos have no place in a process's image
	}
}
