package reconcile_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/api"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/reconcile"
	"github.com/paysidecar/paysidecar/sidecar/statements"
)

// service returns a Service on w's books with its own archive, as another
// replica sharing the store would have.
func (w *world) service(at string) *reconcile.Service {
	svc, _ := w.serviceWithMetrics(at)
	return svc
}

// serviceWithMetrics is service with its metrics in a registry of its
// own.
func (w *world) serviceWithMetrics(at string) (*reconcile.Service, *prometheus.Registry) {
	w.t.Helper()
	reg := prometheus.NewRegistry()
	m, err := reconcile.NewMetrics(reg)
	if err != nil {
		w.t.Fatal(err)
	}
	archive, err := statements.New(statements.Config{Dir: w.t.TempDir(), MerchantID: sandbox.DevHuifuID, Upstream: w.up, Now: w.clock.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		w.t.Fatal(err)
	}
	rec, err := reconcile.New(reconcile.Config{}, reconcile.Deps{Bills: archive, Ledger: w.sql, Runs: w.sql, Settler: w.settler(), Now: w.clock.Now,
		Metrics: m, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		w.t.Fatal(err)
	}
	svc, err := reconcile.NewService(reconcile.ServiceConfig{At: at}, rec, archive, w.sql)
	if err != nil {
		w.t.Fatal(err)
	}
	return svc, reg
}

// gauge reads a metric's value from a registry.
func gauge(t *testing.T, reg *prometheus.Registry, name, kind string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if kind != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != kind) {
				continue
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s %s", name, kind)
	return 0
}

// TestSchedule runs the previous day once its time has come, once, and
// not again on another replica.
func TestSchedule(t *testing.T) {
	w := newWorld(t)
	w.tradeDay()
	w.learn("payment", "P9")
	w.clock.Set(time.Date(2025, 6, 16, 9, 59, 0, 0, nkp.Beijing))
	a, regA := w.serviceWithMetrics("10:00")
	b, regB := w.serviceWithMetrics("10:00")
	if ran, err := a.RunDue(testCtx(t)); ran || err != nil {
		t.Fatalf("before 10:00: ran %v, %v", ran, err)
	}
	w.clock.Advance(2 * time.Minute)
	if ran, err := a.RunDue(testCtx(t)); !ran || err != nil {
		t.Fatalf("at 10:01: ran %v, %v", ran, err)
	}
	rep, err := w.sql.LatestRun(testCtx(t), sandbox.DevHuifuID, day0)
	if err != nil || rep.Status != reconcile.StatusClean || rep.Trigger != reconcile.TriggerSchedule || rep.FileRecords != 9 {
		t.Fatalf("scheduled run = %+v, %v", rep, err)
	}
	if ran, err := a.RunDue(testCtx(t)); ran || err != nil {
		t.Fatalf("again: ran %v, %v", ran, err)
	}
	if ran, err := b.RunDue(testCtx(t)); ran || err != nil {
		t.Fatalf("another replica: ran %v, %v", ran, err)
	}
	if runs, _ := w.sql.ListRuns(testCtx(t), sandbox.DevHuifuID, time.Time{}, 10); len(runs) != 1 {
		t.Fatalf("%d runs, want 1", len(runs))
	}
	// Both replicas report the run, the one that made it and the other.
	if err := b.RefreshMetrics(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	for name, reg := range map[string]*prometheus.Registry{"runner": regA, "replica": regB} {
		if got := gauge(t, reg, "paysidecar_reconcile_last_success_timestamp_seconds", ""); got != float64(rep.FinishedAt.Unix()) {
			t.Errorf("%s: last success %v, want %v", name, got, rep.FinishedAt.Unix())
		}
		if got := gauge(t, reg, "paysidecar_reconcile_differences", "missing_in_ledger"); got != 0 {
			t.Errorf("%s: differences %v", name, got)
		}
	}
	if gauge(t, regA, "paysidecar_reconcile_runs_total", "clean") != 1 || gauge(t, regB, "paysidecar_reconcile_scheduled", "") != 1 {
		t.Error("runs or scheduled gauge wrong")
	}
	if _, err := reconcile.NewService(reconcile.ServiceConfig{At: "25:00"}, w.rec, nil, w.sql); err == nil {
		t.Fatal("a bad schedule was accepted")
	}
	// Start and Close own the schedule's goroutine.
	c := w.service("10:00")
	if err := c.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestHandler pages through a statement, serves the original file with
// byte ranges, runs a reconciliation and reads it back.
func TestHandler(t *testing.T) {
	w := newWorld(t)
	w.tradeDay()
	srv := httptest.NewServer(w.service("").Handler())
	t.Cleanup(srv.Close)
	get := func(path string, out any) int {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		if out != nil {
			if err := json.Unmarshal(body, out); err != nil {
				t.Fatalf("%s: %v\n%s", path, err, body)
			}
		}
		return resp.StatusCode
	}
	type page struct {
		Files      []statements.File `json:"files"`
		Rows       []map[string]any  `json:"rows"`
		NextCursor string            `json:"next_cursor"`
	}
	var seqs []string
	cursor := ""
	for range 10 {
		var p page
		if code := get("/v1/statements/"+day0+"/TRADE_BILL?limit=4&cursor="+cursor, &p); code != http.StatusOK {
			t.Fatalf("HTTP %d", code)
		}
		for _, r := range p.Rows {
			seqs = append(seqs, r["req_seq_id"].(string))
			if amt, ok := r["trans_amt_fen"].(float64); !ok || amt != float64(int64(amt)) {
				t.Fatalf("trans_amt_fen = %#v, want integer fen", r["trans_amt_fen"])
			}
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	if len(seqs) != 9 {
		t.Fatalf("paged rows = %v, want the day's 9", seqs)
	}
	var p page
	get("/v1/statements/"+day0+"/TRADE_BILL", &p)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/statements/"+day0+"/TRADE_BILL/files/"+p.Files[0].Name, nil)
	req.Header.Set("Range", "bytes=0-2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	head, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || string(head) != "\ufeff" {
		t.Fatalf("file range: HTTP %d %q", resp.StatusCode, head)
	}
	for path, want := range map[string]int{
		"/v1/statements/" + day0 + "/DAILY":                 http.StatusBadRequest,
		"/v1/statements/2025-06-15/TRADE_BILL":              http.StatusBadRequest,
		"/v1/statements/" + day0 + "/TRADE_BILL?cursor=x":   http.StatusBadRequest,
		"/v1/statements/" + day0 + "/TRADE_BILL/files/nope": http.StatusNotFound,
		"/v1/reconciliations/nope":                          http.StatusNotFound,
		"/v1/nothing":                                       http.StatusNotFound,
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		// The app API's error writer: its header, and its body with
		// nothing else in it.
		var e client.ErrorBody
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil || resp.StatusCode != want || e.Error.Code == "" || e.Error.Message == "" {
			t.Errorf("%s: HTTP %d %s (%v), want %d and the API's error body", path, resp.StatusCode, body, err, want)
		}
		rec := httptest.NewRecorder()
		api.WriteError(rec, &api.Error{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message, Field: e.Error.Field})
		if ct := resp.Header.Get("Content-Type"); ct != rec.Header().Get("Content-Type") || string(body) != rec.Body.String() {
			t.Errorf("%s: answered %q %s, the API's error writer %q %s", path, ct, body, rec.Header().Get("Content-Type"), rec.Body)
		}
	}
	w.inject(sandbox.BillDifference{Kind: sandbox.BillPending, BillType: nkp.BillSettle, Date: "20250614"})
	if code := get("/v1/statements/20250614/SETTLE_BILL", nil); code != http.StatusServiceUnavailable {
		t.Errorf("not ready: HTTP %d", code)
	}

	// Answers are in the client's shapes, amounts in integer fen (a yuan
	// string would not decode into them).
	post := func(body string) (int, client.Reconciliation) {
		resp, err := http.Post(srv.URL+"/v1/reconciliations", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var rep client.Reconciliation
		if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil && resp.StatusCode == http.StatusOK {
			t.Fatalf("decode the report: %v", err)
		}
		return resp.StatusCode, rep
	}
	code, rep := post(`{"date":"` + day0 + `"}`)
	total := 0
	for _, n := range rep.Counts {
		total += n
	}
	if code != http.StatusOK || rep.Status != reconcile.StatusDifferences || total != 1 || rep.Settled != 1 || len(rep.Totals) != 1 ||
		rep.Totals[0].FilePayFen <= 0 {
		t.Fatalf("run: HTTP %d %+v", code, rep)
	}
	for _, bad := range []string{`{"date":"2025"}`, `{"day":"x"}`, `nope`} {
		if code, _ := post(bad); code != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d", bad, code)
		}
	}
	var got client.ReconciliationPage
	if code := get("/v1/reconciliations/"+rep.RunID, &got); code != http.StatusOK || got.Run.RunID != rep.RunID || len(got.Differences) != 1 || got.Differences[0].ReqSeqID != "P9" {
		t.Fatalf("run page: HTTP %d %+v", code, got)
	}
	var list client.ReconciliationList
	if code := get("/v1/reconciliations", &list); code != http.StatusOK || len(list.Runs) != 1 {
		t.Fatalf("runs: HTTP %d %+v", code, list)
	}
	resp, err = http.Post(srv.URL+"/v1/reconciliations/"+rep.RunID, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST a run: HTTP %d", resp.StatusCode)
	}
}
