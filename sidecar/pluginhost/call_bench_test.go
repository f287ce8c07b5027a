package pluginhost

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/paysidecar/paysidecar/sdk/plugin"
)

// BenchmarkShapeOrder times one plugin call through a real plugin process
// (gRPC over go-plugin's AutoMTLS on a Unix socket), as a create makes
// two, with tracing off.
func BenchmarkShapeOrder(b *testing.B) {
	cfg := PluginConfig{Name: "mock", Path: mockBin, SHA256: sha256Hex(b, mockBin)}
	m, err := New([]PluginConfig{cfg}, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(),
		append(fastOptions(), WithTracerProvider(noop.NewTracerProvider()))...)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := m.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = m.Close() }()
	f, err := m.Flow("mock")
	if err != nil {
		b.Fatal(err)
	}
	in := plugin.OrderInput{PaymentID: "pay_1", OutTradeNo: "o-1", AmountFen: 1, Description: "tea"}
	for b.Loop() {
		if _, err := f.ShapeOrder(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}
