package jsapi_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/paysidecar/paysidecar/plugins/internal/wechat/wechattest"
	"github.com/paysidecar/paysidecar/plugins/wechat-jsapi/jsapi"
	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/plugin/plugintest"
	"github.com/paysidecar/paysidecar/sdk/upstream"
)

const (
	appID  = "wx520c15f417810387"
	secret = "s3cr3t-app-secret-0123456789abcdef"
)

// serve runs the flow over gRPC, configured with settings on top of a
// working default.
func serve(t *testing.T, settings map[string]string) plugin.Flow {
	t.Helper()
	f := plugintest.Serve(t, jsapi.New(nil))
	s := map[string]string{"app_id": appID, "app_secret": secret}
	for k, v := range settings {
		s[k] = v
	}
	if err := configure(t, f, s); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return f
}

// configure configures f with settings as the host does.
func configure(t *testing.T, f plugin.Flow, settings map[string]string) error {
	_, err := plugintest.Configure(t.Context(), f, settings, plugin.Config{})
	return err
}

// wantError checks that err is an *plugin.Error with code and field, and
// that it does not reveal the app secret.
func wantError(t *testing.T, err error, code, field string) {
	t.Helper()
	var pe *plugin.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error = %v (%T), want *plugin.Error %s", err, err, code)
	}
	if pe.Code != code || pe.Field != field {
		t.Errorf("error = %+v, want code %s field %q", pe, code, field)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error reveals the app secret: %v", err)
	}
}

func TestInfo(t *testing.T) {
	info, err := plugintest.Serve(t, jsapi.New(nil)).Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "wechat-jsapi" || info.TradeType != "T_JSAPI" ||
		!info.Supports(plugin.CapAuthorizeURL) || !info.Supports(plugin.CapExchangeCode) {
		t.Errorf("Info = %+v", info)
	}
}

func TestSchemaAndSandboxDefaults(t *testing.T) {
	if err := jsapi.Schema.Check(); err != nil {
		t.Fatal(err)
	}
	f := plugintest.Serve(t, jsapi.New(nil))
	env := plugin.Environment{Sandbox: true, SandboxURL: "http://127.0.0.1:8900"}
	if _, err := plugintest.Configure(t.Context(), f, nil, plugin.Config{Environment: env}); err != nil {
		t.Fatalf("Configure against the sandbox without settings: %v", err)
	}
	u, err := f.AuthorizeURL(t.Context(), plugin.AuthorizeInput{RedirectURI: "https://shop.example/cb"})
	if err != nil || !strings.HasPrefix(u, "http://127.0.0.1:8900/connect/oauth2/authorize?appid=wxsandbox00000001&") {
		t.Errorf("AuthorizeURL against the sandbox = %q, %v", u, err)
	}
	if _, err := plugintest.Configure(t.Context(), f, nil, plugin.Config{}); plugintest.RefusedSetting(err) != "app_id" {
		t.Errorf("Configure against a real upstream without settings: %v", err)
	}
}

func TestConfigureValidates(t *testing.T) {
	cases := []struct {
		name     string
		settings map[string]string
		field    string
	}{
		{"missing app_id", map[string]string{"app_secret": secret}, "app_id"},
		{"blank app_id", map[string]string{"app_id": "  ", "app_secret": secret}, "app_id"},
		{"missing app_secret", map[string]string{"app_id": appID}, "app_secret"},
		{"relative api_base", map[string]string{"app_id": appID, "app_secret": secret, "api_base": "api.weixin.qq.com"}, "api_base"},
		{"oauth_base with query", map[string]string{"app_id": appID, "app_secret": secret, "oauth_base": "https://open.weixin.qq.com/?x=1"}, "oauth_base"},
		{"use_openid not a boolean", map[string]string{"app_id": appID, "app_secret": secret, "use_openid": "sometimes"}, "use_openid"},
		{"bad timeout", map[string]string{"app_id": appID, "app_secret": secret, "http_timeout": "soon"}, "http_timeout"},
		{"unknown key", map[string]string{"app_id": appID, "app_secret": secret, "appsecret": secret}, "appsecret"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := configure(t, plugintest.Serve(t, jsapi.New(nil)), c.settings)
			if got := plugintest.RefusedSetting(err); got != c.field || strings.Contains(fmt.Sprint(err), secret) {
				t.Errorf("Configure error = %v, want one refusing %s without showing the secret", err, c.field)
			}
		})
	}

	t.Run("a refused Configure keeps the previous settings", func(t *testing.T) {
		f := serve(t, nil)
		err := configure(t, f, map[string]string{"app_id": "wxother"})
		if plugintest.RefusedSetting(err) != "app_secret" {
			t.Errorf("Configure without app_secret: %v", err)
		}
		got, err := f.AuthorizeURL(t.Context(), plugin.AuthorizeInput{RedirectURI: "https://a.example/"})
		if err != nil || !strings.Contains(got, "appid="+appID+"&") {
			t.Errorf("AuthorizeURL after refused Configure = %q, %v", got, err)
		}
	})

	t.Run("calls before Configure", func(t *testing.T) {
		f := plugintest.Serve(t, jsapi.New(nil))
		_, err := f.ShapeOrder(t.Context(), plugin.OrderInput{Buyer: plugin.Buyer{OpenID: "o"}})
		wantError(t, err, plugin.CodeInternal, "")
	})
}

func TestAuthorizeURL(t *testing.T) {
	cases := []struct {
		name     string
		settings map[string]string
		in       plugin.AuthorizeInput
		want     string
	}{
		{
			name: "WeChat's documented example",
			in: plugin.AuthorizeInput{
				RedirectURI: "https://chong.qq.com/php/index.php?d=&c=wxAdapter&m=mobileDeal&showwxpaytitle=1&vb2ctag=4_2030_5_1194_60",
				Scope:       "snsapi_base",
				State:       "123",
			},
			want: "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx520c15f417810387" +
				"&redirect_uri=https%3A%2F%2Fchong.qq.com%2Fphp%2Findex.php%3Fd%3D%26c%3DwxAdapter%26m%3DmobileDeal%26showwxpaytitle%3D1%26vb2ctag%3D4_2030_5_1194_60" +
				"&response_type=code&scope=snsapi_base&state=123#wechat_redirect",
		},
		{
			name: "userinfo scope, empty state",
			in:   plugin.AuthorizeInput{RedirectURI: "http://shop.example/pay/cb", Scope: "snsapi_userinfo"},
			want: "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx520c15f417810387" +
				"&redirect_uri=http%3A%2F%2Fshop.example%2Fpay%2Fcb&response_type=code&scope=snsapi_userinfo&state=#wechat_redirect",
		},
		{
			name:     "default scope and configured oauth_base",
			settings: map[string]string{"oauth_base": "http://127.0.0.1:8099/wx/"},
			in:       plugin.AuthorizeInput{RedirectURI: "https://shop.example/cb?order=A 1", State: "abcXYZ09"},
			want: "http://127.0.0.1:8099/wx/connect/oauth2/authorize?appid=wx520c15f417810387" +
				"&redirect_uri=https%3A%2F%2Fshop.example%2Fcb%3Forder%3DA+1&response_type=code&scope=snsapi_base&state=abcXYZ09#wechat_redirect",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := serve(t, c.settings).AuthorizeURL(t.Context(), c.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("AuthorizeURL =\n %s\nwant\n %s", got, c.want)
			}
		})
	}

	bad := []struct {
		name  string
		in    plugin.AuthorizeInput
		field string
	}{
		{"other scope", plugin.AuthorizeInput{RedirectURI: "https://a.example/", Scope: "snsapi_login"}, "scope"},
		{"relative redirect", plugin.AuthorizeInput{RedirectURI: "/cb"}, "redirect_uri"},
		{"javascript redirect", plugin.AuthorizeInput{RedirectURI: "javascript:alert(1)"}, "redirect_uri"},
		{"state with symbols", plugin.AuthorizeInput{RedirectURI: "https://a.example/", State: "a&b=c"}, "state"},
		{"state too long", plugin.AuthorizeInput{RedirectURI: "https://a.example/", State: strings.Repeat("a", 129)}, "state"},
	}
	f := serve(t, nil)
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.AuthorizeURL(t.Context(), c.in)
			wantError(t, err, plugin.CodeInvalidRequest, c.field)
		})
	}
}

func TestExchangeCode(t *testing.T) {
	wx := wechattest.New(t)
	wx.AddApp(appID, secret)
	f := serve(t, map[string]string{"api_base": wx.URL})

	code := wx.MintCode(appID, "o-buyer-1", "u-buyer-1")
	id, err := f.ExchangeCode(t.Context(), plugin.ExchangeInput{Code: code})
	if err != nil {
		t.Fatalf("ExchangeCode: %v", err)
	}
	if id != (plugin.Identity{OpenID: "o-buyer-1", UnionID: "u-buyer-1", AppID: appID}) {
		t.Errorf("identity = %+v", id)
	}
	reqs := wx.Requests()
	if len(reqs) != 1 || reqs[0].Path != "/sns/oauth2/access_token" {
		t.Fatalf("requests = %+v", reqs)
	}
	wantQuery := map[string][]string{"appid": {appID}, "secret": {secret}, "code": {code}, "grant_type": {"authorization_code"}}
	if !reflect.DeepEqual(map[string][]string(reqs[0].Query), wantQuery) {
		t.Errorf("query = %v, want %v", reqs[0].Query, wantQuery)
	}

	t.Run("code used twice", func(t *testing.T) {
		_, err := f.ExchangeCode(t.Context(), plugin.ExchangeInput{Code: code})
		wantError(t, err, plugin.CodeCodeInvalid, "code")
		if !strings.Contains(err.Error(), "40163") {
			t.Errorf("error does not say which errcode: %v", err)
		}
	})
	t.Run("unknown code", func(t *testing.T) {
		_, err := f.ExchangeCode(t.Context(), plugin.ExchangeInput{Code: "never-issued"})
		wantError(t, err, plugin.CodeCodeInvalid, "code")
	})
	t.Run("empty code", func(t *testing.T) {
		_, err := f.ExchangeCode(t.Context(), plugin.ExchangeInput{Code: " "})
		wantError(t, err, plugin.CodeInvalidRequest, "code")
	})
	t.Run("code of another app", func(t *testing.T) {
		_, err := f.ExchangeCode(t.Context(), plugin.ExchangeInput{Code: "x", AppID: "wxother"})
		wantError(t, err, plugin.CodeInvalidRequest, "app_id")
	})
	t.Run("wrong secret", func(t *testing.T) {
		g := serve(t, map[string]string{"api_base": wx.URL, "app_secret": "wrong-secret-value"})
		_, err := g.ExchangeCode(t.Context(), plugin.ExchangeInput{Code: wx.MintCode(appID, "o", "")})
		wantError(t, err, plugin.CodeCodeExchangeFailed, "")
		if strings.Contains(err.Error(), "wrong-secret-value") {
			t.Errorf("error reveals the secret: %v", err)
		}
	})
}

func TestExchangeCodeFailures(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(*wechattest.Server)
		code   string
		reason string
	}{
		{"system busy", func(s *wechattest.Server) { s.FailWith(-1) }, plugin.CodeCodeExchangeFailed, ""},
		{"rate limited", func(s *wechattest.Server) { s.FailWith(45011) }, plugin.CodeCodeExchangeFailed, ""},
		{"invalid code errcode", func(s *wechattest.Server) { s.FailWith(40029) }, plugin.CodeCodeInvalid, "code"},
		{"HTTP 502", func(s *wechattest.Server) { s.AnswerRaw(502, "bad gateway") }, plugin.CodeChannelUnavailable, ""},
		{"not JSON", func(s *wechattest.Server) { s.AnswerRaw(200, "<html>") }, plugin.CodeChannelUnavailable, ""},
		{"no openid", func(s *wechattest.Server) { s.AnswerRaw(200, `{"access_token":"x"}`) }, plugin.CodeChannelUnavailable, ""},
		{"errmsg echoing the secret", func(s *wechattest.Server) {
			s.AnswerRaw(200, `{"errcode":40125,"errmsg":"invalid appsecret `+secret+`"}`)
		}, plugin.CodeCodeExchangeFailed, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wx := wechattest.New(t)
			wx.AddApp(appID, secret)
			c.setup(wx)
			f := serve(t, map[string]string{"api_base": wx.URL})
			id, err := f.ExchangeCode(t.Context(), plugin.ExchangeInput{Code: wx.MintCode(appID, "o", "")})
			wantError(t, err, c.code, c.reason)
			if !id.IsZero() {
				t.Errorf("identity returned with an error: %+v", id)
			}
		})
	}

	t.Run("redirect is not followed", func(t *testing.T) {
		elsewhere := wechattest.New(t)
		wx := wechattest.New(t)
		wx.RedirectTo(elsewhere.URL + "/sns/oauth2/access_token")
		f := serve(t, map[string]string{"api_base": wx.URL})
		_, err := f.ExchangeCode(t.Context(), plugin.ExchangeInput{Code: "abc"})
		wantError(t, err, plugin.CodeChannelUnavailable, "")
		if n := len(elsewhere.Requests()); n != 0 {
			t.Errorf("the redirect was followed (%d requests), taking the secret along", n)
		}
	})

	t.Run("WeChat unreachable", func(t *testing.T) {
		wx := wechattest.New(t)
		base := wx.URL
		wx.Close()
		f := serve(t, map[string]string{"api_base": base})
		_, err := f.ExchangeCode(t.Context(), plugin.ExchangeInput{Code: "abc"})
		wantError(t, err, plugin.CodeChannelUnavailable, "")
	})

	t.Run("caller's deadline", func(t *testing.T) {
		wx := wechattest.New(t)
		f := serve(t, map[string]string{"api_base": wx.URL})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := f.ExchangeCode(ctx, plugin.ExchangeInput{Code: "abc"})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error = %v, want context.Canceled", err)
		}
	})
}

func TestShapeOrder(t *testing.T) {
	wx := wechattest.New(t)
	wx.AddApp(appID, secret)

	cases := []struct {
		name      string
		settings  map[string]string
		in        plugin.OrderInput
		wantShape func() plugin.OrderShape
	}{
		{
			name: "openid under the configured app",
			in:   plugin.OrderInput{Buyer: plugin.Buyer{OpenID: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}},
			wantShape: func() plugin.OrderShape {
				return plugin.OrderShape{TradeType: "T_JSAPI",
					Fields: map[string]string{"wx_data": `{"sub_appid":"wx520c15f417810387","sub_openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}`},
					Buyer:  plugin.Identity{OpenID: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", AppID: appID}}
			},
		},
		{
			name: "openid under another app, with client IP",
			in:   plugin.OrderInput{Buyer: plugin.Buyer{OpenID: "o-2", AppID: "wxother"}, ClientIP: "203.0.113.9"},
			wantShape: func() plugin.OrderShape {
				return plugin.OrderShape{TradeType: "T_JSAPI",
					Fields: map[string]string{
						"wx_data":         `{"sub_appid":"wxother","sub_openid":"o-2"}`,
						"risk_check_data": `{"ip_addr":"203.0.113.9"}`,
					},
					Buyer: plugin.Identity{OpenID: "o-2", AppID: "wxother"}}
			},
		},
		{
			name:     "use_openid",
			settings: map[string]string{"use_openid": "true"},
			in:       plugin.OrderInput{Buyer: plugin.Buyer{OpenID: "o-3"}},
			wantShape: func() plugin.OrderShape {
				return plugin.OrderShape{TradeType: "T_JSAPI",
					Fields: map[string]string{"wx_data": `{"openid":"o-3"}`},
					Buyer:  plugin.Identity{OpenID: "o-3", AppID: appID}}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := serve(t, c.settings).ShapeOrder(t.Context(), c.in)
			if err != nil {
				t.Fatal(err)
			}
			if got.PayParams == nil {
				t.Error("ShapeOrder gave no pay recipe")
			}
			got.PayParams = nil
			if want := c.wantShape(); !reflect.DeepEqual(got, want) {
				t.Errorf("ShapeOrder =\n %+v\nwant\n %+v", got, want)
			}
		})
	}

	t.Run("code exchanged for the openid", func(t *testing.T) {
		f := serve(t, map[string]string{"api_base": wx.URL})
		code := wx.MintCode(appID, "o-from-code", "u-9")
		got, err := f.ShapeOrder(t.Context(), plugin.OrderInput{Buyer: plugin.Buyer{Code: code}})
		if err != nil {
			t.Fatal(err)
		}
		if got.Fields["wx_data"] != `{"sub_appid":"wx520c15f417810387","sub_openid":"o-from-code"}` {
			t.Errorf("wx_data = %s", got.Fields["wx_data"])
		}
		if got.Buyer != (plugin.Identity{OpenID: "o-from-code", UnionID: "u-9", AppID: appID}) {
			t.Errorf("buyer = %+v", got.Buyer)
		}
		_, err = f.ShapeOrder(t.Context(), plugin.OrderInput{Buyer: plugin.Buyer{Code: code}})
		wantError(t, err, plugin.CodeCodeInvalid, "code")
	})

	bad := []struct {
		name     string
		settings map[string]string
		in       plugin.OrderInput
		code     string
		field    string
	}{
		{"no buyer", nil, plugin.OrderInput{}, plugin.CodeInvalidBuyer, "buyer.openid"},
		{"code for another app", nil, plugin.OrderInput{Buyer: plugin.Buyer{Code: "c", AppID: "wxother"}}, plugin.CodeInvalidBuyer, "buyer.app_id"},
		{"use_openid with another app", map[string]string{"use_openid": "true"}, plugin.OrderInput{Buyer: plugin.Buyer{OpenID: "o", AppID: "wxother"}}, plugin.CodeInvalidBuyer, "buyer.app_id"},
		{"bad client IP", nil, plugin.OrderInput{Buyer: plugin.Buyer{OpenID: "o"}, ClientIP: "not-an-ip"}, plugin.CodeInvalidRequest, "client_ip"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := serve(t, c.settings).ShapeOrder(t.Context(), c.in)
			wantError(t, err, c.code, c.field)
		})
	}
}

// TestPayParams builds pay parameters both ways, from the recipe
// ShapeOrder gives and by calling PayParams, which must agree.
func TestPayParams(t *testing.T) {
	f := serve(t, nil)
	shape, err := f.ShapeOrder(t.Context(), plugin.OrderInput{PaymentID: "p", AmountFen: 1, Buyer: plugin.Buyer{OpenID: "o-1"}})
	if err != nil {
		t.Fatal(err)
	}
	const payInfo = `{"appId":"wx520c15f417810387","timeStamp":"1700000000","nonceStr":"5K8264ILTKCH16CQ2502SI8ZNMTM67VS",` +
		`"package":"prepay_id=wx2017033010242291fcfe0db70013231072","signType":"RSA","paySign":"oR9d8Puh+/Ab=="}`
	got, err := plugintest.PayParams(t, f, shape, plugin.PayParamsInput{TradeType: "T_JSAPI",
		Upstream: map[string]string{"pay_info": payInfo, "nkp_seq_id": "N1", "req_seq_id": "R1"}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"appId":"wx520c15f417810387","timeStamp":"1700000000","nonceStr":"5K8264ILTKCH16CQ2502SI8ZNMTM67VS",` +
		`"package":"prepay_id=wx2017033010242291fcfe0db70013231072","signType":"RSA","paySign":"oR9d8Puh+/Ab=="}`
	if got.Kind != upstream.KindWeChatJSAPI || string(got.JSON) != want {
		t.Errorf("PayParams = %s %s\nwant %s", got.Kind, got.JSON, want)
	}

	t.Run("numeric timeStamp", func(t *testing.T) {
		got, err := plugintest.PayParams(t, f, shape, plugin.PayParamsInput{Upstream: map[string]string{
			"pay_info": `{"appId":"wx1","timeStamp":1700000000,"nonceStr":"n","package":"prepay_id=p","signType":"RSA","paySign":"s"}`}})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(got.JSON), `"timeStamp":"1700000000"`) {
			t.Errorf("JSON = %s", got.JSON)
		}
	})

	full := map[string]any{"appId": "wx1", "timeStamp": "1", "nonceStr": "n", "package": "prepay_id=p", "signType": "RSA", "paySign": "s"}
	for _, drop := range []string{"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"} {
		t.Run("lacks "+drop, func(t *testing.T) {
			var parts []string
			for k, v := range full {
				if k != drop {
					parts = append(parts, `"`+k+`":"`+v.(string)+`"`)
				}
			}
			_, err := plugintest.PayParams(t, f, shape, plugin.PayParamsInput{Upstream: map[string]string{"pay_info": "{" + strings.Join(parts, ",") + "}"}})
			wantError(t, err, plugin.CodeInvalidRequest, "pay_info")
			if !strings.Contains(err.Error(), drop) {
				t.Errorf("error does not name %s: %v", drop, err)
			}
		})
	}
	for _, raw := range []string{"", "not json", "[]", `{"appId":"wx1","timeStamp":true}`} {
		_, err := plugintest.PayParams(t, f, shape, plugin.PayParamsInput{Upstream: map[string]string{"pay_info": raw}})
		wantError(t, err, plugin.CodeInvalidRequest, "pay_info")
	}
}

// TestMerchantsHaveTheirOwnOfficialAccount configures a service
// provider's merchant with an official account of its own: its OAuth URL
// names its app, its codes are exchanged with its secret and its orders
// carry its app id as sub_appid.
func TestMerchantsHaveTheirOwnOfficialAccount(t *testing.T) {
	const otherApp, otherSecret = "wx6666666666666666", "other-account-secret-0123456789"
	wx := wechattest.New(t)
	wx.AddApp(otherApp, otherSecret)
	f := plugintest.Serve(t, jsapi.New(nil))
	raw := map[string]string{"app_id": "wx1111111111111111", "app_secret": "base-secret-0123456789", "api_base": wx.URL}
	own, err := jsapi.Schema.ApplyMerchant("m2", raw, map[string]string{"app_id": otherApp, "app_secret": otherSecret}, plugin.Environment{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plugintest.Configure(t.Context(), f, raw, plugin.Config{Merchants: map[string]plugin.Settings{"m2": own}}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	u, err := f.AuthorizeURL(t.Context(), plugin.AuthorizeInput{MerchantID: "m2", RedirectURI: "https://shop.example/cb"})
	if err != nil || !strings.Contains(u, "appid="+otherApp+"&") {
		t.Errorf("AuthorizeURL for m2 = %q, %v", u, err)
	}
	shape, err := f.ShapeOrder(t.Context(), plugin.OrderInput{MerchantID: "m2", AmountFen: 1, Buyer: plugin.Buyer{Code: wx.MintCode(otherApp, "o-m2", "")}})
	if err != nil || shape.Fields["wx_data"] != `{"sub_appid":"`+otherApp+`","sub_openid":"o-m2"}` {
		t.Errorf("ShapeOrder for m2 = %+v, %v", shape, err)
	}
	if id, err := f.ExchangeCode(t.Context(), plugin.ExchangeInput{Code: wx.MintCode(otherApp, "o-2", "")}); err == nil {
		t.Errorf("the flow's own app exchanged m2's code: %+v", id)
	}
}
