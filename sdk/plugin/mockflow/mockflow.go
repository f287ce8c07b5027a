// Package mockflow is a configurable flow for testing hosts. It runs
// in-process (through plugintest, or called directly) or as a real plugin
// binary (cmd/mockflow), so that a host's supervision tests can launch it,
// call it and kill it.
//
// In-process, its results and errors are set with Override and SetError.
// As a binary it is steered by its settings and by the metadata of each
// ShapeOrder call:
//
//   - setting "name" (default "mock") and "trade_type" (default T_JSAPI)
//     set what Info reports;
//   - setting "label" is echoed in ShapeOrder's fields, which lets a test
//     see that a restarted plugin was configured again;
//   - setting "fail_configure" makes Configure fail with its value as the
//     message;
//   - metadata "mock.error" makes ShapeOrder fail with that error code (and
//     "mock.field" as the field);
//   - metadata "mock.block" = "true" makes ShapeOrder log "mock call
//     blocked" and wait until its context ends;
//   - metadata "mock.panic" = "true" makes ShapeOrder panic;
//   - metadata "mock.trade_type" replaces the trade type ShapeOrder
//     answers (not the one Info reports);
//   - metadata "mock.print" is printed to the process's stderr with fmt,
//     bypassing the logger;
//   - metadata "mock.getenv" names an environment variable whose value
//     ShapeOrder reports in the field "env", so a host can check what its
//     plugins' environment holds.
//
// ShapeOrder's fields also report what the plugin saw: its process id
// ("pid"), the trace and span id of its context ("trace_id", "span_id")
// and the baggage ("baggage").
package mockflow

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"strconv"
	"sync"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"

	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/upstream"
)

// Name is the flow name the mock reports unless configured otherwise.
const Name = "mock"

// Kind is the kind of the mock's pay parameters.
const Kind = "mock"

// Version is the version the mock reports.
const Version = "0.0.0-mock"

// Funcs replace the mock's default behavior method by method; a nil field
// keeps the default.
type Funcs struct {
	// ShapeOrder replaces ShapeOrder.
	ShapeOrder func(ctx context.Context, in plugin.OrderInput) (plugin.OrderShape, error)
	// PayParams replaces PayParams.
	PayParams func(ctx context.Context, in plugin.PayParamsInput) (plugin.PayParams, error)
	// DecodeNotification replaces DecodeNotification.
	DecodeNotification func(ctx context.Context, in plugin.NotificationInput) (plugin.ChannelDetail, error)
	// AuthorizeURL replaces AuthorizeURL.
	AuthorizeURL func(ctx context.Context, in plugin.AuthorizeInput) (string, error)
	// ExchangeCode replaces ExchangeCode.
	ExchangeCode func(ctx context.Context, in plugin.ExchangeInput) (plugin.Identity, error)
}

// Flow is the mock flow. Its methods are safe for concurrent use.
type Flow struct {
	logger *slog.Logger

	mu         sync.Mutex
	settings   plugin.Settings
	configured bool
	funcs      Funcs
	errs       map[string]error
	calls      []string
}

var _ plugin.Flow = (*Flow)(nil)

// New returns a mock flow that logs to logger (nil discards).
func New(logger *slog.Logger) *Flow {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Flow{logger: logger, errs: map[string]error{}}
}

// Override replaces the default behavior of the methods whose field in fs
// is not nil.
func (f *Flow) Override(fs Funcs) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.funcs = fs
}

// SetError makes every call of method (e.g. "ShapeOrder") return err until
// it is set again; a nil err restores normal behavior.
func (f *Flow) SetError(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.errs, method)
		return
	}
	f.errs[method] = err
}

// Settings returns a copy of the settings of the last successful
// Configure.
func (f *Flow) Settings() plugin.Settings {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.settings)
}

// Calls returns the names of the methods called so far, in order.
func (f *Flow) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// enter records a call and returns the error set for method, if any.
func (f *Flow) enter(method string) (Funcs, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, method)
	return f.funcs, f.errs[method]
}

func (f *Flow) setting(key, def string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v := f.settings.Get(key); v != "" {
		return v
	}
	return def
}

// Info implements plugin.Flow.
func (f *Flow) Info(context.Context) (plugin.Info, error) {
	if _, err := f.enter("Info"); err != nil {
		return plugin.Info{}, err
	}
	return plugin.Info{
		Name:         f.setting("name", Name),
		Version:      Version,
		TradeType:    f.setting("trade_type", upstream.TradeWeChatJSAPI),
		Capabilities: []plugin.Capability{plugin.CapAuthorizeURL, plugin.CapExchangeCode},
		Settings: []plugin.SettingSpec{
			{Key: "name", Default: Name, Description: "Flow name the mock reports."},
			{Key: "trade_type", Default: upstream.TradeWeChatJSAPI, Description: "Trade type the mock reports."},
			{Key: "label", Description: "Value echoed in ShapeOrder's fields."},
			{Key: "fail_configure", Description: "Makes Configure fail with this message."},
			{Key: "app_id", Description: "App id reported by ExchangeCode."},
			{Key: "app_secret", Secret: true, Description: "Accepted and never used."},
		},
	}, nil
}

// Configure implements plugin.Flow.
func (f *Flow) Configure(_ context.Context, s plugin.Settings) error {
	if _, err := f.enter("Configure"); err != nil {
		return err
	}
	if msg := s.Get("fail_configure"); msg != "" {
		return &plugin.Error{Code: plugin.CodeInvalidRequest, Field: "fail_configure", Message: msg}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settings = maps.Clone(s)
	f.configured = true
	return nil
}

// ShapeOrder implements plugin.Flow.
func (f *Flow) ShapeOrder(ctx context.Context, in plugin.OrderInput) (plugin.OrderShape, error) {
	fs, err := f.enter("ShapeOrder")
	if err != nil {
		return plugin.OrderShape{}, err
	}
	if fs.ShapeOrder != nil {
		return fs.ShapeOrder(ctx, in)
	}
	if code := in.Metadata["mock.error"]; code != "" {
		return plugin.OrderShape{}, &plugin.Error{Code: code, Field: in.Metadata["mock.field"], Message: "mock error"}
	}
	if in.Metadata["mock.panic"] == "true" {
		panic("mock panic")
	}
	if text := in.Metadata["mock.print"]; text != "" {
		fmt.Fprintln(os.Stderr, text)
	}
	if in.Metadata["mock.block"] == "true" {
		f.logger.InfoContext(ctx, "mock call blocked", "payment_id", in.PaymentID)
		<-ctx.Done()
		return plugin.OrderShape{}, ctx.Err()
	}
	data, err := upstream.Encode(map[string]any{
		"payment_id":   in.PaymentID,
		"out_trade_no": in.OutTradeNo,
		"amount_fen":   in.AmountFen,
		"openid":       in.Buyer.OpenID,
	})
	if err != nil {
		return plugin.OrderShape{}, fmt.Errorf("encode mock_data: %w", err)
	}
	sc := trace.SpanContextFromContext(ctx)
	fields := map[string]string{
		"env":       os.Getenv(in.Metadata["mock.getenv"]),
		"mock_data": data,
		"label":     f.setting("label", ""),
		"pid":       strconv.Itoa(os.Getpid()),
		"trace_id":  sc.TraceID().String(),
		"span_id":   sc.SpanID().String(),
		"baggage":   baggage.FromContext(ctx).String(),
	}
	tradeType := f.setting("trade_type", upstream.TradeWeChatJSAPI)
	if tt := in.Metadata["mock.trade_type"]; tt != "" {
		tradeType = tt
	}
	return plugin.OrderShape{
		TradeType: tradeType,
		Fields:    fields,
		Buyer:     plugin.Identity{OpenID: in.Buyer.OpenID, AppID: in.Buyer.AppID},
	}, nil
}

// PayParams implements plugin.Flow.
func (f *Flow) PayParams(ctx context.Context, in plugin.PayParamsInput) (plugin.PayParams, error) {
	fs, err := f.enter("PayParams")
	if err != nil {
		return plugin.PayParams{}, err
	}
	if fs.PayParams != nil {
		return fs.PayParams(ctx, in)
	}
	b, err := json.Marshal(map[string]any{"payment_id": in.PaymentID, "upstream": in.Upstream})
	if err != nil {
		return plugin.PayParams{}, fmt.Errorf("encode pay params: %w", err)
	}
	return plugin.PayParams{Kind: Kind, JSON: b}, nil
}

// DecodeNotification implements plugin.Flow.
func (f *Flow) DecodeNotification(ctx context.Context, in plugin.NotificationInput) (plugin.ChannelDetail, error) {
	fs, err := f.enter("DecodeNotification")
	if err != nil {
		return plugin.ChannelDetail{}, err
	}
	if fs.DecodeNotification != nil {
		return fs.DecodeNotification(ctx, in)
	}
	return plugin.ChannelDetail{
		Channel:        "mock",
		BuyerID:        in.Fields["buyer_id"],
		ChannelTradeNo: in.Fields["out_trans_id"],
		Extra:          map[string]string{"trade_type": in.TradeType},
	}, nil
}

// AuthorizeURL implements plugin.Flow.
func (f *Flow) AuthorizeURL(ctx context.Context, in plugin.AuthorizeInput) (string, error) {
	fs, err := f.enter("AuthorizeURL")
	if err != nil {
		return "", err
	}
	if fs.AuthorizeURL != nil {
		return fs.AuthorizeURL(ctx, in)
	}
	q := url.Values{"redirect_uri": {in.RedirectURI}, "scope": {in.Scope}, "state": {in.State}}
	return "https://mock.invalid/authorize?" + q.Encode(), nil
}

// ExchangeCode implements plugin.Flow. The code "invalid" is refused with
// CodeCodeInvalid.
func (f *Flow) ExchangeCode(ctx context.Context, in plugin.ExchangeInput) (plugin.Identity, error) {
	fs, err := f.enter("ExchangeCode")
	if err != nil {
		return plugin.Identity{}, err
	}
	if fs.ExchangeCode != nil {
		return fs.ExchangeCode(ctx, in)
	}
	if in.Code == "invalid" {
		return plugin.Identity{}, &plugin.Error{Code: plugin.CodeCodeInvalid, Field: "code", Message: "mock refuses this code"}
	}
	return plugin.Identity{OpenID: "openid-" + in.Code, AppID: f.setting("app_id", "mock-app")}, nil
}
