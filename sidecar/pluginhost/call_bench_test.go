package pluginhost

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/paysidecar/paysidecar/internal/localproc"
	"github.com/paysidecar/paysidecar/sdk/plugin"
)

// BenchmarkShapeOrder times one plugin call through a real plugin process
// (gRPC over go-plugin's AutoMTLS on a Unix socket), as a create makes
// two, with tracing off: with the plugin on one processor
// (plugins.gomaxprocs' default) and, as the baseline, on the Go runtime's
// default. Besides the time per call it reports the CPU time each process
// spent per call and their context switches per call, read from /proc
// (10 ms resolution, so it needs a -benchtime of a second or more to mean
// anything).
func BenchmarkShapeOrder(b *testing.B) {
	b.Run("gomaxprocs=1", func(b *testing.B) { benchmarkShapeOrder(b, WithSetEnv("GOMAXPROCS=1")) })
	b.Run("gomaxprocs=default", func(b *testing.B) { benchmarkShapeOrder(b) })
}

func benchmarkShapeOrder(b *testing.B, opts ...Option) {
	cfg := PluginConfig{Name: "mock", Path: mockBin, SHA256: sha256Hex(b, mockBin)}
	m, err := New([]PluginConfig{cfg}, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(),
		append(append(fastOptions(), WithTracerProvider(noop.NewTracerProvider())), opts...)...)
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
	host := os.Getpid()
	child := localproc.ChildNamed(host, "mockflow")
	if child == 0 {
		b.Fatal("no mockflow process under the test")
	}
	in := plugin.OrderInput{PaymentID: "pay_1", OutTradeNo: "o-1", AmountFen: 1, Description: "tea"}
	// One call before the counters are read, so that connection set-up
	// is not counted.
	if _, err := f.ShapeOrder(ctx, in); err != nil {
		b.Fatal(err)
	}
	hostCPU, childCPU := localproc.CPUTime(host), localproc.CPUTime(child)
	hostCS, childCS := localproc.ContextSwitches(host), localproc.ContextSwitches(child)
	n := 0
	for b.Loop() {
		if _, err := f.ShapeOrder(ctx, in); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.StopTimer()
	per := func(d int64) float64 { return float64(d) / float64(n) }
	b.ReportMetric(per((localproc.CPUTime(host) - hostCPU).Microseconds()), "host-cpu-µs/op")
	b.ReportMetric(per((localproc.CPUTime(child) - childCPU).Microseconds()), "plugin-cpu-µs/op")
	b.ReportMetric(per(localproc.ContextSwitches(host)-hostCS), "host-switches/op")
	b.ReportMetric(per(localproc.ContextSwitches(child)-childCS), "plugin-switches/op")
}
