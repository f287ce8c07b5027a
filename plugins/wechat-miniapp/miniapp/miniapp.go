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
	SettingEnvVersion  = "env_version"
	SettingTokenAPI    = "token_api"
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
	{Key: SettingAppID, Required: true, PerMerchant: true, SandboxDefault: sandboxAppID, Description: "Mini-program app id (wx…); a merchant of a service provider may have its own (sub_appid)."},
	{Key: SettingAppSecret, Required: true, Secret: true, PerMerchant: true, SandboxDefault: sandboxSecret, Description: "App secret of app_id, used for jscode2session and the server access token; it never leaves the plugin."},
	{Key: SettingAPIBase, Type: plugin.TypeURL, Default: wechat.DefaultAPIBase, SandboxDefault: plugin.SandboxURL, Description: "Base URL of WeChat's API."},
	{Key: SettingOriginalID, PerMerchant: true, SandboxDefault: sandboxOriginalID, Description: "Original id (gh_…) of the mini-program, needed to launch it from a native app."},
	{Key: SettingPagePath, Default: DefaultPagePath, Description: "Mini-program page that takes the payment; checkout links open it with checkout=<id> in its query."},
	{Key: SettingEnvVersion, Type: plugin.TypeEnum, Enum: wechat.EnvVersions, Default: "release", Description: "Version of the mini-program that checkout links open: release, trial or develop."},
	{Key: SettingTokenAPI, Type: plugin.TypeEnum, Enum: []string{wechat.TokenAPIStable, wechat.TokenAPIToken}, Default: wechat.TokenAPIStable, Description: "WeChat API the server access token comes from: stable_token (shared safely with other services of the app) or token."},
	{Key: SettingHTTPTimeout, Type: plugin.TypeDuration, Default: wechat.DefaultTimeout.String(), Description: "Bound of one call to WeChat."},
}

// app is one mini-program the flow pays with: the flow's own, or a
// service provider's merchant's.
type app struct {
	appID     string
	exchanger *wechat.Exchanger
	mini      *wechat.MiniProgram
}

type config struct {
	base      *app
	merchants map[string]*app // by huifu_id
	pagePath  string
}

// app returns the mini-program of the merchant with huifu_id id.
func (c *config) app(id string) *app {
	if a, ok := c.merchants[id]; ok {
		return a
	}
	return c.base
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
		Capabilities: []plugin.Capability{plugin.CapExchangeCode, plugin.CapLaunchLinks},
		Buyer:        plugin.BuyerRequired,
		Settings:     Schema,
	}, nil
}

// Configure implements plugin.Flow. The SDK has checked the settings
// against Schema; the original id and page path are checked here, and a
// merchant with an app of its own must have that app's secret.
func (f *Flow) Configure(_ context.Context, c plugin.Config) error {
	s := c.Settings
	pagePath := strings.TrimPrefix(s.Get(SettingPagePath), "/")
	if pagePath == "" {
		pagePath = DefaultPagePath
	}
	if strings.ContainsAny(pagePath, "?#") {
		return plugin.Errorf(plugin.CodeInvalidRequest, SettingPagePath, "setting %s must be a page path without query", SettingPagePath)
	}
	base, err := newApp(s, pagePath, "")
	if err != nil {
		return err
	}
	cfg := &config{base: base, pagePath: pagePath, merchants: map[string]*app{}}
	for id, ms := range c.Merchants {
		if ms.Get(SettingAppID) != base.appID && ms.Get(SettingAppSecret) == s.Get(SettingAppSecret) {
			return plugin.Errorf(plugin.CodeInvalidRequest, "merchants."+id+"."+SettingAppSecret, "merchant %s has an app of its own and needs its %s", id, SettingAppSecret)
		}
		a, err := newApp(ms, pagePath, "merchants."+id+".")
		if err != nil {
			return err
		}
		if a.appID != base.appID && ms.Get(SettingOriginalID) == s.Get(SettingOriginalID) {
			a.mini.OriginalID = "" // the flow's original id names another mini-program
		}
		cfg.merchants[id] = a
	}
	f.cfg.Store(cfg)
	wechat.LogConfigured(c, f.logger)
	return nil
}

// newApp builds a mini-program of settings s; prefix names its settings
// in errors.
func newApp(s plugin.Settings, pagePath, prefix string) (*app, error) {
	originalID := s.Get(SettingOriginalID)
	if originalID != "" && (!strings.HasPrefix(originalID, "gh_") || len(originalID) < 4) {
		return nil, plugin.Errorf(plugin.CodeInvalidRequest, prefix+SettingOriginalID, "setting %s must be the mini-program's original id, starting with gh_", prefix+SettingOriginalID)
	}
	ex := wechat.NewExchanger(s)
	return &app{
		appID:     ex.AppID,
		exchanger: ex,
		mini: &wechat.MiniProgram{
			AppID: ex.AppID, OriginalID: originalID, PagePath: pagePath, EnvVersion: s.Get(SettingEnvVersion),
			Tokens: &wechat.TokenSource{HTTP: ex.HTTP, APIBase: ex.APIBase, AppID: ex.AppID, Secret: ex.Secret, API: s.Get(SettingTokenAPI)},
		},
	}, nil
}

// LaunchLinks implements plugin.Flow: the URL Scheme and URL Link of the
// merchant's mini-program (from WeChat, with the server access token the
// flow keeps), its plain scheme and a native app's launch data, each
// opening page_path with the checkout's query.
func (f *Flow) LaunchLinks(ctx context.Context, in plugin.LaunchInput) (plugin.LaunchLinks, error) {
	c, err := f.config()
	if err != nil {
		return plugin.LaunchLinks{}, err
	}
	return c.app(in.MerchantID).mini.LaunchLinks(ctx, in)
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
	a := c.app(in.MerchantID)
	if in.AppID != "" && in.AppID != a.appID {
		return plugin.Identity{}, plugin.Errorf(plugin.CodeInvalidRequest, "app_id", "codes can only be exchanged for the configured mini-program")
	}
	return a.exchanger.Login(ctx, in.Code)
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
	buyer, err := f.resolveBuyer(ctx, c.app(in.MerchantID), in.Buyer)
	if err != nil {
		return plugin.OrderShape{}, err
	}
	shape, err := wechat.OrderShape(upstream.TradeWeChatMiniApp, buyer, false, in.ClientIP)
	if err != nil {
		return plugin.OrderShape{}, err
	}
	r, err := c.payRecipe(in.MerchantID, in.PaymentID, in.OutTradeNo)
	if err != nil {
		return plugin.OrderShape{}, err
	}
	shape.PayParams = &r
	return shape, nil
}

func (f *Flow) resolveBuyer(ctx context.Context, a *app, b plugin.Buyer) (plugin.Identity, error) {
	return wechat.ResolveBuyer(ctx, b, a.appID, "WeChat mini-program payments need the buyer's openid or a wx.login code", "mini-program", a.exchanger.Login)
}

// launch is what a native app (WXLaunchMiniProgram) or a web page
// (wx-open-launch-weapp) needs to open the mini-program at the payment.
type launch struct {
	Username string `json:"username"`
	Path     string `json:"path"`
}

// payRecipe returns the pay parameters of a payment of merchant
// merchantID as a function of the answer's pay_info:
//
//	{"request_payment": {"timeStamp", "nonceStr", "package", "signType", "paySign"},
//	 "launch": {"username": "gh_…", "path": "pages/pay/index?payment_id=…&out_trade_no=…"}}
//
// where request_payment is the object wx.requestPayment takes (without
// its callbacks), members in WeChat's order, and launch is present only
// when original_id is configured.
func (c *config) payRecipe(merchantID, paymentID, outTradeNo string) (plugin.PayRecipe, error) {
	root := plugin.PayValue{Op: plugin.PayObject, Members: []plugin.PayMember{
		{Name: "request_payment", Value: plugin.PayValue{Op: plugin.PayRequestPayment, Field: wechat.FieldPayInfo}},
	}}
	if a := c.app(merchantID); a.mini.OriginalID != "" {
		l, err := upstream.JSON(launch{
			Username: a.mini.OriginalID,
			Path: c.pagePath + "?payment_id=" + url.QueryEscape(paymentID) +
				"&out_trade_no=" + url.QueryEscape(outTradeNo),
		})
		if err != nil {
			return plugin.PayRecipe{}, plugin.Errorf(plugin.CodeInternal, "", "encode launch: %v", err)
		}
		root.Members = append(root.Members, plugin.PayMember{Name: "launch", Value: plugin.PayValue{Op: plugin.PayLiteral, Literal: l}})
	}
	return plugin.PayRecipe{Kind: upstream.KindWeChatMiniApp, Root: root}, nil
}

// PayParams implements plugin.Flow: payRecipe built from the answer, for
// the paths where the host builds pay parameters from a kept answer.
func (f *Flow) PayParams(_ context.Context, in plugin.PayParamsInput) (plugin.PayParams, error) {
	c, err := f.config()
	if err != nil {
		return plugin.PayParams{}, err
	}
	r, err := c.payRecipe(in.MerchantID, in.PaymentID, in.OutTradeNo)
	if err != nil {
		return plugin.PayParams{}, err
	}
	return r.Build(in.Upstream)
}
