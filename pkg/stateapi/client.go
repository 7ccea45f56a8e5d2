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
// Package stateapi is the HTTP API the runner serves one strategy's crash state over, so that a process in any
// language keeps it in the strategy's store, under the runner's Lease and fencing token
// (runner exec). Each backtest-kit kind is a store per context, as backtest-kit keeps it:
//
//	GET    /v1/{kind}/?{context}        the keys, sorted as backtest-kit sorts them
//	GET    /v1/{kind}/{key}?{context}   the value; its revision in the ETag
//	PUT    /v1/{kind}/{key}?{context}   store the JSON body; If-Match: "<revision>" or
//	                                    If-None-Match: * make it conditional
//	DELETE /v1/{kind}/{key}?{context}   remove it; If-Match makes it conditional
//
// kind is signal, schedule, strategy, risk, partial or breakeven; the context is named by
// backtest-kit's parts as query parameters: symbol, strategyName and exchangeName (risk:
// riskName and exchangeName). A strategy's server serves its own contexts only (its
// strategy and exchange, its symbols, and the risk profiles it was given: a Strategy's
// spec.riskProfiles, by default one named after the strategy). A PUT may add when=<Unix
// milliseconds>, backtest-kit's when, which a database backend keeps (Put sends the time
// its context carries: driver.WithWriteTime).
//
// Answers: 200 with the value or the keys; 204 for a write (201 for one made with
// If-None-Match: *) with the new revision in its ETag, and for a removal.
// Errors are JSON {"error": "...", "code": "..."} naming the problem: 400 (bad_request,
// invalid_key, invalid_value — a signal row that breaks backtest-kit's rules among them),
// 403 (foreign_context; draining: a new signal on a symbol the runner drains), 404
// (unknown_kind, not_found), 409 (fenced: a newer runner holds the strategy), 412
// (conflict: the revision moved), 413 (too_large), 503 (unavailable: the store could not
// be reached, or whether a write landed is unknown). A refused request changes nothing.
//
// Client speaks it from Go, with the errors of package pkg/store.
package stateapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/strategyops/strategy-operator/pkg/store"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// SocketEnv names the environment variable in which runner exec gives its process the
// path of the API's Unix socket.
const SocketEnv = "STRATEGYOPS_STATE_SOCKET"

// ErrForeignContext: the context is not one of the strategy the runner serves.
var ErrForeignContext = errors.New("not a context of this strategy")

// ErrDraining: the write would open a new signal on a symbol the runner drains.
var ErrDraining = errors.New("the symbol is draining")

// UnixClient is an HTTP client whose every request goes to the Unix socket at path (runner
// exec's, in STRATEGYOPS_STATE_SOCKET): any host in a request's URL will do.
func UnixClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
}

// Context names one store of a kind, as backtest-kit's parts do: Symbol, StrategyName and
// ExchangeName, or for risk RiskName and ExchangeName.
type Context struct {
	Symbol, StrategyName, ExchangeName, RiskName string
}

func (c Context) query() string {
	q := url.Values{}
	for k, v := range map[string]string{"symbol": c.Symbol, "strategyName": c.StrategyName,
		"exchangeName": c.ExchangeName, "riskName": c.RiskName} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q.Encode()
}

// Client reads and writes a strategy's state through the API.
type Client struct {
	http *http.Client
	base string
}

// NewClient is a Client of the API on the Unix socket at path.
func NewClient(path string) *Client { return &Client{http: UnixClient(path), base: "http://state"} }

// FromEnv is the Client of the API runner exec serves its process (SocketEnv).
func FromEnv() (*Client, error) {
	path := os.Getenv(SocketEnv)
	if path == "" {
		return nil, fmt.Errorf("%s is not set: run the process under runner exec", SocketEnv)
	}
	return NewClient(path), nil
}

// Keys lists the keys of the store of kind at c, sorted as backtest-kit sorts them.
func (cl *Client) Keys(ctx context.Context, kind string, c Context) ([]string, error) {
	var out struct {
		Keys []string `json:"keys"`
	}
	body, _, err := cl.do(ctx, http.MethodGet, kind, "", c, nil, driver.Precondition{})
	if err == nil {
		err = json.Unmarshal(body, &out)
	}
	return out.Keys, err
}

// Get reads the value at key of the store of kind at c, with its revision (ErrNotFound
// when there is none).
func (cl *Client) Get(ctx context.Context, kind, key string, c Context) (json.RawMessage, store.Revision, error) {
	return cl.do(ctx, http.MethodGet, kind, key, c, nil, driver.Precondition{})
}

// Put stores value (JSON) at key, under the precondition if any, and returns the new
// revision (ErrConflict when the key moved, ErrFenced when a newer runner holds the
// strategy, ErrInvalidValue for a signal row that breaks backtest-kit's rules). The time
// ctx carries for writes (driver.WithWriteTime: backtest-kit's when) goes with it, for a
// database backend to keep.
func (cl *Client) Put(ctx context.Context, kind, key string, c Context, value json.RawMessage,
	pre driver.Precondition) (store.Revision, error) {
	_, rev, err := cl.do(ctx, http.MethodPut, kind, key, c, value, pre)
	return rev, err
}

// Delete removes the value at key, under the precondition if any.
func (cl *Client) Delete(ctx context.Context, kind, key string, c Context, pre driver.Precondition) error {
	_, _, err := cl.do(ctx, http.MethodDelete, kind, key, c, nil, pre)
	return err
}

func (cl *Client) do(ctx context.Context, method, kind, key string, c Context, body []byte,
	pre driver.Precondition) (json.RawMessage, store.Revision, error) {
	u := cl.base + "/v1/" + url.PathEscape(kind) + "/" + url.PathEscape(key) + "?" + c.query()
	if when, ok := driver.WriteTimeOf(ctx); ok && method == http.MethodPut {
		u += "&when=" + strconv.FormatInt(when.UnixMilli(), 10)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, "", err
	}
	switch {
	case pre.IfAbsent:
		req.Header.Set("If-None-Match", "*")
	case pre.IfRevision != "":
		req.Header.Set("If-Match", `"`+string(pre.IfRevision)+`"`)
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		if method != http.MethodGet {
			err = fmt.Errorf("%w: %w", store.ErrUnknownOutcome, err) // the write may have landed
		}
		return nil, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	rev := store.Revision(strings.Trim(resp.Header.Get("ETag"), `"`))
	if resp.StatusCode < 300 {
		return raw, rev, nil
	}
	var e struct{ Error, Code string }
	_ = json.Unmarshal(raw, &e)
	return nil, "", fmt.Errorf("%s %s %s: %w", method, kind, key, codeErr(e.Code, e.Error))
}

// codeErr is the error an answer's code stands for, with the server's message.
func codeErr(code, msg string) error {
	sentinel := map[string]error{
		"not_found": store.ErrNotFound, "conflict": store.ErrConflict, "fenced": store.ErrFenced,
		"invalid_key": store.ErrInvalidKey, "invalid_value": store.ErrInvalidValue, "too_large": store.ErrTooLarge,
		"unavailable": store.ErrUnknownOutcome, "foreign_context": ErrForeignContext, "draining": ErrDraining,
	}[code]
	if sentinel == nil {
		return fmt.Errorf("%s (%s)", msg, code)
	}
	return fmt.Errorf("%w: %s", sentinel, msg)
}
