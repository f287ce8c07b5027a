package plugin_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/plugin/mockflow"
	"github.com/paysidecar/paysidecar/sdk/plugin/plugintest"
	"github.com/paysidecar/paysidecar/sdk/upstream"
)

// TestRoundTrip sends every field of every method through the contract and
// checks that both sides see exactly what the other sent.
func TestRoundTrip(t *testing.T) {
	ctx := t.Context()
	order := plugin.OrderInput{
		MerchantID:  "6666000100000001",
		PaymentID:   "pay_01",
		OutTradeNo:  "ORDER-1",
		AmountFen:   12345,
		Description: "咖啡 x1",
		Buyer:       plugin.Buyer{OpenID: "o-1", AppID: "wx-app", Code: "c-1"},
		ClientIP:    "203.0.113.7",
		Metadata:    map[string]string{"k": "v"},
	}
	shape := plugin.OrderShape{
		TradeType: "T_JSAPI",
		Fields:    map[string]string{"wx_data": `{"sub_appid":"wx-app","sub_openid":"o-1"}`},
		Buyer:     plugin.Identity{OpenID: "o-1", UnionID: "u-1", AppID: "wx-app"},
	}
	ppIn := plugin.PayParamsInput{PaymentID: "pay_01", OutTradeNo: "ORDER-1", TradeType: "T_JSAPI",
		Upstream: map[string]string{"pay_info": "{}", "nkp_seq_id": "N1"}}
	pp := plugin.PayParams{Kind: upstream.KindWeChatJSAPI, JSON: []byte(`{"appId":"wx"}`)}
	nIn := plugin.NotificationInput{TradeType: "T_JSAPI", Fields: map[string]string{"wx_response": "{}"}}
	detail := plugin.ChannelDetail{Channel: "wechat", BuyerID: "o-1", ChannelTradeNo: "42000", Extra: map[string]string{"bank_type": "CMC"}}
	aIn := plugin.AuthorizeInput{RedirectURI: "https://shop.example/cb", Scope: "snsapi_base", State: "s1"}
	eIn := plugin.ExchangeInput{Code: "c-1", AppID: "wx-app"}
	ident := plugin.Identity{OpenID: "o-1", UnionID: "u-1", AppID: "wx-app"}

	var seen struct {
		order plugin.OrderInput
		pp    plugin.PayParamsInput
		n     plugin.NotificationInput
		a     plugin.AuthorizeInput
		e     plugin.ExchangeInput
	}
	mock := mockflow.New(nil)
	mock.Override(mockflow.Funcs{
		ShapeOrder: func(_ context.Context, in plugin.OrderInput) (plugin.OrderShape, error) {
			seen.order = in
			return shape, nil
		},
		PayParams: func(_ context.Context, in plugin.PayParamsInput) (plugin.PayParams, error) {
			seen.pp = in
			return pp, nil
		},
		DecodeNotification: func(_ context.Context, in plugin.NotificationInput) (plugin.ChannelDetail, error) {
			seen.n = in
			return detail, nil
		},
		AuthorizeURL: func(_ context.Context, in plugin.AuthorizeInput) (string, error) {
			seen.a = in
			return "https://auth.example/x", nil
		},
		ExchangeCode: func(_ context.Context, in plugin.ExchangeInput) (plugin.Identity, error) {
			seen.e = in
			return ident, nil
		},
	})
	f := plugintest.Serve(t, mock)

	info, err := f.Info(ctx)
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if info.Name != mockflow.Name || info.TradeType != "T_JSAPI" || info.Version != mockflow.Version {
		t.Errorf("Info = %+v", info)
	}
	if !reflect.DeepEqual(info.APIVersions, plugin.APIVersions()) {
		t.Errorf("APIVersions = %v, want the SDK's %v", info.APIVersions, plugin.APIVersions())
	}
	if !info.Supports(plugin.CapAuthorizeURL) || !info.Supports(plugin.CapExchangeCode) {
		t.Errorf("capabilities = %v", info.Capabilities)
	}
	var secret bool
	for _, s := range info.Settings {
		if s.Key == "app_secret" {
			secret = s.Secret
		}
	}
	if !secret {
		t.Errorf("setting app_secret not reported as secret: %+v", info.Settings)
	}
	if err := f.Configure(ctx, plugin.Settings{"label": "L", "app_id": "wx-app"}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if got := mock.Settings(); !reflect.DeepEqual(got, plugin.Settings{"label": "L", "app_id": "wx-app"}) {
		t.Errorf("settings seen by the flow = %v", got)
	}

	gotShape, err := f.ShapeOrder(ctx, order)
	if err != nil {
		t.Fatalf("ShapeOrder: %v", err)
	}
	if !reflect.DeepEqual(seen.order, order) {
		t.Errorf("flow saw order %+v, want %+v", seen.order, order)
	}
	if !reflect.DeepEqual(gotShape, shape) {
		t.Errorf("ShapeOrder = %+v, want %+v", gotShape, shape)
	}

	gotPP, err := f.PayParams(ctx, ppIn)
	if err != nil {
		t.Fatalf("PayParams: %v", err)
	}
	if !reflect.DeepEqual(seen.pp, ppIn) || !reflect.DeepEqual(gotPP, pp) {
		t.Errorf("PayParams: flow saw %+v, host got %+v", seen.pp, gotPP)
	}

	gotDetail, err := f.DecodeNotification(ctx, nIn)
	if err != nil {
		t.Fatalf("DecodeNotification: %v", err)
	}
	if !reflect.DeepEqual(seen.n, nIn) || !reflect.DeepEqual(gotDetail, detail) {
		t.Errorf("DecodeNotification: flow saw %+v, host got %+v", seen.n, gotDetail)
	}

	gotURL, err := f.AuthorizeURL(ctx, aIn)
	if err != nil {
		t.Fatalf("AuthorizeURL: %v", err)
	}
	if seen.a != aIn || gotURL != "https://auth.example/x" {
		t.Errorf("AuthorizeURL: flow saw %+v, host got %q", seen.a, gotURL)
	}

	gotIdent, err := f.ExchangeCode(ctx, eIn)
	if err != nil {
		t.Fatalf("ExchangeCode: %v", err)
	}
	if seen.e != eIn || gotIdent != ident {
		t.Errorf("ExchangeCode: flow saw %+v, host got %+v", seen.e, gotIdent)
	}
}

// TestZeroIdentityStaysZero checks that an order shape without a resolved
// buyer arrives without one.
func TestZeroIdentityStaysZero(t *testing.T) {
	mock := mockflow.New(nil)
	mock.Override(mockflow.Funcs{ShapeOrder: func(context.Context, plugin.OrderInput) (plugin.OrderShape, error) {
		return plugin.OrderShape{TradeType: "A_NATIVE"}, nil
	}})
	f := plugintest.Serve(t, mock)
	got, err := f.ShapeOrder(t.Context(), plugin.OrderInput{})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Buyer.IsZero() || got.TradeType != "A_NATIVE" {
		t.Errorf("ShapeOrder = %+v", got)
	}
}

// TestErrorsCrossTheBoundary checks that each kind of failure arrives on
// the host side as the error the contract promises.
func TestErrorsCrossTheBoundary(t *testing.T) {
	codes := []string{
		plugin.CodeInvalidRequest, plugin.CodeInvalidBuyer, plugin.CodeUnsupported, plugin.CodeCodeInvalid,
		plugin.CodeCodeExchangeFailed, plugin.CodeChannelUnavailable, plugin.CodeInternal, "future_code",
	}
	for _, code := range codes {
		t.Run(code, func(t *testing.T) {
			mock := mockflow.New(nil)
			want := &plugin.Error{Code: code, Message: "went wrong: " + code, Field: "buyer.openid"}
			mock.SetError("ExchangeCode", want)
			f := plugintest.Serve(t, mock)
			_, err := f.ExchangeCode(t.Context(), plugin.ExchangeInput{Code: "x"})
			var pe *plugin.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *plugin.Error", err, err)
			}
			if *pe != *want {
				t.Errorf("error = %+v, want %+v", pe, want)
			}
			if errors.Is(err, plugin.ErrTransport) {
				t.Errorf("a flow's answer is reported as a transport failure: %v", err)
			}
			if !errors.Is(err, &plugin.Error{Code: code}) {
				t.Errorf("errors.Is by code fails for %v", err)
			}
			if plugin.ErrorCode(err) != code {
				t.Errorf("ErrorCode = %q, want %q", plugin.ErrorCode(err), code)
			}
		})
	}

	t.Run("plain error becomes internal", func(t *testing.T) {
		mock := mockflow.New(nil)
		mock.SetError("PayParams", fmt.Errorf("disk on fire"))
		f := plugintest.Serve(t, mock)
		_, err := f.PayParams(t.Context(), plugin.PayParamsInput{})
		var pe *plugin.Error
		if !errors.As(err, &pe) || pe.Code != plugin.CodeInternal || !strings.Contains(pe.Message, "disk on fire") {
			t.Fatalf("error = %v, want internal carrying the message", err)
		}
	})

	t.Run("panic becomes internal and the server lives on", func(t *testing.T) {
		f := plugintest.Serve(t, mockflow.New(nil))
		_, err := f.ShapeOrder(t.Context(), plugin.OrderInput{Metadata: map[string]string{"mock.panic": "true"}})
		if plugin.ErrorCode(err) != plugin.CodeInternal {
			t.Fatalf("error = %v, want internal", err)
		}
		if _, err := f.ShapeOrder(t.Context(), plugin.OrderInput{PaymentID: "p"}); err != nil {
			t.Fatalf("call after a panic: %v", err)
		}
	})

	t.Run("caller's deadline", func(t *testing.T) {
		f := plugintest.Serve(t, mockflow.New(nil))
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err := f.ShapeOrder(ctx, plugin.OrderInput{Metadata: map[string]string{"mock.block": "true"}})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error = %v, want context.DeadlineExceeded", err)
		}
		if errors.Is(err, plugin.ErrTransport) {
			t.Errorf("the caller's deadline is reported as a transport failure: %v", err)
		}
	})

	t.Run("caller's cancellation", func(t *testing.T) {
		f := plugintest.Serve(t, mockflow.New(nil))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := f.AuthorizeURL(ctx, plugin.AuthorizeInput{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error = %v, want context.Canceled", err)
		}
	})
}

// TestConfigureRefusesUnknownSettings checks that a misspelt setting fails
// with the key named, and that the flow never sees the settings.
func TestConfigureRefusesUnknownSettings(t *testing.T) {
	mock := mockflow.New(nil)
	f := plugintest.Serve(t, mock)
	err := f.Configure(t.Context(), plugin.Settings{"label": "x", "app_secert": "s", "zzz": "1"})
	var pe *plugin.Error
	if !errors.As(err, &pe) || pe.Code != plugin.CodeInvalidRequest || pe.Field != "app_secert" {
		t.Fatalf("error = %v, want invalid_request naming app_secert", err)
	}
	if strings.Contains(err.Error(), `"s"`) {
		t.Errorf("error reveals a value: %v", err)
	}
	for _, c := range mock.Calls() {
		if c == "Configure" {
			t.Errorf("the flow was configured with unknown settings")
		}
	}
	if err := f.Configure(t.Context(), plugin.Settings{"fail_configure": "nope"}); plugin.ErrorCode(err) != plugin.CodeInvalidRequest {
		t.Errorf("failing Configure: error = %v", err)
	}
}

// TestTransportFailure checks that calls on a connection whose server is
// gone wrap ErrTransport.
func TestTransportFailure(t *testing.T) {
	var f plugin.Flow
	t.Run("serve", func(t *testing.T) {
		f = plugintest.Serve(t, mockflow.New(nil))
		if _, err := f.Info(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
	// The subtest's cleanup stopped the server and closed the connection.
	_, err := f.Info(t.Context())
	if !errors.Is(err, plugin.ErrTransport) {
		t.Fatalf("error = %v, want ErrTransport", err)
	}
	if plugin.ErrorCode(err) != plugin.CodeInternal {
		t.Errorf("ErrorCode of a transport failure = %q", plugin.ErrorCode(err))
	}
}

// TestTracePropagates checks that a span started by the host is the
// parent of the plugin's server span, and that baggage arrives.
func TestTracePropagates(t *testing.T) {
	hostRec := tracetest.NewSpanRecorder()
	hostTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(hostRec))
	pluginRec := tracetest.NewSpanRecorder()
	pluginTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(pluginRec))
	t.Cleanup(func() {
		_ = hostTP.Shutdown(context.Background())
		_ = pluginTP.Shutdown(context.Background())
	})
	f := plugintest.Serve(t, mockflow.New(nil),
		plugintest.WithClientTracerProvider(hostTP), plugintest.WithServerTracerProvider(pluginTP))

	member, err := baggage.NewMember("tenant", "t-42")
	if err != nil {
		t.Fatal(err)
	}
	bag, err := baggage.New(member)
	if err != nil {
		t.Fatal(err)
	}
	ctx, root := hostTP.Tracer("test").Start(baggage.ContextWithBaggage(t.Context(), bag), "create payment")
	shape, err := f.ShapeOrder(ctx, plugin.OrderInput{PaymentID: "p"})
	root.End()
	if err != nil {
		t.Fatal(err)
	}

	// The server ends its span after sending the answer, so it may be
	// recorded a moment after the call returns.
	var clientSpan, serverSpan sdktrace.ReadOnlySpan
	deadline := time.Now().Add(5 * time.Second)
	for (clientSpan == nil || serverSpan == nil) && time.Now().Before(deadline) {
		for _, s := range hostRec.Ended() {
			if s.SpanKind() == trace.SpanKindClient {
				clientSpan = s
			}
		}
		for _, s := range pluginRec.Ended() {
			if s.SpanKind() == trace.SpanKindServer {
				serverSpan = s
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if clientSpan == nil || serverSpan == nil {
		t.Fatalf("missing spans: client %v, server %v", clientSpan, serverSpan)
	}
	if clientSpan.Parent().SpanID() != root.SpanContext().SpanID() {
		t.Errorf("client span's parent = %s, want the host's span %s", clientSpan.Parent().SpanID(), root.SpanContext().SpanID())
	}
	if serverSpan.Parent().SpanID() != clientSpan.SpanContext().SpanID() || !serverSpan.Parent().IsRemote() {
		t.Errorf("server span's parent = %s, want the remote client span %s", serverSpan.Parent().SpanID(), clientSpan.SpanContext().SpanID())
	}
	if got := shape.Fields["trace_id"]; got != root.SpanContext().TraceID().String() {
		t.Errorf("plugin saw trace %s, want %s", got, root.SpanContext().TraceID())
	}
	if got := shape.Fields["span_id"]; got != serverSpan.SpanContext().SpanID().String() {
		t.Errorf("plugin's context carries span %s, want its server span %s", got, serverSpan.SpanContext().SpanID())
	}
	if got := shape.Fields["baggage"]; got != "tenant=t-42" {
		t.Errorf("plugin saw baggage %q", got)
	}
}
