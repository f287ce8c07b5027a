package pluginhost

import (
	"context"
	"encoding/hex"
	"net"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/paysidecar/paysidecar/sdk/plugin"
)

// collector is an OTLP/gRPC trace receiver that keeps what it receives.
type collector struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans map[string][]string // trace id (hex) -> "service: span name"
}

func (c *collector) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				id := hex.EncodeToString(sp.GetTraceId())
				c.spans[id] = append(c.spans[id], service+": "+sp.GetName())
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (c *collector) of(traceID string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.spans[traceID]...)
}

func TestPluginExportsItsSpansToTheCollector(t *testing.T) {
	col := &collector{spans: map[string][]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, col)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)

	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	h := newHarness(t, []PluginConfig{mockConfig(t, "otlp")}, WithTracerProvider(tp),
		WithSetEnv(plugin.EnvOTLPEndpoint+"=http://"+ln.Addr().String()))
	if err := h.m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	f, err := h.m.Flow("mock")
	if err != nil {
		t.Fatal(err)
	}
	ctx, root := tp.Tracer("test").Start(t.Context(), "POST /v1/payments")
	shape(t, f, ctx, nil)
	root.End()
	traceID := root.SpanContext().TraceID().String()
	waitFor(t, 10*time.Second, "the plugin's server span at the collector", func() bool {
		for _, s := range col.of(traceID) {
			if s == "paysidecar-plugin-mock: paysidecar.flow.v2.FlowService/ShapeOrder" {
				return true
			}
		}
		return false
	})

	// An unsampled trace stays unsampled in the plugin: after it, a sampled
	// call's span arrives and the unsampled one never does.
	ctx, quiet := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample())).Tracer("test").Start(t.Context(), "quiet")
	shape(t, f, ctx, nil)
	quiet.End()
	ctx, loud := tp.Tracer("test").Start(t.Context(), "loud")
	shape(t, f, ctx, nil)
	loud.End()
	waitFor(t, 10*time.Second, "the later sampled span", func() bool { return len(col.of(loud.SpanContext().TraceID().String())) > 0 })
	if got := col.of(quiet.SpanContext().TraceID().String()); len(got) != 0 {
		t.Fatalf("an unsampled trace was exported by the plugin: %v", got)
	}
}
