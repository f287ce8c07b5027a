package hosttrace

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv2"
)

// spanToProto is the wire form of a finished span.
func spanToProto(s sdktrace.ReadOnlySpan) *flowv2.Span {
	sc := s.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	out := &flowv2.Span{
		TraceId:           tid[:],
		SpanId:            sid[:],
		TraceFlags:        uint32(sc.TraceFlags()),
		TraceState:        sc.TraceState().String(),
		Name:              s.Name(),
		Kind:              flowv2.SpanKind(s.SpanKind()),
		StartUnixNano:     s.StartTime().UnixNano(),
		EndUnixNano:       s.EndTime().UnixNano(),
		Attributes:        attrsToProto(s.Attributes()),
		StatusCode:        flowv2.StatusCode(s.Status().Code),
		StatusMessage:     s.Status().Description,
		ScopeName:         s.InstrumentationScope().Name,
		ScopeVersion:      s.InstrumentationScope().Version,
		DroppedAttributes: int32(s.DroppedAttributes()),
		DroppedEvents:     int32(s.DroppedEvents()),
		DroppedLinks:      int32(s.DroppedLinks()),
	}
	if p := s.Parent(); p.IsValid() {
		pid := p.SpanID()
		out.ParentSpanId, out.ParentRemote = pid[:], p.IsRemote()
	}
	for _, e := range s.Events() {
		out.Events = append(out.Events, &flowv2.SpanEvent{Name: e.Name, TimeUnixNano: e.Time.UnixNano(), Attributes: attrsToProto(e.Attributes)})
	}
	for _, l := range s.Links() {
		tid, sid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
		out.Links = append(out.Links, &flowv2.SpanLink{
			TraceId: tid[:], SpanId: sid[:], TraceFlags: uint32(l.SpanContext.TraceFlags()),
			TraceState: l.SpanContext.TraceState().String(), Attributes: attrsToProto(l.Attributes),
		})
	}
	return out
}

// spanFromProto rebuilds a finished span of the resource res from its
// wire form.
func spanFromProto(s *flowv2.Span, res *resource.Resource) (sdktrace.ReadOnlySpan, error) {
	sc, err := spanContext(s.GetTraceId(), s.GetSpanId(), s.GetTraceFlags(), s.GetTraceState(), false)
	if err != nil {
		return nil, fmt.Errorf("span %q: %w", s.GetName(), err)
	}
	var parent trace.SpanContext
	if len(s.GetParentSpanId()) > 0 {
		parent, err = spanContext(s.GetTraceId(), s.GetParentSpanId(), s.GetTraceFlags(), s.GetTraceState(), s.GetParentRemote())
		if err != nil {
			return nil, fmt.Errorf("parent of span %q: %w", s.GetName(), err)
		}
	}
	kind := trace.SpanKind(s.GetKind())
	if kind < trace.SpanKindUnspecified || kind > trace.SpanKindConsumer {
		kind = trace.SpanKindUnspecified
	}
	code := codes.Code(s.GetStatusCode())
	if code > codes.Ok {
		code = codes.Unset
	}
	stub := tracetest.SpanStub{
		Name:                 s.GetName(),
		SpanContext:          sc,
		Parent:               parent,
		SpanKind:             kind,
		StartTime:            time.Unix(0, s.GetStartUnixNano()),
		EndTime:              time.Unix(0, s.GetEndUnixNano()),
		Attributes:           attrsFromProto(s.GetAttributes()),
		Status:               sdktrace.Status{Code: code, Description: s.GetStatusMessage()},
		DroppedAttributes:    int(s.GetDroppedAttributes()),
		DroppedEvents:        int(s.GetDroppedEvents()),
		DroppedLinks:         int(s.GetDroppedLinks()),
		Resource:             res,
		InstrumentationScope: instrumentation.Scope{Name: s.GetScopeName(), Version: s.GetScopeVersion()},
	}
	for _, e := range s.GetEvents() {
		stub.Events = append(stub.Events, sdktrace.Event{Name: e.GetName(), Time: time.Unix(0, e.GetTimeUnixNano()), Attributes: attrsFromProto(e.GetAttributes())})
	}
	for _, l := range s.GetLinks() {
		lsc, err := spanContext(l.GetTraceId(), l.GetSpanId(), l.GetTraceFlags(), l.GetTraceState(), false)
		if err != nil {
			return nil, fmt.Errorf("link of span %q: %w", s.GetName(), err)
		}
		stub.Links = append(stub.Links, sdktrace.Link{SpanContext: lsc, Attributes: attrsFromProto(l.GetAttributes())})
	}
	return stub.Snapshot(), nil
}

// spanContext is the span context of the given wire fields; it must be
// valid.
func spanContext(traceID, spanID []byte, flags uint32, state string, remote bool) (trace.SpanContext, error) {
	var cfg trace.SpanContextConfig
	if len(traceID) != len(cfg.TraceID) || len(spanID) != len(cfg.SpanID) {
		return trace.SpanContext{}, errors.New("trace id or span id of the wrong length")
	}
	copy(cfg.TraceID[:], traceID)
	copy(cfg.SpanID[:], spanID)
	cfg.TraceFlags = trace.TraceFlags(flags)
	cfg.Remote = remote
	if state != "" {
		ts, err := trace.ParseTraceState(state)
		if err != nil {
			return trace.SpanContext{}, fmt.Errorf("trace state: %w", err)
		}
		cfg.TraceState = ts
	}
	sc := trace.NewSpanContext(cfg)
	if !sc.IsValid() {
		return trace.SpanContext{}, errors.New("invalid trace id or span id")
	}
	return sc, nil
}

// attrsToProto is the wire form of attributes. A value of a type the wire
// has no form for travels as its text.
func attrsToProto(kvs []attribute.KeyValue) []*flowv2.SpanAttr {
	if len(kvs) == 0 {
		return nil
	}
	out := make([]*flowv2.SpanAttr, 0, len(kvs))
	for _, kv := range kvs {
		a := &flowv2.SpanAttr{Key: string(kv.Key)}
		switch v := kv.Value; v.Type() {
		case attribute.STRING:
			a.Type, a.Strings = flowv2.AttrType_ATTR_TYPE_STRING, []string{v.AsString()}
		case attribute.BOOL:
			a.Type, a.Bools = flowv2.AttrType_ATTR_TYPE_BOOL, []bool{v.AsBool()}
		case attribute.INT64:
			a.Type, a.Ints = flowv2.AttrType_ATTR_TYPE_INT64, []int64{v.AsInt64()}
		case attribute.FLOAT64:
			a.Type, a.Doubles = flowv2.AttrType_ATTR_TYPE_FLOAT64, []float64{v.AsFloat64()}
		case attribute.STRINGSLICE:
			a.Type, a.Strings = flowv2.AttrType_ATTR_TYPE_STRING_SLICE, v.AsStringSlice()
		case attribute.BOOLSLICE:
			a.Type, a.Bools = flowv2.AttrType_ATTR_TYPE_BOOL_SLICE, v.AsBoolSlice()
		case attribute.INT64SLICE:
			a.Type, a.Ints = flowv2.AttrType_ATTR_TYPE_INT64_SLICE, v.AsInt64Slice()
		case attribute.FLOAT64SLICE:
			a.Type, a.Doubles = flowv2.AttrType_ATTR_TYPE_FLOAT64_SLICE, v.AsFloat64Slice()
		default:
			a.Type, a.Strings = flowv2.AttrType_ATTR_TYPE_STRING, []string{v.String()}
		}
		out = append(out, a)
	}
	return out
}

// attrsFromProto rebuilds attributes from their wire form, leaving out
// those of a type it does not know.
func attrsFromProto(as []*flowv2.SpanAttr) []attribute.KeyValue {
	if len(as) == 0 {
		return nil
	}
	out := make([]attribute.KeyValue, 0, len(as))
	for _, a := range as {
		k := attribute.Key(a.GetKey())
		switch a.GetType() {
		case flowv2.AttrType_ATTR_TYPE_STRING:
			if len(a.GetStrings()) == 1 {
				out = append(out, k.String(a.GetStrings()[0]))
			}
		case flowv2.AttrType_ATTR_TYPE_BOOL:
			if len(a.GetBools()) == 1 {
				out = append(out, k.Bool(a.GetBools()[0]))
			}
		case flowv2.AttrType_ATTR_TYPE_INT64:
			if len(a.GetInts()) == 1 {
				out = append(out, k.Int64(a.GetInts()[0]))
			}
		case flowv2.AttrType_ATTR_TYPE_FLOAT64:
			if len(a.GetDoubles()) == 1 {
				out = append(out, k.Float64(a.GetDoubles()[0]))
			}
		case flowv2.AttrType_ATTR_TYPE_STRING_SLICE:
			out = append(out, k.StringSlice(a.GetStrings()))
		case flowv2.AttrType_ATTR_TYPE_BOOL_SLICE:
			out = append(out, k.BoolSlice(a.GetBools()))
		case flowv2.AttrType_ATTR_TYPE_INT64_SLICE:
			out = append(out, k.Int64Slice(a.GetInts()))
		case flowv2.AttrType_ATTR_TYPE_FLOAT64_SLICE:
			out = append(out, k.Float64Slice(a.GetDoubles()))
		}
	}
	return out
}
