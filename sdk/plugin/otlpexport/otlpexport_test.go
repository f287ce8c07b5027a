package otlpexport

import (
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/paysidecar/paysidecar/sdk/plugin"
)

func TestFromEnvSetsUpExportOnlyWhenTheHostAsks(t *testing.T) {
	t.Setenv(plugin.EnvOTLPEndpoint, "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tp, stop, err := FromEnv(t.Context(), "paysidecar-plugin-test")
	stop()
	if tp != nil || err != nil {
		t.Fatalf("without an endpoint: %v, %v; want nothing set up", tp, err)
	}

	// The exporter connects lazily: nothing listens at the endpoint, and
	// no span is exported.
	t.Setenv(plugin.EnvOTLPEndpoint, "http://127.0.0.1:1")
	tp, stop, err = FromEnv(t.Context(), "paysidecar-plugin-test")
	if err != nil || tp == nil {
		t.Fatalf("with an endpoint: %v, %v", tp, err)
	}
	defer stop()
	tr := tp.Tracer("test")
	_, root := tr.Start(t.Context(), "a trace of the plugin's own")
	if root.IsRecording() {
		t.Errorf("a span outside the host's traces is recorded")
	}
	root.End()
	sampled := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled, Remote: true})
	unsampled := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{3}, SpanID: trace.SpanID{4}, Remote: true})
	for _, c := range []struct {
		parent trace.SpanContext
		record bool
	}{{sampled, true}, {unsampled, false}} {
		_, s := tr.Start(trace.ContextWithRemoteSpanContext(t.Context(), c.parent), "call")
		if s.IsRecording() != c.record {
			t.Errorf("under a parent sampled %v: recording %v", c.parent.IsSampled(), s.IsRecording())
		}
		// Ended without recording, so that stopping has nothing to flush
		// to the endpoint where nothing listens.
		_ = s
	}
}
