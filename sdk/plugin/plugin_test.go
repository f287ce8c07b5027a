package plugin_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"

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
		Upstream: map[string]string{"pay_info": "{}", "nkp_seq_id": "N1"}, MerchantID: "6666000100000001"}
	pp := plugin.PayParams{Kind: upstream.KindWeChatJSAPI, JSON: []byte(`{"appId":"wx"}`)}
	aIn := plugin.AuthorizeInput{RedirectURI: "https://shop.example/cb", Scope: "snsapi_base", State: "s1", MerchantID: "6666000100000002"}
	eIn := plugin.ExchangeInput{Code: "c-1", AppID: "wx-app", MerchantID: "6666000100000003"}
	ident := plugin.Identity{OpenID: "o-1", UnionID: "u-1", AppID: "wx-app"}

	var seen struct {
		order plugin.OrderInput
		pp    plugin.PayParamsInput
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
	if info.Name != mockflow.Name || info.TradeType != "T_JSAPI" || info.Version != mockflow.Version || info.Buyer != plugin.BuyerOptional {
		t.Errorf("Info = %+v", info)
	}
	if !reflect.DeepEqual(info.APIVersions, plugin.APIVersions()) {
		t.Errorf("APIVersions = %v, want the SDK's %v", info.APIVersions, plugin.APIVersions())
	}
	if !info.Supports(plugin.CapAuthorizeURL) || !info.Supports(plugin.CapExchangeCode) {
		t.Errorf("capabilities = %v", info.Capabilities)
	}
	if !reflect.DeepEqual(info.Settings, mockflow.Schema) {
		t.Errorf("schema crossed as %+v, want %+v", info.Settings, mockflow.Schema)
	}
	env := plugin.Environment{Sandbox: true, SandboxURL: "http://127.0.0.1:8900"}
	if _, err := plugintest.Configure(ctx, f, map[string]string{"label": "L", "app_id": "wx-app", "max_fen": "50000"}, plugin.Config{Environment: env, APIVersion: 2}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	c := mock.Config()
	if c.Settings.Get("label") != "L" || c.Settings.Get("app_id") != "wx-app" || c.Settings.Int("max_fen") != 50000 || c.APIVersion != 2 || c.Environment != env {
		t.Errorf("configuration seen by the flow = %v, version %d, environment %+v", c.Settings, c.APIVersion, c.Environment)
	}
	if got := c.Settings.Get("callback_url"); got != "http://127.0.0.1:8900/mock" {
		t.Errorf("sandbox default of callback_url = %q", got)
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

	if err := f.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	mock.SetError("Check", plugin.Errorf(plugin.CodeInternal, "", "lost my state"))
	if err := f.Check(ctx); plugin.ErrorCode(err) != plugin.CodeInternal || !strings.Contains(err.Error(), "lost my state") {
		t.Errorf("failing Check: %v", err)
	}
}

// TestHostServices has the mock sign, verify and log through the host's
// services over go-plugin's broker, with keys only the host holds.
func TestHostServices(t *testing.T) {
	ctx := t.Context()
	merchant, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	host := plugintest.NewHost()
	host.AddKey("merchant", merchant)
	host.AddPublicKey("other", &other.PublicKey)
	mock := mockflow.New(nil)
	f := plugintest.Serve(t, mock)
	const secret = "s3cr3t-app-value"
	if _, err := plugintest.Configure(ctx, f, map[string]string{"app_secret": secret, "verbose": "true"}, plugin.Config{Host: host, HostKeys: host.Keys()}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if got := mock.Config().HostKeys; !reflect.DeepEqual(got, []string{"merchant", "other"}) {
		t.Errorf("HostKeys = %v", got)
	}

	s, err := f.ShapeOrder(ctx, plugin.OrderInput{PaymentID: "pay_signed", Metadata: map[string]string{"mock.sign": "merchant", "mock.log": "hello from the flow"}})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := base64.StdEncoding.DecodeString(s.Fields["signature"])
	if err != nil {
		t.Fatalf("signature %q: %v", s.Fields["signature"], err)
	}
	sum := sha256.Sum256([]byte("pay_signed"))
	if err := rsa.VerifyPKCS1v15(&merchant.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		t.Errorf("the host's signature does not verify with the merchant key: %v", err)
	}
	if s.Fields["verified"] != "true" {
		t.Errorf("verify with the signing key = %q", s.Fields["verified"])
	}

	s, err = f.ShapeOrder(ctx, plugin.OrderInput{PaymentID: "pay_signed", Metadata: map[string]string{"mock.sign": "merchant", "mock.verify": "other"}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Fields["verified"] != "false" {
		t.Errorf("verify with another key = %q, want false", s.Fields["verified"])
	}
	s, err = f.ShapeOrder(ctx, plugin.OrderInput{PaymentID: "p", Metadata: map[string]string{"mock.sign": "nobody"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.Fields["signature"], "invalid_request") || !strings.Contains(s.Fields["signature"], "nobody") {
		t.Errorf("signing with an unknown key = %q", s.Fields["signature"])
	}
	s, err = f.ShapeOrder(ctx, plugin.OrderInput{PaymentID: "p", Metadata: map[string]string{"mock.sign": "other"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.Fields["signature"], "error: ") {
		t.Errorf("signing with a public key = %q", s.Fields["signature"])
	}

	var configured, hello, debug bool
	for _, r := range host.Records() {
		switch r.Message {
		case "mock configured":
			configured = r.Attrs["settings.app_secret"] == "[redacted]" && r.Attrs["api_version"] == "2" && r.Level == slog.LevelInfo
		case "hello from the flow":
			hello = r.Attrs["payment_id"] == "pay_signed"
		case "mock call":
			debug = debug || r.Attrs["method"] == "ShapeOrder"
		}
		for k, v := range r.Attrs {
			if strings.Contains(v, secret) && k != "secret" {
				t.Errorf("record %q carries the secret in %s", r.Message, k)
			}
		}
	}
	if !configured || !hello || !debug {
		t.Errorf("records through the host: configured %v, hello %v, verbose %v: %+v", configured, hello, debug, host.Records())
	}
}

// TestUnsupportedFlow checks what the embeddable base answers.
func TestUnsupportedFlow(t *testing.T) {
	type minimal struct{ plugin.UnsupportedFlow }
	var b minimal
	if err := b.Configure(t.Context(), plugin.Config{}); err != nil {
		t.Errorf("Configure: %v", err)
	}
	if err := b.Check(t.Context()); err != nil {
		t.Errorf("Check: %v", err)
	}
	if _, err := b.AuthorizeURL(t.Context(), plugin.AuthorizeInput{}); plugin.ErrorCode(err) != plugin.CodeUnsupported {
		t.Errorf("AuthorizeURL: %v", err)
	}
	if _, err := b.ExchangeCode(t.Context(), plugin.ExchangeInput{}); plugin.ErrorCode(err) != plugin.CodeUnsupported {
		t.Errorf("ExchangeCode: %v", err)
	}
	if _, err := b.LaunchLinks(t.Context(), plugin.LaunchInput{}); plugin.ErrorCode(err) != plugin.CodeUnsupported {
		t.Errorf("LaunchLinks: %v", err)
	}
}

// TestLaunchLinksRoundTrip sends every field of LaunchLinks through the
// contract.
func TestLaunchLinksRoundTrip(t *testing.T) {
	ctx := t.Context()
	in := plugin.LaunchInput{MerchantID: "6666000100000001", CheckoutID: "chk_1", OutTradeNo: "ORDER-1",
		ExpiresAt: time.Unix(1767225600, 0).UTC(), Query: "checkout=chk_1"}
	want := plugin.LaunchLinks{
		URLScheme: "weixin://dl/business/?t=abc", URLSchemeExpiresAt: time.Unix(1767225000, 0).UTC(),
		URLLink: "https://wxaurl.cn/xyz", URLLinkExpiresAt: time.Unix(1767225100, 0).UTC(),
		PlainScheme: "weixin://dl/business/?appid=wx1&path=pages%2Fpay&query=checkout%3Dchk_1",
		App:         &plugin.AppLaunch{UserName: "gh_1", Path: "pages/pay?checkout=chk_1", MiniProgramType: 2},
	}
	var seen plugin.LaunchInput
	mock := mockflow.New(nil)
	mock.Override(mockflow.Funcs{LaunchLinks: func(_ context.Context, got plugin.LaunchInput) (plugin.LaunchLinks, error) {
		seen = got
		return want, nil
	}})
	f := plugintest.Serve(t, mock)
	if _, err := plugintest.Configure(ctx, f, nil, plugin.Config{}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	got, err := f.LaunchLinks(ctx, in)
	if err != nil {
		t.Fatalf("LaunchLinks: %v", err)
	}
	if seen != in {
		t.Errorf("flow saw %+v, want %+v", seen, in)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LaunchLinks = %+v, want %+v", got, want)
	}
	mock.Override(mockflow.Funcs{})
	got, err = f.LaunchLinks(ctx, plugin.LaunchInput{Query: "checkout=chk_2"})
	if err != nil || got.App == nil || got.URLLink != "" || !got.URLSchemeExpiresAt.IsZero() {
		t.Errorf("LaunchLinks without expiry or link = %+v, %v", got, err)
	}
}

// TestMerchantSettings checks that a service provider's merchants reach
// the flow with their own per-merchant settings over the flow's, and that
// a merchant's value of a setting that is not per merchant is refused.
func TestMerchantSettings(t *testing.T) {
	ctx := t.Context()
	mock := mockflow.New(nil)
	f := plugintest.Serve(t, mock)
	raw := map[string]string{"label": "L", "app_id": "wx-provider", "app_secret": "provider-secret"}
	m1, err := mockflow.Schema.ApplyMerchant("m1", raw, map[string]string{"app_id": "wx-m1", "app_secret": "m1-secret"}, plugin.Environment{})
	if err != nil {
		t.Fatalf("ApplyMerchant: %v", err)
	}
	if _, err := plugintest.Configure(ctx, f, raw, plugin.Config{Merchants: map[string]plugin.Settings{"m1": m1}}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	c := mock.Config()
	if got := c.ForMerchant("m1"); got.Get("app_id") != "wx-m1" || got.Get("app_secret") != "m1-secret" || got.Get("label") != "L" {
		t.Errorf("merchant m1's settings in the flow = %v", got)
	}
	if got := c.ForMerchant("m2"); got.Get("app_id") != "wx-provider" {
		t.Errorf("a merchant without settings of its own got app_id %q", got.Get("app_id"))
	}
	links, err := f.LaunchLinks(ctx, plugin.LaunchInput{MerchantID: "m1", Query: "checkout=c"})
	if err != nil || !strings.Contains(links.PlainScheme, "appid=wx-m1&") {
		t.Errorf("LaunchLinks for m1 = %+v, %v", links, err)
	}
	_, err = mockflow.Schema.ApplyMerchant("m1", raw, map[string]string{"label": "mine", "app_secret": "s"}, plugin.Environment{})
	var se *plugin.SettingsError
	if !errors.As(err, &se) || se.Problems[0].Key != "merchants.m1.label" || strings.Contains(err.Error(), "mine") {
		t.Errorf("a merchant's own label: %v", err)
	}
	_, err = mockflow.Schema.ApplyMerchant("m1", raw, map[string]string{"app_id": ""}, plugin.Environment{})
	if err != nil {
		t.Errorf("a blank merchant app_id takes the default: %v", err)
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

// TestConfigureEnforcesTheSchema checks that settings the schema refuses
// never reach the flow, and that the error names the setting without
// showing a secret value.
func TestConfigureEnforcesTheSchema(t *testing.T) {
	mock := mockflow.New(nil)
	f := plugintest.Serve(t, mock)
	_, err := plugintest.Configure(t.Context(), f, map[string]string{"label": "x", "app_secert": "hush-hush", "max_fen": "many"}, plugin.Config{})
	var se *plugin.SettingsError
	if !errors.As(err, &se) || len(se.Problems) != 2 || se.Problems[0].Key != "app_secert" || se.Problems[1].Key != "max_fen" {
		t.Fatalf("error = %v, want the unknown key and the bad integer", err)
	}
	if strings.Contains(err.Error(), "hush-hush") || strings.Contains(err.Error(), "many") {
		t.Errorf("error reveals a value: %v", err)
	}
	for _, c := range mock.Calls() {
		if c == "Configure" {
			t.Errorf("the flow was configured with refused settings")
		}
	}
	var pe *plugin.Error
	if _, err := plugintest.Configure(t.Context(), f, map[string]string{"fail_configure": "nope"}, plugin.Config{}); !errors.As(err, &pe) || pe.Code != plugin.CodeInvalidRequest || pe.Field != "fail_configure" {
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
