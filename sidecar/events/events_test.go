package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/delivery"
	"github.com/paysidecar/paysidecar/sidecar/events"
	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/sqlite"
	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

type fixture struct {
	st    *sqlite.Store
	led   *ledger.Ledger
	svc   *events.Service
	srv   *httptest.Server
	wakes atomic.Int32
	ids   []string
}

func newFixture(t *testing.T, payments int) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	f := &fixture{st: st}
	f.led, err = ledger.New(st, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = events.New(st, events.Options{Wake: func() { f.wakes.Add(1) }, Telemetry: telemetry.Bundle{Logger: slog.New(slog.DiscardHandler)}})
	f.srv = httptest.NewServer(f.svc.Handler())
	t.Cleanup(f.srv.Close)
	for i := 0; i < payments; i++ {
		id := fmt.Sprintf("pay_%d", i)
		p := store.Payment{ID: id, MerchantID: "m", OutTradeNo: "o" + id, AmountFen: 100, ReqDate: "20260301",
			ReqSeqID: "s" + id, TradeType: upstream.TradeWeChatJSAPI, Status: store.StatusProcessing}
		if err := st.CreatePayment(ctx, &p); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.led.ApplyPayment(ctx, id, ledger.Result{TransStat: "S", Source: ledger.SourceQuery}); err != nil {
			t.Fatal(err)
		}
		f.ids = append(f.ids, ledger.EventID(id, store.StatusSucceeded))
	}
	return f
}

// finish claims the events and records the outcome for each: "d" delivered,
// "x" dead, anything else left pending.
func (f *fixture) finish(t *testing.T, outcomes string) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	evs, err := f.st.ClaimEvents(ctx, store.Claim{Owner: "w", LeaseUntil: now.Add(time.Minute)}, now, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range evs {
		if i >= len(outcomes) {
			break
		}
		a := store.Attempt{EventID: e.ID, Owner: "w", At: now, Error: "HTTP 500", NextAttemptAt: now.Add(time.Hour)}
		switch outcomes[i] {
		case 'd':
			a.Delivered, a.Error, a.NextAttemptAt = true, "", time.Time{}
		case 'x':
			a.Dead, a.NextAttemptAt = true, time.Time{}
		}
		if err := f.st.CompleteAttempt(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) do(t *testing.T, method, path, body string, out any) int {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: content type %q", method, path, ct)
	}
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
	return resp.StatusCode
}

func TestListPaging(t *testing.T) {
	f := newFixture(t, 5)
	f.finish(t, "dxdxp")
	var all []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		var p events.Page
		if code := f.do(t, "GET", "/v1/events?limit=2"+after, "", &p); code != 200 {
			t.Fatalf("list: %d", code)
		}
		for _, r := range p.Data {
			all = append(all, r.ID)
		}
		if !p.HasMore {
			if len(p.Data) != 1 {
				t.Errorf("last page has %d, want 1", len(p.Data))
			}
			break
		}
		if len(p.Data) != 2 || p.NextAfter != p.Data[1].Seq {
			t.Fatalf("page = %+v", p)
		}
		after = fmt.Sprintf("&after=%d", p.NextAfter)
	}
	if strings.Join(all, ",") != strings.Join(f.ids, ",") {
		t.Errorf("listed %v, want %v", all, f.ids)
	}

	tests := []struct {
		status string
		want   []string
	}{
		{"delivered", []string{f.ids[0], f.ids[2]}},
		{"dead", []string{f.ids[1], f.ids[3]}},
		{"pending", []string{f.ids[4]}},
	}
	for _, tt := range tests {
		var p events.Page
		if code := f.do(t, "GET", "/v1/events?status="+tt.status, "", &p); code != 200 {
			t.Fatalf("%s: %d", tt.status, code)
		}
		var got []string
		for _, r := range p.Data {
			got = append(got, r.ID)
			if r.Status != tt.status {
				t.Errorf("%s listed with status %s", r.ID, r.Status)
			}
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("status %s: %v, want %v", tt.status, got, tt.want)
		}
	}
}

func TestBadRequests(t *testing.T) {
	f := newFixture(t, 1)
	tests := []struct {
		method, path, body string
		wantCode           int
		wantErr, wantField string
	}{
		{"GET", "/v1/events?status=lost", "", 400, "invalid_field", "status"},
		{"GET", "/v1/events?limit=0", "", 400, "invalid_field", "limit"},
		{"GET", "/v1/events?limit=501", "", 400, "invalid_field", "limit"},
		{"GET", "/v1/events?limit=x", "", 400, "invalid_field", "limit"},
		{"GET", "/v1/events?after=-1", "", 400, "invalid_field", "after"},
		{"GET", "/v1/events?after=z", "", 400, "invalid_field", "after"},
		{"GET", "/v1/events/evt_missing", "", 404, "not_found", "id"},
		{"POST", "/v1/events/evt_missing/replay", "", 404, "not_found", "id"},
		{"POST", "/v1/events/" + f.ids[0] + "/replay", "", 409, "event_pending", "id"},
		{"POST", "/v1/events/replay", `{"status":"pending"}`, 400, "invalid_field", "status"},
		{"POST", "/v1/events/replay", `{"status":"dead","all":true}`, 400, "invalid_json", ""},
		{"POST", "/v1/events/replay", `{`, 400, "invalid_json", ""},
		{"DELETE", "/v1/events/" + f.ids[0], "", 405, "method_not_allowed", ""},
		{"GET", "/v1/events/replay", "", 405, "method_not_allowed", ""},
		{"POST", "/v1/events", "", 405, "method_not_allowed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			var e client.ErrorBody
			if code := f.do(t, tt.method, tt.path, tt.body, &e); code != tt.wantCode {
				t.Errorf("status %d, want %d", code, tt.wantCode)
			}
			if e.Error.Code != tt.wantErr || e.Error.Field != tt.wantField || e.Error.Message == "" {
				t.Errorf("error = %+v, want code %s field %q", e.Error, tt.wantErr, tt.wantField)
			}
		})
	}
	// Nothing changed.
	if e, _ := f.st.GetEvent(context.Background(), f.ids[0]); e.Status != store.EventPending || e.Attempts != 0 {
		t.Errorf("event changed: %+v", e)
	}
	if f.wakes.Load() != 0 {
		t.Error("a refused request woke the dispatcher")
	}
}

func TestGetAndReplay(t *testing.T) {
	f := newFixture(t, 3)
	f.finish(t, "xdx")

	var rec events.Record
	if code := f.do(t, "GET", "/v1/events/"+f.ids[0], "", &rec); code != 200 {
		t.Fatal(code)
	}
	var ce client.Event
	if err := json.Unmarshal(rec.Payload, &ce); err != nil || ce.ID != f.ids[0] || rec.Status != "dead" || rec.Attempts != 1 || rec.LastError != "HTTP 500" {
		t.Fatalf("record = %+v (payload %v)", rec, err)
	}

	if code := f.do(t, "POST", "/v1/events/"+f.ids[0]+"/replay", "", &rec); code != 200 {
		t.Fatal(code)
	}
	if rec.Status != "pending" || rec.Attempts != 0 || rec.NextAttemptAt == nil {
		t.Errorf("after replay: %+v", rec)
	}
	if f.wakes.Load() != 1 {
		t.Errorf("wakes = %d, want 1", f.wakes.Load())
	}
	// A delivered event can be replayed too.
	if code := f.do(t, "POST", "/v1/events/"+f.ids[1]+"/replay", "", &rec); code != 200 || rec.Status != "pending" || rec.DeliveredAt != nil {
		t.Errorf("replay delivered: %d %+v", code, rec)
	}

	// Bulk: only the remaining dead one.
	var res events.ReplayResult
	if code := f.do(t, "POST", "/v1/events/replay", `{"status":"dead"}`, &res); code != 200 || res.Replayed != 1 {
		t.Fatalf("bulk: %d %+v", code, res)
	}
	if code := f.do(t, "POST", "/v1/events/replay", "", &res); code != 200 || res.Replayed != 0 {
		t.Fatalf("bulk again: %d %+v", code, res)
	}
	c, err := f.st.CountEvents(context.Background())
	if err != nil || c[store.EventPending] != 3 {
		t.Errorf("counts = %v (%v)", c, err)
	}
}

func TestReplayAllManyPages(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	// More dead events than one page (100) of the bulk replay.
	const n = 150
	now := time.Now()
	for i := 0; i < n; i++ {
		e := &store.Event{ID: fmt.Sprintf("evt_%04d", i), Type: client.EventPaymentSucceeded, ObjectID: fmt.Sprintf("p%d", i),
			Payload: json.RawMessage(`{}`), CreatedAt: now}
		if _, err := f.st.InsertEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for {
		evs, err := f.st.ClaimEvents(ctx, store.Claim{Owner: "w", LeaseUntil: now.Add(time.Minute)}, now, 200)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			if err := f.st.CompleteAttempt(ctx, store.Attempt{EventID: e.ID, Owner: "w", Dead: true, At: now}); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := f.svc.ReplayAll(ctx, store.EventDead)
	if err != nil || got != n {
		t.Fatalf("ReplayAll = %d, %v; want %d", got, err, n)
	}
	c, _ := f.st.CountEvents(ctx)
	if c[store.EventDead] != 0 || c[store.EventPending] != n {
		t.Errorf("counts = %v", c)
	}
}

// Dead letters after an outage, replayed through the API, reach the
// application through the real dispatcher.
func TestReplayDeliversThroughDispatcher(t *testing.T) {
	f := newFixture(t, 2)
	var up atomic.Bool
	var hits atomic.Int32
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if up.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer app.Close()
	d, err := delivery.New(delivery.Config{URL: app.URL, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", Owner: "r1",
		Schedule: delivery.Schedule{time.Millisecond}, PollInterval: time.Hour},
		f.st, delivery.Options{Telemetry: telemetry.Bundle{Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, _ := f.st.CountEvents(ctx)
		if c[store.EventDead] == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events did not die: %v", c)
		}
		if _, err := d.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	svc := events.New(f.st, events.Options{Wake: d.Wake, Telemetry: telemetry.Bundle{Logger: slog.New(slog.DiscardHandler)}})
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Close() }()
	up.Store(true)
	resp, err := http.Post(srv.URL+"/v1/events/replay", "application/json", strings.NewReader(`{"status":"dead"}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("replay: %d", resp.StatusCode)
	}
	for {
		c, _ := f.st.CountEvents(ctx)
		if c[store.EventDelivered] == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replayed events not delivered (the poll interval is an hour, so only the wake-up can): %v", c)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
