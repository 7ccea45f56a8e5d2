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

package stateserver_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/stateserver"
	"github.com/strategyops/strategy-operator/internal/testenv"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

const ctxQuery = "?symbol=BTCUSDT&strategyName=trace-immediate&exchangeName=trace-exchange"

func serve(t *testing.T, b domain.Backend) *httptest.Server {
	t.Helper()
	s := stateserver.New(stateserver.Config{StrategyName: "trace-immediate", ExchangeName: "trace-exchange",
		Symbols: []string{"BTCUSDT"}, Backend: b, MaxBody: 64 << 10, Limits: v1.DefaultSignalLimits})
	srv := httptest.NewServer(s)
	t.Cleanup(func() { srv.Close(); _ = s.Close() })
	return srv
}

type answer struct {
	status int
	etag   string
	body   string
}

func call(t *testing.T, method, url, body string, header ...string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header.Get("ETag"), string(b)}
}

// TestBacktestKitValuesRoundTrip: each fixture backtest-kit wrote, PUT through the API on
// the File backend, lands in backtest-kit's own file and reads back as it was written.
func TestBacktestKitValuesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	srv := serve(t, domain.FileBackend(dir))
	riskQuery := "?riskName=trace-immediate&exchangeName=trace-exchange"
	for _, c := range []struct {
		kind, key, query, fixture, file string
	}{
		{"signal", "BTCUSDT", ctxQuery, "signal-opened.json", "signal/BTCUSDT_trace-immediate_trace-exchange/BTCUSDT.json"},
		{"schedule", "BTCUSDT", ctxQuery, "schedule-scheduled.json",
			"schedule/BTCUSDT_trace-immediate_trace-exchange/BTCUSDT.json"},
		{"strategy", "strategy", ctxQuery, "strategy-snapshot.json",
			"strategy/BTCUSDT_trace-immediate_trace-exchange/strategy.json"},
		{"risk", "positions", riskQuery, "risk-positions.json", "risk/trace-immediate_trace-exchange/positions.json"},
		{"partial", "1af31ee8-c897-4000-a4dc-55369e459000", ctxQuery, "partial.json",
			"partial/BTCUSDT_trace-immediate_trace-exchange/1af31ee8-c897-4000-a4dc-55369e459000.json"},
		{"breakeven", "1af31ee8-c897-4000-a4dc-55369e459000", ctxQuery, "breakeven.json",
			"breakeven/BTCUSDT_trace-immediate_trace-exchange/1af31ee8-c897-4000-a4dc-55369e459000.json"},
	} {
		written := testenv.FixtureAsWritten(t, c.fixture)
		url := srv.URL + "/v1/" + c.kind + "/" + c.key + c.query
		put := call(t, http.MethodPut, url, string(written))
		if put.status != http.StatusNoContent || put.etag == "" {
			t.Fatalf("PUT %s: %+v", c.kind, put)
		}
		got := call(t, http.MethodGet, url, "")
		if got.status != http.StatusOK || got.etag != put.etag {
			t.Fatalf("GET %s: %+v, want 200 with the PUT's ETag %s", c.kind, got, put.etag)
		}
		var a, b any
		if json.Unmarshal([]byte(got.body), &a) != nil || json.Unmarshal(written, &b) != nil ||
			mustJSON(t, a) != mustJSON(t, b) {
			t.Errorf("%s reads back as %s, want %s", c.kind, got.body, written)
		}
		onDisk, err := os.ReadFile(filepath.Join(dir, c.file))
		if err != nil {
			t.Fatalf("%s is not in backtest-kit's file: %v", c.kind, err)
		}
		var c2 any
		if json.Unmarshal(onDisk, &c2) != nil || mustJSON(t, c2) != mustJSON(t, b) {
			t.Errorf("%s on disk is %s", c.kind, onDisk)
		}
	}
	if keys := call(t, http.MethodGet, srv.URL+"/v1/partial/"+ctxQuery, ""); keys.status != http.StatusOK ||
		keys.body != `{"keys":["1af31ee8-c897-4000-a4dc-55369e459000"]}`+"\n" {
		t.Errorf("listing partial: %+v", keys)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestConditionalWrites: If-None-Match: * creates only; If-Match writes and removes only at
// the revision named; a stale one is 412 and changes nothing.
func TestConditionalWrites(t *testing.T) {
	srv := serve(t, domain.MemoryBackend())
	url := srv.URL + "/v1/strategy/strategy" + ctxQuery
	created := call(t, http.MethodPut, url, `{"n":1}`, "If-None-Match", "*")
	if created.status != http.StatusCreated {
		t.Fatalf("create: %+v", created)
	}
	if again := call(t, http.MethodPut, url, `{"n":2}`, "If-None-Match", "*"); again.status != http.StatusPreconditionFailed ||
		!strings.Contains(again.body, `"code":"conflict"`) {
		t.Fatalf("a second create: %+v, want 412 conflict", again)
	}
	next := call(t, http.MethodPut, url, `{"n":2}`, "If-Match", created.etag)
	if next.status != http.StatusNoContent || next.etag == created.etag {
		t.Fatalf("write at the current revision: %+v", next)
	}
	if stale := call(t, http.MethodPut, url, `{"n":3}`, "If-Match", created.etag); stale.status != http.StatusPreconditionFailed {
		t.Fatalf("write at a stale revision: %+v, want 412", stale)
	}
	if stale := call(t, http.MethodDelete, url, "", "If-Match", created.etag); stale.status != http.StatusPreconditionFailed {
		t.Fatalf("remove at a stale revision: %+v, want 412", stale)
	}
	if got := call(t, http.MethodGet, url, ""); got.body != `{"n":2}` {
		t.Fatalf("after the refused requests the value is %s", got.body)
	}
	if removed := call(t, http.MethodDelete, url, "", "If-Match", next.etag); removed.status != http.StatusNoContent {
		t.Fatalf("remove at the current revision: %+v", removed)
	}
	if gone := call(t, http.MethodGet, url, ""); gone.status != http.StatusNotFound ||
		!strings.Contains(gone.body, `"code":"not_found"`) {
		t.Fatalf("after the removal: %+v", gone)
	}
}

// TestBadRequests: each bad request is a 4xx whose JSON error names the problem, and nothing
// stored changes.
func TestBadRequests(t *testing.T) {
	srv := serve(t, domain.MemoryBackend())
	signal := string(testenv.FixtureAsWritten(t, "signal-opened.json"))
	url := srv.URL + "/v1/signal/BTCUSDT" + ctxQuery
	if put := call(t, http.MethodPut, url, signal); put.status != http.StatusNoContent {
		t.Fatalf("PUT the fixture's signal: %+v", put)
	}
	broken := strings.Replace(signal, `"position":"long"`, `"position":"sideways"`, 1)
	if broken == signal {
		t.Fatal("the fixture has no long position to break")
	}
	for _, c := range []struct {
		name, method, url, body string
		header                  []string
		status                  int
		says                    string
	}{
		{"unknown kind", "GET", srv.URL + "/v1/candle/BTCUSDT" + ctxQuery, "", nil, 404, `kind \"candle\" is not one of`},
		{"missing context", "GET", srv.URL + "/v1/signal/BTCUSDT?symbol=BTCUSDT", "", nil, 400,
			"strategyName, exchangeName must not be empty"},
		{"another strategy", "PUT", srv.URL + "/v1/signal/BTCUSDT?symbol=BTCUSDT&strategyName=other&exchangeName=trace-exchange",
			"null", nil, 403, `strategyName \"other\" is not this strategy's`},
		{"another risk profile", "PUT", srv.URL + "/v1/risk/positions?riskName=other&exchangeName=trace-exchange",
			"[]", nil, 403, `riskName \"other\" is not one of this strategy's risk profiles (trace-immediate;`},
		{"another symbol", "PUT", srv.URL + "/v1/signal/ETHUSDT?symbol=ETHUSDT&strategyName=trace-immediate&exchangeName=trace-exchange",
			"null", nil, 403, `symbol \"ETHUSDT\" is not one of this strategy's`},
		{"not JSON", "PUT", url, "{", nil, 400, "the body is not JSON"},
		{"a signal that breaks the rules", "PUT", url, broken, nil, 400, `position must be \"long\" or \"short\"`},
		{"too large", "PUT", url, `"` + strings.Repeat("x", 65<<10) + `"`, nil, 413, "over the limit of 65536 bytes"},
		{"another key in a one-key store", "PUT", srv.URL + "/v1/strategy/BTCUSDT" + ctxQuery, "{}", nil, 400,
			`holds one key, \"strategy\"`},
		{"bad If-Match", "PUT", url, "null", []string{"If-Match", "7"}, 400, "is not one quoted revision"},
		{"a key no store can hold", "PUT", srv.URL + "/v1/partial/%ff" + ctxQuery, "{}", nil, 400, "invalid key"},
		{"a when that is no time", "PUT", url + "&when=yesterday", "null", nil, 400,
			`query parameter when \"yesterday\" is not a time in Unix milliseconds`},
	} {
		got := call(t, c.method, c.url, c.body, c.header...)
		if got.status != c.status || !strings.Contains(got.body, c.says) {
			t.Errorf("%s: %d %s, want %d naming %q", c.name, got.status, got.body, c.status, c.says)
		}
	}
	if got := call(t, http.MethodGet, url, ""); got.body != signal {
		t.Fatalf("after the bad requests the signal is\n%s\nwant\n%s", got.body, signal)
	}
}

// TestDrainingSymbolOpensNothing: on a draining symbol the API refuses a signal row that
// would open a new signal, and lets the stored one change and close.
func TestDrainingSymbolOpensNothing(t *testing.T) {
	b := domain.MemoryBackend()
	signal := string(testenv.FixtureAsWritten(t, "signal-opened.json"))
	path := "/v1/signal/BTCUSDT" + ctxQuery
	if put := call(t, http.MethodPut, serve(t, b).URL+path, signal); put.status != http.StatusNoContent {
		t.Fatalf("PUT the fixture's signal before the drain: %+v", put)
	}
	s := stateserver.New(stateserver.Config{StrategyName: "trace-immediate", ExchangeName: "trace-exchange",
		Symbols: []string{"BTCUSDT"}, Draining: []string{"BTCUSDT"}, Backend: b, Limits: v1.DefaultSignalLimits})
	srv := httptest.NewServer(s)
	t.Cleanup(func() { srv.Close(); _ = s.Close() })
	url := srv.URL + path

	var row map[string]any
	if err := json.Unmarshal([]byte(signal), &row); err != nil {
		t.Fatal(err)
	}
	row["id"] = "another-signal"
	other, _ := json.Marshal(row)
	if put := call(t, http.MethodPut, url, string(other)); put.status != http.StatusForbidden ||
		!strings.Contains(put.body, `"draining"`) {
		t.Fatalf("a new signal on a draining symbol: %+v, want 403 draining", put)
	}
	if put := call(t, http.MethodPut, url, signal); put.status != http.StatusNoContent {
		t.Fatalf("the stored signal written again: %+v", put)
	}
	if put := call(t, http.MethodPut, url, "null"); put.status != http.StatusNoContent {
		t.Fatalf("the stored signal closed: %+v", put)
	}
	if put := call(t, http.MethodPut, url, signal); put.status != http.StatusForbidden {
		t.Fatalf("a signal opened again once closed: %+v, want 403", put)
	}
}

// TestWhenReachesTheStore: a PUT's when (backtest-kit's, in Unix milliseconds) is the time
// the store is given for the write; without when, it is the write's own time.
func TestWhenReachesTheStore(t *testing.T) {
	var recorded testenv.WriteTimes
	memory := domain.MemoryBackend()
	srv := serve(t, func(ctx context.Context, d domain.Domain, k domain.Key) (driver.Driver, error) {
		drv, err := memory(ctx, d, k)
		return recorded.Wrap(string(d), drv), err
	})
	url := srv.URL + "/v1/partial/signal-1" + ctxQuery
	if put := call(t, http.MethodPut, url+"&when=1764107640000", `{"profitLevels":[10],"lossLevels":[]}`); put.status !=
		http.StatusNoContent {
		t.Fatalf("PUT with when: %+v", put)
	}
	before := time.Now()
	if put := call(t, http.MethodPut, url, `{"profitLevels":[10,20],"lossLevels":[]}`); put.status !=
		http.StatusNoContent {
		t.Fatalf("PUT without when: %+v", put)
	}
	times := recorded.Of(string(domain.Partial))
	if len(times) != 2 || !times[0].Equal(time.UnixMilli(1764107640000)) || times[1].Before(before) {
		t.Fatalf("the store was given the write times %v; want 1764107640000 ms, then the wall clock's", times)
	}
}

// TestServesTheListedRiskProfiles: a server given risk profiles serves those, and no other,
// not even the one named after the strategy.
func TestServesTheListedRiskProfiles(t *testing.T) {
	s := stateserver.New(stateserver.Config{StrategyName: "trace-immediate", ExchangeName: "trace-exchange",
		Symbols: []string{"BTCUSDT"}, RiskProfiles: []string{"team-risk", "desk-risk"},
		Backend: domain.MemoryBackend(), Limits: v1.DefaultSignalLimits})
	if err := s.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(func() { srv.Close(); _ = s.Close() })
	for profile, status := range map[string]int{"team-risk": http.StatusNoContent, "desk-risk": http.StatusNoContent,
		"trace-immediate": http.StatusForbidden} {
		got := call(t, http.MethodPut, srv.URL+"/v1/risk/positions?riskName="+profile+"&exchangeName=trace-exchange",
			"[]")
		if got.status != status {
			t.Errorf("PUT the positions of %s: %d %s, want %d", profile, got.status, got.body, status)
		}
	}
}
