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
	"bytes"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/strategyops/strategy-operator/internal/ociimage"
)

func TestMirrorKeepsRepositoryTagAndDigest(t *testing.T) {
	for image, want := range map[string]string{
		"strategy-runner:dev":                       "127.0.0.1:5000/library/strategy-runner:dev",
		"strategy-runner":                           "127.0.0.1:5000/library/strategy-runner:latest",
		"ghcr.io/strategyops/strategy-runner:v1":    "127.0.0.1:5000/strategyops/strategy-runner:v1",
		"ghcr.io/strategyops/strategy-runner@" + dg: "127.0.0.1:5000/strategyops/strategy-runner@" + dg,
	} {
		ref, err := MirrorRef("127.0.0.1:5000", image)
		if err != nil || ref.String() != want {
			t.Errorf("%s: got %v, %v; want %s", image, ref, err, want)
		}
	}
	if _, err := MirrorRef("127.0.0.1:5000", "Bad Name"); !errors.Is(err, ErrInvalidImageName) {
		t.Errorf("an invalid reference: got %v, want ErrInvalidImageName", err)
	}
}

const dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestExpandAsKubelet(t *testing.T) {
	vars := map[string]string{"POD_IP": "127.0.0.7", "EMPTY": ""}
	for in, want := range map[string]string{
		"--metrics-bind-address=$(POD_IP):8080": "--metrics-bind-address=127.0.0.7:8080",
		"$(POD_IP)$(EMPTY)/x":                   "127.0.0.7/x",
		"$$(POD_IP)":                            "$(POD_IP)",
		"$(UNDEFINED) stays":                    "$(UNDEFINED) stays",
		"price $5 and $(":                       "price $5 and $(",
		"no references":                         "no references",
	} {
		if got := Expand(in, vars); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

func TestCommandLineAsKubelet(t *testing.T) {
	img := v1.Config{Entrypoint: []string{"/usr/local/bin/runner"}, Cmd: []string{"--help"}}
	for _, tc := range []struct {
		c    corev1.Container
		want string
	}{
		{corev1.Container{}, "/usr/local/bin/runner --help"},
		{corev1.Container{Args: []string{"--speed=60"}}, "/usr/local/bin/runner --speed=60"},
		{corev1.Container{Command: []string{"/manager"}}, "/manager"},
		{corev1.Container{Command: []string{"/manager"}, Args: []string{"--leader-elect"}}, "/manager --leader-elect"},
	} {
		if got := strings.Join(commandLine(tc.c, img), " "); got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.c, got, tc.want)
		}
	}
}

func TestRunAsNonRootIsChecked(t *testing.T) {
	nonRoot := &corev1.Pod{Spec: corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: new(true)}}}
	c := corev1.Container{}
	for user, ok := range map[string]bool{"65532:65532": true, "1000": true, "": false, "0": false, "root": false, "nonroot": false} {
		err := checkNonRoot(nonRoot, c, user)
		if (err == nil) != ok || (err != nil && !errors.Is(err, ErrRunAsRoot)) {
			t.Errorf("image user %q: got %v, want allowed %v", user, err, ok)
		}
	}
	if err := checkNonRoot(&corev1.Pod{}, c, ""); err != nil {
		t.Errorf("without runAsNonRoot, root is allowed: got %v", err)
	}
	c.SecurityContext = &corev1.SecurityContext{RunAsUser: ptr.To[int64](1000)}
	if err := checkNonRoot(nonRoot, c, "root"); err != nil {
		t.Errorf("the container's runAsUser 1000 overrides the image's root: got %v", err)
	}
}

func TestPullUnpacksAndFollowsThePolicy(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	bin := filepath.Join(t.TempDir(), "runner")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	build := func(version string) v1.ImageIndex {
		idx, err := ociimage.Build(ociimage.Spec{Ref: "strategy-runner:dev", Entrypoint: "/usr/local/bin/runner",
			Binaries: map[string]string{"linux/" + runtime.GOARCH: bin}, CACertificates: []byte("ca"), Version: version})
		if err != nil {
			t.Fatal(err)
		}
		return idx
	}
	push := func(idx v1.ImageIndex) {
		ref, err := MirrorRef(host, "strategy-runner:dev")
		if err == nil {
			err = remote.WriteIndex(ref, idx, remote.WithContext(t.Context()))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	push(build("v1"))
	k := &Kubelet{cfg: Config{Mirror: host, Dir: t.TempDir(), NodeName: "local", Log: slog.New(slog.DiscardHandler)},
		images: map[string]pulledImage{}}

	c := corev1.Container{Image: "strategy-runner:dev"}
	first, err := k.pull(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(first.rootfs, "usr/local/bin/runner"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("unpacked entrypoint: %v, %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(first.rootfs, "tmp")); err != nil || fi.Mode()&os.ModeSticky == 0 {
		t.Errorf("unpacked /tmp: %v, %v; want sticky", fi, err)
	}
	if first.config.User != "65532:65532" || k.imageID(c.Image) != first.digest {
		t.Errorf("config user %q, image ID %q (digest %s)", first.config.User, k.imageID(c.Image), first.digest)
	}

	push(build("v2"))
	if again, err := k.pull(t.Context(), c); err != nil || again.digest != first.digest {
		t.Errorf("IfNotPresent with the image present: got %s, %v; want the first %s unchanged", again.digest, err, first.digest)
	}
	c.ImagePullPolicy = corev1.PullAlways
	if newer, err := k.pull(t.Context(), c); err != nil || newer.digest == first.digest {
		t.Errorf("Always after a push: got %s, %v; want a new digest", newer.digest, err)
	}

	for _, tc := range []struct {
		c    corev1.Container
		want error
	}{
		{corev1.Container{Image: "missing:dev"}, ErrImagePull},
		{corev1.Container{Image: "missing:dev", ImagePullPolicy: corev1.PullNever}, ErrImageNeverPull},
		{corev1.Container{Image: "UPPER:case"}, ErrInvalidImageName},
	} {
		_, err := k.pull(t.Context(), tc.c)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.c.Image) || waitingReason(err) != tc.want.Error() {
			t.Errorf("%s (%s): got %v, want %v naming the image", tc.c.Image, tc.c.ImagePullPolicy, err, tc.want)
		}
	}
}

func TestLookPathPrefersTheImage(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "usr/local/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/local/bin/sh"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	m := mounts{{at: "/", local: root}}
	if got, err := lookPath("sh", "/usr/local/bin:/bin", m); err != nil || got != filepath.Join(root, "usr/local/bin/sh") {
		t.Errorf("a command the image has: got %q, %v", got, err)
	}
	if got, err := lookPath("/usr/local/bin/sh", "", m); err != nil || got != filepath.Join(root, "usr/local/bin/sh") {
		t.Errorf("an absolute command: got %q, %v", got, err)
	}
	if _, err := lookPath("/bin/nothing-here", "", m); err == nil || !strings.Contains(err.Error(), "/bin/nothing-here") {
		t.Errorf("an absolute command the image lacks: got %v", err)
	}
}

func TestMountPathsBecomeLocalFolders(t *testing.T) {
	m := mounts{{at: "/data/cache", local: "/tmp/c"}, {at: "/data", local: "/tmp/d"}}
	for in, want := range map[string]string{
		"/data":               "/tmp/d",
		"--data-dir=/data":    "--data-dir=/tmp/d",
		"DATA_DIR=/data/x":    "DATA_DIR=/tmp/d/x",
		"/data/cache/y":       "/tmp/c/y",
		"/database":           "/database",
		"/data/":              "/tmp/d",
		"--market=simulated":  "--market=simulated",
		"--data-dir=/dataset": "--data-dir=/dataset",
	} {
		if got := m.translate(in); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

func TestPodFields(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "n", Labels: map[string]string{"app": "x"}}}
	for path, want := range map[string]string{"metadata.name": "p", "metadata.namespace": "n", "metadata.labels['app']": "x"} {
		if got, err := podField(pod, path); err != nil || got != want {
			t.Errorf("%s: got %q, %v", path, got, err)
		}
	}
	if _, err := podField(pod, "status.phase"); err == nil || !strings.Contains(err.Error(), "status.phase") {
		t.Errorf("an unsupported field: got %v", err)
	}
}

func TestPodIPsComeFromThePodRange(t *testing.T) {
	k := &Kubelet{ips: map[types.UID]string{}, podCIDR: netip.MustParsePrefix("127.9.8.0/24")}
	a, b := k.podIP("a"), k.podIP("b")
	if a != "127.9.8.2" || b != "127.9.8.3" || k.podIP("a") != a {
		t.Errorf("got %s and %s (again %s), want 127.9.8.2 and 127.9.8.3, stable", a, b, k.podIP("a"))
	}
	k.releaseIP("a")
	if c := k.podIP("c"); c != a {
		t.Errorf("after a's release c got %s, want a's %s again", c, a)
	}
	if _, err := New(Config{REST: &rest.Config{Host: "https://127.0.0.1:1"}, PodCIDR: "10.0.0.0/24"}); err == nil ||
		!strings.Contains(err.Error(), "10.0.0.0/24") {
		t.Errorf("a range outside the loopback: got %v, want an error naming it", err)
	}
}

// evilImage is an image of one layer whose entries try to write outside the image's folder.
func evilImage(t *testing.T, entries func(tw *tar.Writer)) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	entries(tw)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestUnpackStaysInTheImagesFolder(t *testing.T) {
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	if err := os.WriteFile(victim, []byte("host file"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, entries := range map[string]func(tw *tar.Writer){
		"a file through a symbolic link to a host folder": func(tw *tar.Writer) {
			_ = tw.WriteHeader(&tar.Header{Name: "/a", Typeflag: tar.TypeSymlink, Linkname: outside, Mode: 0o777})
			_ = tw.WriteHeader(&tar.Header{Name: "a/victim", Typeflag: tar.TypeReg, Mode: 0o644, Size: 4})
			_, _ = tw.Write([]byte("evil"))
		},
		"a hard link to a host file through a symbolic link": func(tw *tar.Writer) {
			_ = tw.WriteHeader(&tar.Header{Name: "/b", Typeflag: tar.TypeSymlink, Linkname: outside, Mode: 0o777})
			_ = tw.WriteHeader(&tar.Header{Name: "c", Typeflag: tar.TypeLink, Linkname: "b/victim"})
		},
		"a name with ..": func(tw *tar.Writer) {
			_ = tw.WriteHeader(&tar.Header{Name: "../../victim", Typeflag: tar.TypeReg, Mode: 0o644, Size: 4})
			_, _ = tw.Write([]byte("evil"))
		},
	} {
		err := unpack(evilImage(t, entries), filepath.Join(t.TempDir(), "rootfs"))
		if err == nil && strings.Contains(name, "symbolic link") {
			t.Errorf("%s: unpacked without an error", name)
		}
		if data, _ := os.ReadFile(victim); string(data) != "host file" {
			t.Fatalf("%s: the host file now holds %q", name, data)
		}
	}
}
