// Package miniapp is the WeChat mini-program flow. Inside the mini-program
// the buyer's wx.login code is exchanged for an openid (jscode2session), a
// T_MINIAPP order is shaped, and the upstream's pay_info becomes the
// parameters of wx.requestPayment. From a third-party browser or a native
// app the buyer cannot pay directly, so the pay parameters also say how to
// launch the mini-program at the payment page.
package miniapp

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/paysidecar/paysidecar/plugins/internal/wechat"
	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/upstream"
)

// Name is the flow's name.
const Name = "wechat-miniapp"

// Version is the flow's version.
const Version = "1.0.0"

// DefaultPagePath is the mini-program page that pays, unless configured.
const DefaultPagePath = "pages/pay/index"

// Setting keys.
const (
	SettingAppID       = wechat.SettingAppID
	SettingAppSecret   = wechat.SettingAppSecret
	SettingAPIBase     = wechat.SettingAPIBase
	SettingOriginalID  = "original_id"
	SettingPagePath    = "page_path"
	SettingHTTPTimeout = wechat.SettingHTTPTimeout
)

// The mini-program the sandbox upstream emulates, used when the host runs
// against its sandbox and no app is configured.
const (
	sandboxAppID      = "wxsandbox00000002"
	sandboxSecret     = "sandbox-only-mini-program-secret"
	sandboxOriginalID = "gh_0sandbox0001"
)

// Schema is the flow's settings.
var Schema = plugin.Schema{
	{Key: SettingAppID, Required: true, SandboxDefault: sandboxAppID, Description: "Mini-program app id (wx…)."},
	{Key: SettingAppSecret, Required: true, Secret: true, SandboxDefault: sandboxSecret, Description: "App secret of app_id, used only for jscode2session."},
	{Key: SettingAPIBase, Type: plugin.TypeURL, Default: wechat.DefaultAPIBase, SandboxDefault: plugin.SandboxURL, Description: "Base URL of WeChat's API."},
	{Key: SettingOriginalID, SandboxDefault: sandboxOriginalID, Description: "Original id (gh_…) of the mini-program, needed to launch it from a browser or an app."},
	{Key: SettingPagePath, Default: DefaultPagePath, Description: "Mini-program page that takes the payment."},
	{Key: SettingHTTPTimeout, Type: plugin.TypeDuration, Default: wechat.DefaultTimeout.String(), Description: "Bound of one call to WeChat."},
}

type config struct {
	appID      string
	originalID string
	pagePath   string
	exchanger  *wechat.Exchanger
}

// Flow is the WeChat mini-program flow. It is safe for concurrent use;
// Configure replaces its settings atomically.
type Flow struct {
	plugin.UnsupportedFlow
	logger *slog.Logger
	cfg    atomic.Pointer[config]
}

var _ plugin.Flow = (*Flow)(nil)

// New returns an unconfigured flow that logs to logger (nil discards).
func New(logger *slog.Logger) *Flow {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Flow{logger: logger}
}

// Info implements plugin.Flow.
func (f *Flow) Info(context.Context) (plugin.Info, error) {
	return plugin.Info{
		Name:         Name,
		Version:      Version,
		TradeType:    upstream.TradeWeChatMiniApp,
		Capabilities: []plugin.Capability{plugin.CapExchangeCode},
		Buyer:        plugin.BuyerRequired,
		Settings:     Schema,
	}, nil
}

// Configure implements plugin.Flow. The SDK has checked the settings
// against Schema; the original id and page path are checked here.
func (f *Flow) Configure(_ context.Context, c plugin.Config) error {
	s := c.Settings
	originalID := s.Get(SettingOriginalID)
	if originalID != "" && (!strings.HasPrefix(originalID, "gh_") || len(originalID) < 4) {
		return plugin.Errorf(plugin.CodeInvalidRequest, SettingOriginalID, "setting %s must be the mini-program's original id, starting with gh_", SettingOriginalID)
	}
	pagePath := strings.TrimPrefix(s.Get(SettingPagePath), "/")
	if pagePath == "" {
		pagePath = DefaultPagePath
	}
	if strings.ContainsAny(pagePath, "?#") {
		return plugin.Errorf(plugin.CodeInvalidRequest, SettingPagePath, "setting %s must be a page path without query", SettingPagePath)
	}
	f.cfg.Store(&config{
		appID:      s.Get(SettingAppID),
		originalID: originalID,
		pagePath:   pagePath,
		exchanger:  wechat.NewExchanger(s),
	})
	wechat.LogConfigured(c, f.logger)
	return nil
}

func (f *Flow) config() (*config, error) {
	c := f.cfg.Load()
	if c == nil {
		return nil, plugin.Errorf(plugin.CodeInternal, "", "flow %s is not configured", Name)
	}
	return c, nil
}

// ExchangeCode implements plugin.Flow with GET {api_base}/sns/jscode2session.
// The session key stays here.
func (f *Flow) ExchangeCode(ctx context.Context, in plugin.ExchangeInput) (plugin.Identity, error) {
	c, err := f.config()
	if err != nil {
		return plugin.Identity{}, err
	}
	if in.AppID != "" && in.AppID != c.appID {
		return plugin.Identity{}, plugin.Errorf(plugin.CodeInvalidRequest, "app_id", "codes can only be exchanged for the configured mini-program")
	}
	return c.exchanger.Login(ctx, in.Code)
}

// ShapeOrder implements plugin.Flow. The buyer is given by openid under
// the mini-program (or under the app named in Buyer.AppID), or by a
// wx.login code, which is exchanged here. wx_data carries sub_appid and
// sub_openid.
func (f *Flow) ShapeOrder(ctx context.Context, in plugin.OrderInput) (plugin.OrderShape, error) {
	c, err := f.config()
	if err != nil {
		return plugin.OrderShape{}, err
	}
	buyer, err := f.resolveBuyer(ctx, c, in.Buyer)
	if err != nil {
		return plugin.OrderShape{}, err
	}
	return wechat.OrderShape(upstream.TradeWeChatMiniApp, buyer, false, in.ClientIP)
}

func (f *Flow) resolveBuyer(ctx context.Context, c *config, b plugin.Buyer) (plugin.Identity, error) {
	return wechat.ResolveBuyer(ctx, b, c.appID, "WeChat mini-program payments need the buyer's openid or a wx.login code", "mini-program", c.exchanger.Login)
}

// requestPayment is the object wx.requestPayment takes (without its
// callbacks), members in WeChat's order.
type requestPayment struct {
	TimeStamp string `json:"timeStamp"`
	NonceStr  string `json:"nonceStr"`
	Package   string `json:"package"`
	SignType  string `json:"signType"`
	PaySign   string `json:"paySign"`
}

// launch is what a native app (WXLaunchMiniProgram) or a web page
// (wx-open-launch-weapp) needs to open the mini-program at the payment.
type launch struct {
	Username string `json:"username"`
	Path     string `json:"path"`
}

type payParams struct {
	RequestPayment requestPayment `json:"request_payment"`
	Launch         *launch        `json:"launch,omitempty"`
}

// PayParams implements plugin.Flow. The object is
//
//	{"request_payment": {"timeStamp", "nonceStr", "package", "signType", "paySign"},
//	 "launch": {"username": "gh_…", "path": "pages/pay/index?payment_id=…&out_trade_no=…"}}
//
// where launch is present only when original_id is configured.
func (f *Flow) PayParams(_ context.Context, in plugin.PayParamsInput) (plugin.PayParams, error) {
	c, err := f.config()
	if err != nil {
		return plugin.PayParams{}, err
	}
	pi, err := wechat.ParsePayInfo(in.Upstream[wechat.FieldPayInfo], false)
	if err != nil {
		return plugin.PayParams{}, err
	}
	out := payParams{RequestPayment: requestPayment{
		TimeStamp: pi.TimeStamp,
		NonceStr:  pi.NonceStr,
		Package:   pi.Package,
		SignType:  pi.SignType,
		PaySign:   pi.PaySign,
	}}
	if c.originalID != "" {
		out.Launch = &launch{
			Username: c.originalID,
			Path: c.pagePath + "?payment_id=" + url.QueryEscape(in.PaymentID) +
				"&out_trade_no=" + url.QueryEscape(in.OutTradeNo),
		}
	}
	b, err := upstream.JSON(out)
	if err != nil {
		return plugin.PayParams{}, plugin.Errorf(plugin.CodeInternal, "", "encode pay params: %v", err)
	}
	return plugin.PayParams{Kind: upstream.KindWeChatMiniApp, JSON: b}, nil
}
