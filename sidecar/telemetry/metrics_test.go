package telemetry_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

func TestUpstreamCalls(t *testing.T) {
	reg := prometheus.NewRegistry()
	u, err := telemetry.NewUpstreamCalls(telemetry.Bundle{Registerer: reg}, []string{"/v2/a", "/v2/b"})
	if err != nil {
		t.Fatal(err)
	}
	counter := func(path, result string) (float64, bool) {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() != "paysidecar_upstream_calls_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				l := map[string]string{}
				for _, lp := range m.GetLabel() {
					l[lp.GetName()] = lp.GetValue()
				}
				if l["path"] == path && l["result"] == result {
					return m.GetCounter().GetValue(), true
				}
			}
		}
		return 0, false
	}
	// Every series an alert reads exists at zero from the start, and
	// from its declaration for a path allowed later.
	if _, ok := counter("/v2/c", "error"); ok {
		t.Fatal("a series for a path never declared")
	}
	u.Declare([]string{"/v2/c"})
	for _, p := range []string{"/v2/a", "/v2/b", "/v2/c"} {
		for _, r := range []string{"accepted", "rejected", "error"} {
			if v, ok := counter(p, r); !ok || v != 0 {
				t.Errorf("%s %s = %v %v, want a zero series", p, r, v, ok)
			}
		}
	}

	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("test").Start(context.Background(), "call")
	traceID := span.SpanContext().TraceID().String()
	u.Observe(ctx, "/v2/a", "accepted", 3*time.Millisecond)
	span.End()
	u.Observe(context.Background(), "/v2/a", "rejected", 40*time.Millisecond)
	u.Observe(context.Background(), "/v2/a", "timeout", 5*time.Second)
	for _, c := range []struct {
		result string
		want   float64
	}{{"accepted", 1}, {"rejected", 1}, {"error", 1}} {
		if v, _ := counter("/v2/a", c.result); v != c.want {
			t.Errorf("%s = %v, want %v", c.result, v, c.want)
		}
	}

	// The histogram is served with the trace id as exemplar when the
	// scraper asks for OpenMetrics, and resolves milliseconds.
	srv := httptest.NewServer(telemetry.AdminHandler(reg, nil))
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	text := string(body)
	if !strings.Contains(text, `paysidecar_upstream_call_duration_seconds_bucket{endpoint="/v2/a",outcome="accepted",le="0.003"} 1 # {trace_id="`+traceID+`"}`) {
		t.Fatalf("no exemplar with trace id %s in:\n%s", traceID, grep(text, "upstream_call_duration_seconds_bucket"))
	}
	if !strings.Contains(text, `paysidecar_upstream_call_duration_seconds_bucket{endpoint="/v2/a",outcome="accepted",le="0.002"} 0`) {
		t.Errorf("a 3 ms call is not told from a 2 ms one:\n%s", grep(text, `outcome="accepted"`))
	}
}

func grep(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestBundle(t *testing.T) {
	b := telemetry.Bundle{}.WithDefaults()
	if b.Logger == nil || b.TracerProvider == nil || b.Now == nil || b.Registerer != nil {
		t.Fatalf("defaults = %+v", b)
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "paysidecar_test_total", Help: "t"})
	if err := b.Register(c); err != nil {
		t.Fatalf("a bundle without a registerer registers nothing: %v", err)
	}
	reg := prometheus.NewRegistry()
	b.Registerer = reg
	if err := b.Register(c); err != nil {
		t.Fatal(err)
	}
	if err := b.Register(c); err == nil {
		t.Fatal("two components registered the same metric")
	}
	for _, m := range []struct {
		in, out string
		known   bool
	}{{"GET", "GET", true}, {"PATCH", "PATCH", true}, {"get", "_OTHER", false}, {"PURGE", "_OTHER", false}} {
		if out, known := telemetry.HTTPMethod(m.in); out != m.out || known != m.known {
			t.Errorf("HTTPMethod(%q) = %q %v", m.in, out, known)
		}
	}
}
