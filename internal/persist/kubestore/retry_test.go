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

package kubestore

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// TestTransientIsAnAllowList: only an overloaded or unreachable API server is waited
// out; an error the list does not know is reported at once.
func TestTransientIsAnAllowList(t *testing.T) {
	cm := schema.GroupResource{Resource: "configmaps"}
	refused := &url.Error{Op: "Put", URL: "https://127.0.0.1:6443", Err: &net.OpError{Op: "dial", Net: "tcp",
		Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"429", apierrors.NewTooManyRequests("slow down", 1), true},
		{"503", apierrors.NewServiceUnavailable("down"), true},
		{"500", apierrors.NewInternalError(errors.New("boom")), true},
		{"server timeout", apierrors.NewServerTimeout(cm, "update", 1), true},
		{"connection refused", refused, true},
		{"connection reset", fmt.Errorf("update: %w", syscall.ECONNRESET), true},
		{"EOF", fmt.Errorf("read: %w", io.EOF), true},
		{"broken pipe", &url.Error{Op: "Put", URL: "https://127.0.0.1:6443", Err: &net.OpError{Op: "write", Net: "tcp",
			Err: os.NewSyscallError("write", syscall.EPIPE)}}, true},
		{"client timeout", &url.Error{Op: "Get", URL: "https://127.0.0.1:6443", Err: timeoutErr{}}, true},
		{"url error, not a timeout", &url.Error{Op: "Get", URL: "https://127.0.0.1:6443", Err: errors.New("x509")}, false},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"409", apierrors.NewConflict(cm, "x", errors.New("changed")), false},
		{"403", apierrors.NewForbidden(cm, "x", errors.New("no")), false},
		{"422", apierrors.NewInvalid(schema.GroupKind{Kind: "ConfigMap"}, "x", nil), false},
		{"corrupt bookkeeping", fmt.Errorf("%w: entries: bad json", errCorrupt), false},
		{"not owned", fmt.Errorf("configmap x: %w", driver.ErrNotOwned), false},
		{"unknown", errors.New("something new"), false},
		{"http2 connection lost", fmt.Errorf("Put: %w", errors.New("http2: client connection lost")), true},
		{"http2 GOAWAY", &url.Error{Op: "Put", URL: "https://127.0.0.1:6443", Err: errors.New(
			"http2: Transport received Server's graceful shutdown GOAWAY; some request body already written")}, true},
		{"http2 stream refused", errors.New("stream error: stream ID 7; REFUSED_STREAM"), true},
		{"idle connection closed", errors.New("http: server closed idle connection"), true},
	} {
		if got := Transient(c.err); got != c.want {
			t.Errorf("%s: Transient(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "timeout awaiting response headers" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }
