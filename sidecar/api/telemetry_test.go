package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/payments"
	"github.com/paysidecar/paysidecar/sidecar/pluginhost"
	"github.com/paysidecar/paysidecar/sidecar/store/sqlite"
	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

type noUpstream struct{}

func (noUpstream) FileQuery(context.Context, nkp.FileQueryRequest) (nkp.FileQueryResponse, error) {
	return nkp.FileQueryResponse{}, errors.New("no upstream in this test")
}

func (noUpstream) Call(context.Context, string, map[string]any) (map[string]any, error) {
	return nil, errors.New("no upstream in this test")
}

type noFlows struct{}

func (noFlows) Flow(name string) (plugin.Flow, error) { return nil, pluginhost.ErrUnknownFlow }
func (noFlows) Infos() []plugin.Info                  { return nil }

// eventRoutes stands in for the events API's routes.
type eventRoutes struct{}

func (eventRoutes) Register(mux *http.ServeMux) {
	ok := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }
	mux.HandleFunc("/v1/events/{id}", ok)
	mux.HandleFunc("/v1/events/{id}/replay", ok)
}

// testServer is an API over a real store, with no upstream and no flows,
// reporting to reg and rec.
func testServer(t *testing.T) (*Server, *prometheus.Registry, *tracetest.SpanRecorder) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	reg := prometheus.NewRegistry()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tel := telemetry.Bundle{Logger: slog.New(slog.DiscardHandler), Registerer: reg, TracerProvider: tp}
	led, err := ledger.New(st, ledger.Options{Telemetry: tel})
	if err != nil {
		t.Fatal(err)
	}
	pay, err := payments.New(payments.Config{MerchantID: "6666000100000001"},
		payments.Deps{Store: st, Ledger: led, Upstream: noUpstream{}, Flows: noFlows{}, Telemetry: tel})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{MerchantID: "6666000100000001"}, Deps{Store: st, Payments: pay, Upstream: noUpstream{}, Flows: noFlows{},
		Events: eventRoutes{}, Telemetry: tel})
	if err != nil {
		t.Fatal(err)
	}
	return s, reg, rec
}

func randomWord() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// series returns the label sets of paysidecar_http_server_request_duration_seconds.
func series(t *testing.T, reg *prometheus.Registry) []map[string]string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, mf := range mfs {
		if mf.GetName() != "paysidecar_http_server_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out = append(out, labels(m))
		}
	}
	return out
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

// Requests for random paths and methods add no series: no label is built
// from request data.
func TestRandomRequestsAddNoSeries(t *testing.T) {
	s, reg, _ := testServer(t)
	h := s.Handler()
	batch := func() {
		for range 20 {
			w := randomWord()
			for _, r := range []*http.Request{
				httptest.NewRequest(http.MethodGet, "/"+w, nil),
				httptest.NewRequest(http.MethodGet, "/v1/"+w+"/"+w, nil),
				httptest.NewRequest("M"+strings.ToUpper(w), "/v1/payments", nil),
				httptest.NewRequest(http.MethodGet, "/v1/payments/pay_"+w, nil),
				httptest.NewRequest(http.MethodPost, "/v1/events/evt_"+w+"/replay", nil),
				httptest.NewRequest(http.MethodGet, "/v1/events/evt_"+w, nil),
				httptest.NewRequest(http.MethodDelete, "/v1/refunds/re_"+w, nil),
				httptest.NewRequest(http.MethodGet, "/v1/refunds/re_"+w, nil),
			} {
				h.ServeHTTP(httptest.NewRecorder(), r)
			}
		}
	}
	batch()
	first := series(t, reg)
	batch()
	second := series(t, reg)
	if len(first) == 0 || len(second) != len(first) {
		t.Fatalf("series went from %d to %d after more random requests", len(first), len(second))
	}
	routes := map[string]bool{}
	for _, l := range second {
		for k, v := range l {
			if strings.Contains(v, "pay_") || strings.Contains(v, "evt_") || strings.Contains(v, "re_") || (k == "http_request_method" && strings.HasPrefix(v, "M")) {
				t.Errorf("label %s=%q is built from request data", k, v)
			}
		}
		routes[l["http_route"]] = true
	}
	// A method no route of the path takes is answered by the catch-all, with
	// no route, like an unknown path.
	for _, want := range []string{"", "/v1/payments/{id}", "/v1/events/{id}/replay", "/v1/events/{id}", "/v1/refunds/{id}"} {
		if !routes[want] {
			t.Errorf("no series for route %q; routes: %v", want, routes)
		}
	}
}

// The server span and the metric follow OpenTelemetry's HTTP conventions.
func TestSpanAndMetricFollowTheHTTPConventions(t *testing.T) {
	s, reg, rec := testServer(t)
	h := s.Handler()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/v1/payments/pay_x", nil))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("PURGE", "/nowhere", nil))
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("spans = %d", len(spans))
	}
	attrs := func(i int) map[string]string {
		out := map[string]string{}
		for _, kv := range spans[i].Attributes() {
			out[string(kv.Key)] = kv.Value.String()
		}
		return out
	}
	if a := attrs(0); spans[0].Name() != "GET /v1/payments/{id}" || a["http.request.method"] != "GET" ||
		a["http.route"] != "/v1/payments/{id}" || a["http.response.status_code"] != "404" {
		t.Errorf("span %q %v", spans[0].Name(), a)
	}
	if a := attrs(1); spans[1].Name() != "_OTHER" || a["http.request.method"] != "_OTHER" ||
		a["http.request.method_original"] != "PURGE" || a["http.route"] != "" || a["http.response.status_code"] != "404" {
		t.Errorf("span %q %v", spans[1].Name(), a)
	}
	want := map[string]bool{"GET 404 /v1/payments/{id}": true, "_OTHER 404 ": true}
	for _, l := range series(t, reg) {
		key := l["http_request_method"] + " " + l["http_response_status_code"] + " " + l["http_route"]
		if !want[key] {
			t.Errorf("unexpected series %v", l)
		}
		delete(want, key)
	}
	if len(want) != 0 {
		t.Errorf("missing series %v", want)
	}
}
