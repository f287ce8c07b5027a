// Package mockflow is a configurable flow for testing hosts. It runs
// in-process (through plugintest, or called directly) or as a real plugin
// binary (cmd/mockflow), so that a host's supervision tests can launch it,
// call it, hang it and kill it. It implements every method of the contract
// and uses every host service.
//
// In-process, its results and errors are set with Override and SetError.
// As a binary it is steered by its settings and by the metadata of each
// ShapeOrder call:
//
//   - setting "label" is echoed in ShapeOrder's fields, which lets a test
//     see that a restarted plugin was configured again; "app_id",
//     "callback_url" (its sandbox default is "{sandbox_url}/mock") and
//     "mode" are echoed too, and "app_secret" is secret;
//   - setting "fail_configure" makes Configure fail with its value as the
//     message;
//   - setting "verbose" makes every call log its name through the host;
//   - metadata "mock.error" makes ShapeOrder fail with that error code (and
//     "mock.field" as the field);
//   - metadata "mock.block" = "true" makes ShapeOrder log "mock call
//     blocked" and wait until its context ends;
//   - metadata "mock.deadlock" = "true" makes ShapeOrder take the flow's
//     lock and never give it back, so that every later call, Check
//     included, hangs: a live plugin whose handlers are deadlocked;
//   - metadata "mock.panic" = "true" makes ShapeOrder panic;
//   - metadata "mock.trade_type" replaces the trade type ShapeOrder
//     answers (not the one Info reports);
//   - metadata "mock.print" is printed to the process's stderr with fmt,
//     bypassing the logger;
//   - metadata "mock.getenv" names an environment variable whose value
//     ShapeOrder reports in the field "env", so a host can check what its
//     plugins' environment holds;
//   - metadata "mock.sign" names a host key: ShapeOrder signs the payment
//     id with it through the host (field "signature", base64) and verifies
//     the signature with the key named by "mock.verify" (the same key when
//     absent; field "verified": "true", "false" or the error);
//   - metadata "mock.log" is logged through the host at info level, with
//     the attribute "secret" holding the app_secret setting, which the
//     host must redact.
//
// ShapeOrder's fields also report what the plugin saw: its process id
// ("pid"), the agreed contract version ("api_version"), whether it runs
// against the sandbox ("sandbox"), the trace and span id of its context
// ("trace_id", "span_id") and the baggage ("baggage").
package mockflow

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"sync"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"

	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/upstream"
)

// Name is the flow name the mock reports.
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
	// AuthorizeURL replaces AuthorizeURL.
	AuthorizeURL func(ctx context.Context, in plugin.AuthorizeInput) (string, error)
	// ExchangeCode replaces ExchangeCode.
	ExchangeCode func(ctx context.Context, in plugin.ExchangeInput) (plugin.Identity, error)
	// LaunchLinks replaces LaunchLinks.
	LaunchLinks func(ctx context.Context, in plugin.LaunchInput) (plugin.LaunchLinks, error)
}

// Flow is the mock flow. Its methods are safe for concurrent use.
type Flow struct {
	logger *slog.Logger

	mu         sync.Mutex
	cfg        plugin.Config
	configured bool
	funcs      Funcs
	errs       map[string]error
	calls      []string
}

var _ plugin.Flow = (*Flow)(nil)

// New returns a mock flow that logs its own messages to logger (nil
// discards) until Configure gives it the host's logger.
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

// SetError makes every call of method (e.g. "ShapeOrder", "Check") return
// err until it is set again; a nil err restores normal behavior.
func (f *Flow) SetError(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.errs, method)
		return
	}
	f.errs[method] = err
}

// Config returns the configuration of the last successful Configure.
func (f *Flow) Config() plugin.Config {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg
}

// Calls returns the names of the methods called so far, in order.
func (f *Flow) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// enter records a call and returns the overrides, the error set for
// method, if any, and the configuration.
func (f *Flow) enter(method string) (Funcs, plugin.Config, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, method)
	if f.cfg.Settings.Bool("verbose") {
		f.cfg.Logger.Info("mock call", "method", method)
	}
	return f.funcs, f.cfg, f.errs[method]
}

// Schema is the mock's settings schema; it has a setting of every type.
var Schema = plugin.Schema{
	{Key: "label", Description: "Value echoed in ShapeOrder's fields."},
	{Key: "fail_configure", Description: "Makes Configure fail with this message."},
	{Key: "app_id", Default: "mock-app", PerMerchant: true, Description: "App id reported by ExchangeCode and put in LaunchLinks."},
	{Key: "app_secret", Secret: true, PerMerchant: true, Description: "Never shown; logged by mock.log to test redaction."},
	{Key: "verbose", Type: plugin.TypeBool, Default: "false", Description: "Log every call through the host."},
	{Key: "max_fen", Type: plugin.TypeInt, Default: "0", Description: "When positive, ShapeOrder refuses larger amounts."},
	{Key: "timeout", Type: plugin.TypeDuration, Default: "5s", Description: "Echoed in ShapeOrder's fields."},
	{Key: "callback_url", Type: plugin.TypeURL, Default: "https://mock.invalid/callback", SandboxDefault: plugin.SandboxURL + "/mock", Description: "Echoed in ShapeOrder's fields."},
	{Key: "mode", Type: plugin.TypeEnum, Enum: []string{"normal", "strict"}, Default: "normal", Description: "Echoed in ShapeOrder's fields."},
}

// Info implements plugin.Flow.
func (f *Flow) Info(context.Context) (plugin.Info, error) {
	if _, _, err := f.enter("Info"); err != nil {
		return plugin.Info{}, err
	}
	return plugin.Info{
		Name:         Name,
		Version:      Version,
		TradeType:    upstream.TradeWeChatJSAPI,
		Capabilities: []plugin.Capability{plugin.CapAuthorizeURL, plugin.CapExchangeCode, plugin.CapLaunchLinks},
		Buyer:        plugin.BuyerOptional,
		Settings:     Schema,
	}, nil
}

// Configure implements plugin.Flow.
func (f *Flow) Configure(ctx context.Context, c plugin.Config) error {
	if _, _, err := f.enter("Configure"); err != nil {
		return err
	}
	if msg := c.Settings.Get("fail_configure"); msg != "" {
		return &plugin.Error{Code: plugin.CodeInvalidRequest, Field: "fail_configure", Message: msg}
	}
	if c.Logger == nil {
		c.Logger = f.logger
	}
	f.mu.Lock()
	f.cfg = c
	f.configured = true
	f.mu.Unlock()
	// The settings log with their secrets redacted.
	c.Logger.InfoContext(ctx, "mock configured", "settings", c.Settings, "api_version", c.APIVersion, "sandbox", c.Environment.Sandbox)
	return nil
}

// ShapeOrder implements plugin.Flow.
func (f *Flow) ShapeOrder(ctx context.Context, in plugin.OrderInput) (plugin.OrderShape, error) {
	fs, c, err := f.enter("ShapeOrder")
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
	if max := c.Settings.Int("max_fen"); max > 0 && in.AmountFen > max {
		return plugin.OrderShape{}, plugin.Errorf(plugin.CodeInvalidRequest, "amount_fen", "the mock takes at most %d fen", max)
	}
	if in.Metadata["mock.block"] == "true" {
		f.log(c).InfoContext(ctx, "mock call blocked", "payment_id", in.PaymentID)
		<-ctx.Done()
		return plugin.OrderShape{}, ctx.Err()
	}
	if in.Metadata["mock.deadlock"] == "true" {
		f.mu.Lock() // never unlocked: every later call hangs
		f.log(c).InfoContext(ctx, "mock deadlocked", "payment_id", in.PaymentID)
		<-ctx.Done()
		return plugin.OrderShape{}, ctx.Err()
	}
	if msg := in.Metadata["mock.log"]; msg != "" {
		f.log(c).InfoContext(ctx, msg, "payment_id", in.PaymentID, "secret", c.Settings.Get("app_secret"))
	}
	data, err := upstream.Encode(upstream.Object{}.
		Set("payment_id", in.PaymentID).Set("out_trade_no", in.OutTradeNo).
		Set("amount_fen", in.AmountFen).Set("openid", in.Buyer.OpenID))
	if err != nil {
		return plugin.OrderShape{}, fmt.Errorf("encode mock_data: %w", err)
	}
	sc := trace.SpanContextFromContext(ctx)
	fields := map[string]string{
		"env":          os.Getenv(in.Metadata["mock.getenv"]),
		"mock_data":    data,
		"label":        c.Settings.Get("label"),
		"app_id":       c.Settings.Get("app_id"),
		"timeout":      c.Settings.Duration("timeout").String(),
		"callback_url": c.Settings.Get("callback_url"),
		"mode":         c.Settings.Get("mode"),
		"api_version":  strconv.Itoa(c.APIVersion),
		"sandbox":      strconv.FormatBool(c.Environment.Sandbox),
		"pid":          strconv.Itoa(os.Getpid()),
		"trace_id":     sc.TraceID().String(),
		"span_id":      sc.SpanID().String(),
		"baggage":      baggage.FromContext(ctx).String(),
	}
	if key := in.Metadata["mock.sign"]; key != "" {
		f.signAndVerify(ctx, c, key, in, fields)
	}
	tradeType := upstream.TradeWeChatJSAPI
	if tt := in.Metadata["mock.trade_type"]; tt != "" {
		tradeType = tt
	}
	return plugin.OrderShape{
		TradeType: tradeType,
		Fields:    fields,
		Buyer:     plugin.Identity{OpenID: in.Buyer.OpenID, AppID: in.Buyer.AppID},
	}, nil
}

// signAndVerify signs the payment id with the host key named key and
// verifies the signature with the key named by "mock.verify", reporting
// both in fields.
func (f *Flow) signAndVerify(ctx context.Context, c plugin.Config, key string, in plugin.OrderInput, fields map[string]string) {
	host := c.Host
	if host == nil {
		fields["signature"] = "no host"
		return
	}
	sig, err := host.Sign(ctx, key, plugin.AlgRSASHA256, []byte(in.PaymentID))
	if err != nil {
		fields["signature"] = "error: " + err.Error()
		return
	}
	fields["signature"] = base64.StdEncoding.EncodeToString(sig)
	verifyKey := in.Metadata["mock.verify"]
	if verifyKey == "" {
		verifyKey = key
	}
	switch err := host.Verify(ctx, verifyKey, plugin.AlgRSASHA256, []byte(in.PaymentID), sig); {
	case err == nil:
		fields["verified"] = "true"
	case errors.Is(err, plugin.ErrInvalidSignature):
		fields["verified"] = "false"
	default:
		fields["verified"] = "error: " + err.Error()
	}
}

func (f *Flow) log(c plugin.Config) *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return f.logger
}

// PayParams implements plugin.Flow.
func (f *Flow) PayParams(ctx context.Context, in plugin.PayParamsInput) (plugin.PayParams, error) {
	fs, _, err := f.enter("PayParams")
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

// AuthorizeURL implements plugin.Flow.
func (f *Flow) AuthorizeURL(ctx context.Context, in plugin.AuthorizeInput) (string, error) {
	fs, _, err := f.enter("AuthorizeURL")
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
	fs, c, err := f.enter("ExchangeCode")
	if err != nil {
		return plugin.Identity{}, err
	}
	if fs.ExchangeCode != nil {
		return fs.ExchangeCode(ctx, in)
	}
	if in.Code == "invalid" {
		return plugin.Identity{}, &plugin.Error{Code: plugin.CodeCodeInvalid, Field: "code", Message: "mock refuses this code"}
	}
	appID := c.Settings.Get("app_id")
	if appID == "" {
		appID = "mock-app"
	}
	return plugin.Identity{OpenID: "openid-" + in.Code, AppID: appID}, nil
}

// LaunchLinks implements plugin.Flow: a plain scheme
// mock://open?appid=<the merchant's app_id>&<query>, expiring with the
// checkout.
func (f *Flow) LaunchLinks(ctx context.Context, in plugin.LaunchInput) (plugin.LaunchLinks, error) {
	fs, c, err := f.enter("LaunchLinks")
	if err != nil {
		return plugin.LaunchLinks{}, err
	}
	if fs.LaunchLinks != nil {
		return fs.LaunchLinks(ctx, in)
	}
	appID := c.ForMerchant(in.MerchantID).Get("app_id")
	return plugin.LaunchLinks{
		URLScheme:          "mock://open?appid=" + appID + "&" + in.Query,
		URLSchemeExpiresAt: in.ExpiresAt,
		PlainScheme:        "mock://plain?appid=" + appID + "&" + in.Query,
		App:                &plugin.AppLaunch{UserName: "gh_mock", Path: "pages/pay?" + in.Query},
	}, nil
}

// Check implements plugin.Flow. It takes the flow's lock, so a deadlocked
// ShapeOrder makes it hang.
func (f *Flow) Check(context.Context) error {
	_, _, err := f.enter("Check")
	return err
}
