package hosttrace

import (
	"context"

	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/protobuf/proto"

	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv2"
)

// Receiver takes the spans a host's plugins send (plugin.SpanHost) into
// the host's own export: each span, rebuilt as it ended in the plugin,
// with the plugin's resource, goes to the span processor that exports the
// host's spans, so that both leave together. Its methods are safe for
// concurrent use.
type Receiver struct {
	proc sdktrace.SpanProcessor
}

// NewReceiver returns a Receiver that hands the plugins' spans to proc,
// normally the host's batch span processor (sdktrace.NewBatchSpanProcessor
// registered with the host's tracer provider).
func NewReceiver(proc sdktrace.SpanProcessor) *Receiver {
	return &Receiver{proc: proc}
}

// ExportSpans implements plugin.SpanHost's method: batch is one encoded
// ExportSpansRequest of a plugin. A batch that does not decode, or that
// holds a span without a valid trace and span id, is refused whole with
// plugin.CodeInvalidRequest.
func (r *Receiver) ExportSpans(_ context.Context, batch []byte) error {
	var req flowv2.ExportSpansRequest
	if err := proto.Unmarshal(batch, &req); err != nil {
		return plugin.Errorf(plugin.CodeInvalidRequest, "spans", "the plugin's spans do not decode: %v", err)
	}
	res := resource.NewSchemaless(attrsFromProto(req.GetResource())...)
	spans := make([]sdktrace.ReadOnlySpan, 0, len(req.GetSpans()))
	for _, s := range req.GetSpans() {
		ro, err := spanFromProto(s, res)
		if err != nil {
			return plugin.Errorf(plugin.CodeInvalidRequest, "spans", "the plugin's spans: %v", err)
		}
		spans = append(spans, ro)
	}
	for _, s := range spans {
		r.proc.OnEnd(s)
	}
	return nil
}
