package hosttrace

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv2"
	"github.com/paysidecar/paysidecar/sdk/plugin/internal/hostlink"
)

// recordSpans returns the spans of a plugin-like provider: a server span
// continuing a remote parent, with attributes of every type, an event, a
// link and an error status, and a child of it.
func recordSpans(t *testing.T) []sdktrace.ReadOnlySpan {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "paysidecar-plugin-test"))))
	ts, err := trace.ParseTraceState("vendor=value")
	if err != nil {
		t.Fatal(err)
	}
	parent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: true,
	})
	linked := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{7}, SpanID: trace.SpanID{8}, TraceFlags: trace.FlagsSampled})
	tracer := tp.Tracer("paysidecar/test", trace.WithInstrumentationVersion("1.2.3"))
	ctx, server := tracer.Start(trace.ContextWithRemoteSpanContext(context.Background(), parent), "paysidecar.flow.v2.FlowService/ShapeOrder",
		trace.WithSpanKind(trace.SpanKindServer), trace.WithLinks(trace.Link{SpanContext: linked, Attributes: []attribute.KeyValue{attribute.String("why", "retry")}}),
		trace.WithAttributes(
			attribute.String("s", "text"), attribute.Bool("b", true), attribute.Int64("i", -42), attribute.Float64("f", 1.5),
			attribute.StringSlice("ss", []string{"a", "b"}), attribute.BoolSlice("bs", []bool{true, false}),
			attribute.Int64Slice("is", []int64{1, 2}), attribute.Float64Slice("fs", []float64{0.5, 2}),
		))
	server.AddEvent("exception", trace.WithAttributes(attribute.String("exception.message", "boom")))
	server.SetStatus(codes.Error, "flow failed")
	_, child := tracer.Start(ctx, "exchange code", trace.WithSpanKind(trace.SpanKindClient))
	child.End()
	server.End()
	return rec.Ended()
}

func TestSpansSurviveTheTripToTheHost(t *testing.T) {
	spans := recordSpans(t)
	batch, err := proto.Marshal(encode(spans))
	if err != nil {
		t.Fatal(err)
	}
	host := tracetest.NewSpanRecorder()
	if err := NewReceiver(host).ExportSpans(t.Context(), batch); err != nil {
		t.Fatalf("ExportSpans: %v", err)
	}
	got := tracetest.SpanStubsFromReadOnlySpans(host.Ended())
	want := tracetest.SpanStubsFromReadOnlySpans(spans)
	if len(got) != len(want) {
		t.Fatalf("the host got %d spans, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		// Times travel in nanoseconds; the monotonic reading stays behind.
		if !g.StartTime.Equal(w.StartTime) || !g.EndTime.Equal(w.EndTime) {
			t.Errorf("span %q: times %v–%v, want %v–%v", w.Name, g.StartTime, g.EndTime, w.StartTime, w.EndTime)
		}
		for j := range w.Events {
			if !g.Events[j].Time.Equal(w.Events[j].Time) {
				t.Errorf("span %q: event time %v, want %v", w.Name, g.Events[j].Time, w.Events[j].Time)
			}
			g.Events[j].Time = w.Events[j].Time
		}
		g.StartTime, g.EndTime = w.StartTime, w.EndTime
		// A span's count of children is not a property of the exported span.
		g.ChildSpanCount = w.ChildSpanCount
		if !g.Resource.Equal(w.Resource) {
			t.Errorf("span %q: resource %v, want %v", w.Name, g.Resource, w.Resource)
		}
		g.Resource, w.Resource = nil, nil
		if diff := compareStubs(g, w); diff != "" {
			t.Errorf("span %q after the trip: %s", w.Name, diff)
		}
	}
}

// compareStubs names the first field in which got and want differ.
func compareStubs(got, want tracetest.SpanStub) string {
	gotAttrs, wantAttrs := attribute.NewSet(got.Attributes...), attribute.NewSet(want.Attributes...)
	switch {
	case got.Name != want.Name:
		return "name " + got.Name
	case !got.SpanContext.Equal(want.SpanContext):
		return "span context"
	case got.SpanContext.TraceState().String() != want.SpanContext.TraceState().String():
		return "trace state " + got.SpanContext.TraceState().String()
	case !got.Parent.Equal(want.Parent) || got.Parent.IsRemote() != want.Parent.IsRemote():
		return "parent"
	case got.SpanKind != want.SpanKind:
		return "kind " + got.SpanKind.String()
	case !gotAttrs.Equals(&wantAttrs) || len(got.Attributes) != len(want.Attributes):
		return "attributes"
	case len(got.Events) != len(want.Events) || (len(got.Events) > 0 && (got.Events[0].Name != want.Events[0].Name || len(got.Events[0].Attributes) != len(want.Events[0].Attributes))):
		return "events"
	case len(got.Links) != len(want.Links) || (len(got.Links) > 0 && !got.Links[0].SpanContext.Equal(want.Links[0].SpanContext)):
		return "links"
	case got.Status != want.Status:
		return "status " + got.Status.Description
	case got.InstrumentationScope != want.InstrumentationScope:
		return "scope " + got.InstrumentationScope.Name
	}
	return ""
}

func TestReceiverRefusesABatchThatDoesNotDecode(t *testing.T) {
	r := NewReceiver(tracetest.NewSpanRecorder())
	bad, err := proto.Marshal(&flowv2.ExportSpansRequest{Spans: []*flowv2.Span{{Name: "no ids"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, batch := range [][]byte{[]byte("\xff\xff not protobuf"), bad} {
		if err := r.ExportSpans(t.Context(), batch); plugin.ErrorCode(err) != plugin.CodeInvalidRequest {
			t.Errorf("ExportSpans(%q) = %v, want invalid_request", batch, err)
		}
	}
}

// fakeHost is the host's span service as a plugin's exporter calls it.
type fakeHost struct {
	flowv2.HostServiceClient
	err   error
	calls int
}

func (h *fakeHost) ExportSpans(context.Context, *flowv2.ExportSpansRequest, ...grpc.CallOption) (*flowv2.ExportSpansResponse, error) {
	h.calls++
	return &flowv2.ExportSpansResponse{}, h.err
}

func TestExporterDropsSpansTheHostDoesNotTake(t *testing.T) {
	spans := recordSpans(t)
	link := &hostlink.Link{}
	exp := &exporter{link: link}
	// Not configured yet, or configured by a host that takes no spans.
	if err := exp.ExportSpans(t.Context(), spans); err != nil {
		t.Fatalf("without a host: %v", err)
	}

	host := &fakeHost{}
	link.Set(host)
	if err := exp.ExportSpans(t.Context(), spans); err != nil || host.calls != 1 {
		t.Fatalf("to a host that takes spans: %v after %d calls", err, host.calls)
	}
	host.err = errors.New("connection reset")
	if err := exp.ExportSpans(t.Context(), spans); err == nil {
		t.Errorf("a failed export was not reported")
	}
	// A host that does not know the method after all: spans are dropped
	// from then on, without asking again.
	host.err = status.Error(grpccodes.Unimplemented, "unknown method ExportSpans")
	for range 2 {
		if err := exp.ExportSpans(t.Context(), spans); err != nil {
			t.Errorf("to a host without ExportSpans: %v", err)
		}
	}
	if host.calls != 3 {
		t.Errorf("the host was asked %d times, want 3", host.calls)
	}
}

func TestSetupOutsideServeSetsUpNothing(t *testing.T) {
	tp, stop, err := Setup(t.Context(), "paysidecar-plugin-test")
	defer stop()
	if tp != nil || err != nil {
		t.Errorf("Setup outside Serve = %v, %v; want nothing", tp, err)
	}
}

func TestSpansAreRecordedOnlyWhileTheHostTakesThem(t *testing.T) {
	link := &hostlink.Link{}
	tp, stop, err := Setup(hostlink.NewContext(t.Context(), link), "paysidecar-plugin-test")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	tr := tp.Tracer("test")
	parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled, Remote: true})
	ctx := trace.ContextWithRemoteSpanContext(t.Context(), parent)

	_, s := tr.Start(ctx, "before the host takes spans")
	if s.IsRecording() || !s.SpanContext().Equal(parent) {
		t.Errorf("without a host that takes spans: recording %v, context %v; want the host's context passed on", s.IsRecording(), s.SpanContext())
	}
	s.End()

	link.Set(&fakeHost{})
	_, s = tr.Start(ctx, "once it does")
	if !s.IsRecording() || s.SpanContext().TraceID() != parent.TraceID() || !s.SpanContext().IsSampled() {
		t.Errorf("with a host that takes spans: recording %v, context %v; want a sampled span in the host's trace", s.IsRecording(), s.SpanContext())
	}
	s.End()
	_, s = tr.Start(t.Context(), "in no trace of the host's")
	if s.IsRecording() {
		t.Errorf("a span outside the host's traces is recorded")
	}
	s.End()
}
