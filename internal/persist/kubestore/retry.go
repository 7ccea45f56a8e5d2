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
	"context"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// Transient reports whether err may go away by itself, from an allow-list: the API
// server overloaded or timing out (429, 5xx, a timeout status), or no answer at all (the
// connection refused, reset or cut short, a network timeout). Anything else — a corrupt
// bookkeeping annotation, another context's object, an error this list does not know — is
// reported at once rather than retried until the caller gives up.
func Transient(err error) bool {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		code := status.Status().Code
		return code == http.StatusTooManyRequests || code >= http.StatusInternalServerError ||
			apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err)
	}
	if utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) ||
		utilnet.IsHTTP2ConnectionLost(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) {
		return true
	}
	// HTTP/2's own ways of losing a request, which it reports only as text: the server
	// going away (GOAWAY, a restart or rollout), a stream refused or reset, an idle
	// connection closed under the request.
	msg := err.Error()
	for _, lost := range []string{"GOAWAY", "REFUSED_STREAM", "stream error:", "server closed idle connection",
		"http2: client connection force closed"} {
		if strings.Contains(msg, lost) {
			return true
		}
	}
	if _, ok := errors.AsType[*net.OpError](err); ok {
		return true // the connection failed: dial, read or write
	}
	netErr, ok := errors.AsType[net.Error](err)
	return ok && netErr.Timeout()
}

// backoff waits between attempts, with jitter: after a lost compare-and-swap long enough
// for the winner's next round trip, so that contenders take turns instead of all
// re-reading at once; after errors longer, up to 2 s.
type backoff struct{ conflicts, failures int }

func (b *backoff) wait(ctx context.Context, conflict bool) {
	var d time.Duration
	if conflict {
		b.conflicts++
		d = min(conflictBackoff<<min(b.conflicts-1, 3), 8*conflictBackoff)
	} else {
		b.failures++
		d = min(50*time.Millisecond<<min(b.failures, 6), 2*time.Second)
	}
	d = d/2 + time.Duration(mrand.Int64N(int64(d)/2+1))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
