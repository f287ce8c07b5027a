// Package jsapi is the WeChat JSAPI flow: payment inside WeChat's own
// browser. It builds the OAuth authorize URL that sends the buyer's browser
// to WeChat for a code, exchanges the code for the buyer's openid, shapes a
// T_JSAPI order (wx_data) and turns the upstream's pay_info into the
// parameters of WeixinJSBridge.invoke('getBrandWCPayRequest', …).
package jsapi

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
const Name = "wechat-jsapi"

// Version is the flow's version.
const Version = "1.0.0"

// OAuth scopes WeChat offers to web pages.
const (
	ScopeBase     = "snsapi_base"
	ScopeUserinfo = "snsapi_userinfo"
)

// Setting keys.
const (
	SettingAppID       = wechat.SettingAppID
	SettingAppSecret   = wechat.SettingAppSecret
	SettingOAuthBase   = "oauth_base"
	SettingAPIBase     = wechat.SettingAPIBase
	SettingUseOpenID   = "use_openid"
	SettingHTTPTimeout = wechat.SettingHTTPTimeout
)

// The official account the sandbox upstream emulates, used when the host
// runs against its sandbox and no app is configured.
const (
	sandboxAppID  = "wxsandbox00000001"
	sandboxSecret = "sandbox-only-official-account-secret"
)

// Schema is the flow's settings.
var Schema = plugin.Schema{
	{Key: SettingAppID, Required: true, PerMerchant: true, SandboxDefault: sandboxAppID, Description: "WeChat official account app id (wx…) whose OAuth identifies buyers; a merchant of a service provider may have its own (sub_appid)."},
	{Key: SettingAppSecret, Required: true, Secret: true, PerMerchant: true, SandboxDefault: sandboxSecret, Description: "App secret of app_id, used only for code exchanges."},
	{Key: SettingOAuthBase, Type: plugin.TypeURL, Default: wechat.DefaultOAuthBase, SandboxDefault: plugin.SandboxURL, Description: "Base URL of WeChat's OAuth pages."},
	{Key: SettingAPIBase, Type: plugin.TypeURL, Default: wechat.DefaultAPIBase, SandboxDefault: plugin.SandboxURL, Description: "Base URL of WeChat's API."},
	{Key: SettingUseOpenID, Type: plugin.TypeBool, Default: "false", Description: "Send the openid as wx_data.openid (app_id is the upstream's own app) instead of sub_appid and sub_openid."},
	{Key: SettingHTTPTimeout, Type: plugin.TypeDuration, Default: wechat.DefaultTimeout.String(), Description: "Bound of one call to WeChat."},
}

// maxState is the longest state WeChat echoes back.
const maxState = 128

// app is one official account: the flow's own, or a service provider's
// merchant's.
type app struct {
	appID     string
	exchanger *wechat.Exchanger
}

type config struct {
	base      app
	merchants map[string]app // by huifu_id
	oauthBase string
	useOpenID bool
}

// app returns the official account of the merchant with huifu_id id.
func (c *config) app(id string) app {
	if a, ok := c.merchants[id]; ok {
		return a
	}
	return c.base
}

// Flow is the WeChat JSAPI flow. It is safe for concurrent use; Configure
// replaces its settings atomically.
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
		TradeType:    upstream.TradeWeChatJSAPI,
		Capabilities: []plugin.Capability{plugin.CapAuthorizeURL, plugin.CapExchangeCode},
		Buyer:        plugin.BuyerRequired,
		Settings:     Schema,
	}, nil
}

// Configure implements plugin.Flow. The SDK has checked the settings
// against Schema.
func (f *Flow) Configure(_ context.Context, c plugin.Config) error {
	s := c.Settings
	cfg := &config{
		base:      app{appID: s.Get(SettingAppID), exchanger: wechat.NewExchanger(s)},
		merchants: map[string]app{},
		oauthBase: s.Get(SettingOAuthBase),
		useOpenID: s.Bool(SettingUseOpenID),
	}
	for id, ms := range c.Merchants {
		if ms.Get(SettingAppID) != cfg.base.appID && ms.Get(SettingAppSecret) == s.Get(SettingAppSecret) {
			return plugin.Errorf(plugin.CodeInvalidRequest, "merchants."+id+"."+SettingAppSecret, "merchant %s has an app of its own and needs its %s", id, SettingAppSecret)
		}
		cfg.merchants[id] = app{appID: ms.Get(SettingAppID), exchanger: wechat.NewExchanger(ms)}
	}
	f.cfg.Store(cfg)
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

// AuthorizeURL implements plugin.Flow. It returns
// {oauth_base}/connect/oauth2/authorize?appid=…&redirect_uri=…&response_type=code&scope=…&state=…#wechat_redirect
// with the parameters in the order WeChat requires. The scope defaults to
// snsapi_base; the state may hold up to 128 letters and digits.
func (f *Flow) AuthorizeURL(_ context.Context, in plugin.AuthorizeInput) (string, error) {
	c, err := f.config()
	if err != nil {
		return "", err
	}
	u, err := url.Parse(in.RedirectURI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", plugin.Errorf(plugin.CodeInvalidRequest, "redirect_uri", "redirect_uri must be an absolute http or https URL")
	}
	scope := in.Scope
	if scope == "" {
		scope = ScopeBase
	}
	if scope != ScopeBase && scope != ScopeUserinfo {
		return "", plugin.Errorf(plugin.CodeInvalidRequest, "scope", "scope must be %s or %s", ScopeBase, ScopeUserinfo)
	}
	if !validState(in.State) {
		return "", plugin.Errorf(plugin.CodeInvalidRequest, "state", "state must be at most %d letters and digits", maxState)
	}
	var b strings.Builder
	b.WriteString(c.oauthBase)
	b.WriteString("/connect/oauth2/authorize?appid=")
	b.WriteString(url.QueryEscape(c.app(in.MerchantID).appID))
	b.WriteString("&redirect_uri=")
	b.WriteString(url.QueryEscape(in.RedirectURI))
	b.WriteString("&response_type=code&scope=")
	b.WriteString(scope)
	b.WriteString("&state=")
	b.WriteString(in.State)
	b.WriteString("#wechat_redirect")
	return b.String(), nil
}

func validState(s string) bool {
	if len(s) > maxState {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// ExchangeCode implements plugin.Flow with
// GET {api_base}/sns/oauth2/access_token. The access token stays here.
func (f *Flow) ExchangeCode(ctx context.Context, in plugin.ExchangeInput) (plugin.Identity, error) {
	c, err := f.config()
	if err != nil {
		return plugin.Identity{}, err
	}
	a := c.app(in.MerchantID)
	if in.AppID != "" && in.AppID != a.appID {
		return plugin.Identity{}, plugin.Errorf(plugin.CodeInvalidRequest, "app_id", "codes can only be exchanged for the configured app")
	}
	return a.exchanger.OAuth(ctx, in.Code)
}

// ShapeOrder implements plugin.Flow. The buyer is given by openid (with
// the app id it belongs to, when that is not the configured one) or by an
// OAuth code, which is exchanged here. wx_data carries sub_appid and
// sub_openid, or only openid when use_openid is set.
func (f *Flow) ShapeOrder(ctx context.Context, in plugin.OrderInput) (plugin.OrderShape, error) {
	c, err := f.config()
	if err != nil {
		return plugin.OrderShape{}, err
	}
	a := c.app(in.MerchantID)
	buyer, err := f.resolveBuyer(ctx, a, in.Buyer)
	if err != nil {
		return plugin.OrderShape{}, err
	}
	if c.useOpenID && buyer.AppID != a.appID {
		return plugin.OrderShape{}, plugin.Errorf(plugin.CodeInvalidBuyer, "buyer.app_id", "with use_openid the openid must belong to the configured app")
	}
	shape, err := wechat.OrderShape(upstream.TradeWeChatJSAPI, buyer, c.useOpenID, in.ClientIP)
	if err != nil {
		return plugin.OrderShape{}, err
	}
	shape.PayParams = new(payRecipe)
	return shape, nil
}

func (f *Flow) resolveBuyer(ctx context.Context, a app, b plugin.Buyer) (plugin.Identity, error) {
	return wechat.ResolveBuyer(ctx, b, a.appID, "WeChat JSAPI needs the buyer's openid or an OAuth code", "app", a.exchanger.OAuth)
}

// payRecipe is the pay parameters: the getBrandWCPayRequest object parsed
// from the answer's pay_info, all six of whose members must be present,
// in WeChat's order. ShapeOrder hands it to the host, which builds them
// itself.
var payRecipe = plugin.PayRecipe{Kind: upstream.KindWeChatJSAPI, Root: plugin.PayValue{Op: plugin.PayInfo, Field: wechat.FieldPayInfo}}

// PayParams implements plugin.Flow: payRecipe built from the answer, for
// the paths where the host builds pay parameters from a kept answer.
func (f *Flow) PayParams(_ context.Context, in plugin.PayParamsInput) (plugin.PayParams, error) {
	return payRecipe.Build(in.Upstream)
}
