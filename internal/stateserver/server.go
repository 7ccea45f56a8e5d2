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

// Package stateserver serves one strategy's crash state over HTTP for runner exec, under
// the runner's Lease and fencing token: the protocol of package pkg/stateapi, whose Client
// speaks it.
package stateserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	persist "github.com/strategyops/strategy-operator/pkg/store"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// DefaultMaxBody is the largest request body a Server accepts when Config leaves it 0.
const DefaultMaxBody = 1 << 20

// Config says whose state a Server serves, and where it lives.
type Config struct {
	StrategyName, ExchangeName string
	Symbols                    []string
	// Draining are symbols among Symbols on which no new signal opens (the runner's
	// --drain): a write that would open one is refused (403, draining).
	Draining []string
	// RiskProfiles are the risk profiles served (default: one named after the strategy).
	RiskProfiles []string
	// Backend opens the stores, with the runner's fencing token.
	Backend domain.Backend
	// MaxBody bounds a request body (DefaultMaxBody when 0).
	MaxBody int64
	// Limits are the signal rules a signal or schedule row must keep.
	Limits v1.SignalLimits
}

// Server is the HTTP handler of one strategy's state.
type Server struct {
	cfg    Config
	stores map[domain.Domain]*domain.Adapter[json.RawMessage]
	mux    *http.ServeMux
}

// kinds are the domains a Server serves.
var kinds = []domain.Domain{domain.Signal, domain.Schedule, domain.Strategy, domain.Risk, domain.Partial,
	domain.Breakeven}

// New returns the server of cfg's state.
func New(cfg Config) *Server {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if len(cfg.RiskProfiles) == 0 {
		cfg.RiskProfiles = []string{cfg.StrategyName}
	}
	s := &Server{cfg: cfg, stores: map[domain.Domain]*domain.Adapter[json.RawMessage]{}, mux: http.NewServeMux()}
	for _, d := range kinds {
		s.stores[d] = domain.NewAdapter[json.RawMessage](d, cfg.Backend)
	}
	s.mux.HandleFunc("GET /v1/{kind}/{$}", s.list)
	s.mux.HandleFunc("GET /v1/{kind}/{key}", s.get)
	s.mux.HandleFunc("PUT /v1/{kind}/{key}", s.put)
	s.mux.HandleFunc("DELETE /v1/{kind}/{key}", s.remove)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fail(w, http.StatusNotFound, "unknown_path", fmt.Sprintf("%s %s is not part of the API: "+
			"GET /v1/{kind}/, GET, PUT or DELETE /v1/{kind}/{key}", r.Method, r.URL.Path))
	})
	return s
}

// Open opens (and initialises) every store the server serves: each kind of each of the
// strategy's symbols, and each of its risk profiles. A store that cannot be opened (a File
// folder another process holds: persist.ErrLocked) is an error.
func (s *Server) Open(ctx context.Context) error {
	for _, c := range domain.StrategyContexts(s.cfg.StrategyName, s.cfg.ExchangeName, s.cfg.Symbols,
		s.cfg.RiskProfiles...) {
		a, served := s.stores[c.Domain]
		if !served {
			continue // the ledger is the runner's own
		}
		if _, err := a.Store(ctx, c.Key); err != nil {
			return err
		}
	}
	return nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close closes the stores.
func (s *Server) Close() error {
	errs := make([]error, 0, len(s.stores))
	for _, a := range s.stores {
		errs = append(errs, a.Close())
	}
	return errors.Join(errs...)
}

type apiError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(apiError{Error: msg, Code: code})
}

// failStore answers a store's error with the status it means.
func failStore(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, persist.ErrNotFound):
		fail(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, persist.ErrConflict):
		fail(w, http.StatusPreconditionFailed, "conflict", err.Error())
	case errors.Is(err, persist.ErrFenced):
		fail(w, http.StatusConflict, "fenced", err.Error())
	case errors.Is(err, persist.ErrInvalidKey):
		fail(w, http.StatusBadRequest, "invalid_key", err.Error())
	case errors.Is(err, persist.ErrInvalidValue):
		fail(w, http.StatusBadRequest, "invalid_value", err.Error())
	case errors.Is(err, persist.ErrTooLarge):
		fail(w, http.StatusRequestEntityTooLarge, "too_large", err.Error())
	default:
		fail(w, http.StatusServiceUnavailable, "unavailable", err.Error())
	}
}

// store is the request's store, or false once the request has been answered with why not.
func (s *Server) store(w http.ResponseWriter, r *http.Request) (domain.Domain, *persist.Store[json.RawMessage], bool) {
	d := domain.Domain(r.PathValue("kind"))
	a, ok := s.stores[d]
	if !ok {
		fail(w, http.StatusNotFound, "unknown_kind", fmt.Sprintf("kind %q is not one of %s", d, kindNames()))
		return d, nil, false
	}
	k, err := s.context(d, r)
	if err != nil {
		code, status := "bad_request", http.StatusBadRequest
		if errors.Is(err, errForeign) {
			code, status = "foreign_context", http.StatusForbidden
		}
		fail(w, status, code, err.Error())
		return d, nil, false
	}
	st, err := a.Store(r.Context(), k)
	if err != nil {
		failStore(w, err)
		return d, nil, false
	}
	return d, st, true
}

func kindNames() string {
	names := make([]string, len(kinds))
	for i, d := range kinds {
		names[i] = string(d)
	}
	return strings.Join(names, ", ")
}

var errForeign = errors.New("another strategy's state")

// context reads the context of kind d from the query, and refuses another strategy's.
func (s *Server) context(d domain.Domain, r *http.Request) (domain.Key, error) {
	q := r.URL.Query()
	k := domain.Key{Symbol: q.Get("symbol"), StrategyName: q.Get("strategyName"), ExchangeName: q.Get("exchangeName"),
		RiskName: q.Get("riskName")}
	if d == domain.Risk {
		k.Symbol, k.StrategyName = "", ""
	} else {
		k.RiskName = ""
	}
	if err := k.Validate(d); err != nil {
		return k, fmt.Errorf("the query names the context: %w", err)
	}
	switch {
	case k.ExchangeName != s.cfg.ExchangeName:
		return k, fmt.Errorf("%w: exchangeName %q is not this strategy's (%q)", errForeign, k.ExchangeName,
			s.cfg.ExchangeName)
	case d == domain.Risk && !slices.Contains(s.cfg.RiskProfiles, k.RiskName):
		return k, fmt.Errorf("%w: riskName %q is not one of this strategy's risk profiles (%s; a Strategy lists "+
			"them in spec.riskProfiles)", errForeign, k.RiskName, strings.Join(s.cfg.RiskProfiles, ", "))
	case d != domain.Risk && k.StrategyName != s.cfg.StrategyName:
		return k, fmt.Errorf("%w: strategyName %q is not this strategy's (%q)", errForeign, k.StrategyName,
			s.cfg.StrategyName)
	case d != domain.Risk && !slices.Contains(s.cfg.Symbols, k.Symbol):
		return k, fmt.Errorf("%w: symbol %q is not one of this strategy's (%s)", errForeign, k.Symbol,
			strings.Join(s.cfg.Symbols, ", "))
	}
	return k, nil
}

func etag(rev persist.Revision) string { return `"` + string(rev) + `"` }

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	_, st, ok := s.store(w, r)
	if !ok {
		return
	}
	keys, err := st.SortedKeys(r.Context())
	if err != nil {
		failStore(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(struct {
		Keys []string `json:"keys"`
	}{append([]string{}, keys...)})
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	_, st, ok := s.store(w, r)
	if !ok {
		return
	}
	v, rev, err := st.ReadRevision(r.Context(), r.PathValue("key"))
	if err != nil {
		failStore(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ETag", etag(rev))
	_, _ = w.Write(v)
}

// precondition reads If-Match and If-None-Match.
func precondition(r *http.Request, allowAbsent bool) ([]persist.WriteOption, error) {
	match, noneMatch := r.Header.Get("If-Match"), r.Header.Get("If-None-Match")
	switch {
	case match != "" && noneMatch != "":
		return nil, errors.New("give If-Match or If-None-Match, not both")
	case noneMatch == "*" && allowAbsent:
		return []persist.WriteOption{persist.IfAbsent()}, nil
	case noneMatch != "":
		return nil, fmt.Errorf("If-None-Match %q: only * (create only) is understood here", noneMatch)
	case match != "":
		rev, ok := strings.CutPrefix(match, `"`)
		if rev, ok2 := strings.CutSuffix(rev, `"`); ok && ok2 && rev != "" && !strings.Contains(rev, `"`) {
			return []persist.WriteOption{persist.IfRevision(persist.Revision(rev))}, nil
		}
		return nil, fmt.Errorf("If-Match %q is not one quoted revision (an ETag of this API)", match)
	}
	return nil, nil
}

// writeTime is the request's context carrying the time the write belongs to, from the
// query's when (Unix milliseconds: backtest-kit's when, the tick's time), for a database
// store to keep (driver.WithWriteTime); without when, the write's own time is kept.
func writeTime(r *http.Request) (context.Context, error) {
	v := r.URL.Query().Get("when")
	if v == "" {
		return r.Context(), nil
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms < 0 {
		return nil, fmt.Errorf("query parameter when %q is not a time in Unix milliseconds", v)
	}
	return driver.WithWriteTime(r.Context(), time.UnixMilli(ms)), nil
}

// onlyKey is the one key a store of kind d holds in context k, "" when it holds many.
func onlyKey(d domain.Domain, k domain.Key) string {
	switch d {
	case domain.Signal, domain.Schedule:
		return k.Symbol
	case domain.Strategy:
		return "strategy"
	case domain.Risk:
		return "positions"
	}
	return ""
}

func (s *Server) put(w http.ResponseWriter, r *http.Request) {
	d, st, ok := s.store(w, r)
	if !ok {
		return
	}
	if k, _ := s.context(d, r); onlyKey(d, k) != "" && r.PathValue("key") != onlyKey(d, k) {
		fail(w, http.StatusBadRequest, "invalid_key", fmt.Sprintf("a %s store holds one key, %q, as backtest-kit "+
			"keeps it; not %q", d, onlyKey(d, k), r.PathValue("key")))
		return
	}
	opts, err := precondition(r, true)
	if err != nil {
		fail(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	ctx, err := writeTime(r)
	if err != nil {
		fail(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if mbe, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
		fail(w, http.StatusRequestEntityTooLarge, "too_large",
			fmt.Sprintf("the body is over the limit of %d bytes", mbe.Limit))
		return
	}
	if err != nil {
		fail(w, http.StatusBadRequest, "bad_request", "reading the body: "+err.Error())
		return
	}
	if err := s.validate(d, body); err != nil {
		fail(w, http.StatusBadRequest, "invalid_value", err.Error())
		return
	}
	if k, _ := s.context(d, r); s.opens(r.Context(), d, st, k, body) {
		fail(w, http.StatusForbidden, "draining", fmt.Sprintf("%s is draining: no new signal opens on it, "+
			"the open ones are watched to their close", k.Symbol))
		return
	}
	rev, err := st.Write(ctx, r.PathValue("key"), json.RawMessage(body), opts...)
	if err != nil {
		failStore(w, err)
		return
	}
	w.Header().Set("ETag", etag(rev))
	if r.Header.Get("If-None-Match") == "*" {
		w.WriteHeader(http.StatusCreated)
	} else {
		w.WriteHeader(http.StatusNoContent)
	}
}

// opens reports whether body, written as the signal or schedule of a draining symbol,
// would open a new signal there: a row whose id is not the one stored (a changed row of
// the stored signal, or null, is fine). A store that cannot be read counts as a new one.
func (s *Server) opens(ctx context.Context, d domain.Domain, st *persist.Store[json.RawMessage], k domain.Key,
	body []byte) bool {
	if (d != domain.Signal && d != domain.Schedule) || !slices.Contains(s.cfg.Draining, k.Symbol) {
		return false
	}
	var row struct {
		ID string `json:"id"`
	}
	if string(body) == "null" || json.Unmarshal(body, &row) != nil {
		return false
	}
	stored, err := st.Read(ctx, k.Symbol)
	var had struct {
		ID string `json:"id"`
	}
	return err != nil || json.Unmarshal(stored, &had) != nil || had.ID != row.ID
}

// validate checks a body for kind d: JSON, and for a signal or schedule a row that keeps
// backtest-kit's rules (or null).
func (s *Server) validate(d domain.Domain, body []byte) error {
	if !json.Valid(body) {
		return errors.New("the body is not JSON")
	}
	if d != domain.Signal && d != domain.Schedule {
		return nil
	}
	var row *v1.Signal
	if err := json.Unmarshal(body, &row); err != nil {
		return fmt.Errorf("not a signal row: %w", err)
	}
	return v1.ValidateSignal(row, s.cfg.Limits, nil)
}

func (s *Server) remove(w http.ResponseWriter, r *http.Request) {
	_, st, ok := s.store(w, r)
	if !ok {
		return
	}
	opts, err := precondition(r, false)
	if err != nil {
		fail(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if err := st.Remove(r.Context(), r.PathValue("key"), opts...); err != nil {
		failStore(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
