package miniapp_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/paysidecar/paysidecar/plugins/internal/wechat/wechattest"
	"github.com/paysidecar/paysidecar/plugins/wechat-miniapp/miniapp"
	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/plugin/plugintest"
	"github.com/paysidecar/paysidecar/sdk/upstream"
)

const (
	appID  = "wx8888888888888888"
	secret = "mini-program-secret-fedcba9876543210"
)

func serve(t *testing.T, settings map[string]string) plugin.Flow {
	t.Helper()
	f := plugintest.Serve(t, miniapp.New(nil))
	s := map[string]string{"app_id": appID, "app_secret": secret}
	for k, v := range settings {
		s[k] = v
	}
	if _, err := plugintest.Configure(t.Context(), f, s, plugin.Config{}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return f
}

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
	info, err := plugintest.Serve(t, miniapp.New(nil)).Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "wechat-miniapp" || info.TradeType != "T_MINIAPP" ||
		info.Supports(plugin.CapAuthorizeURL) || !info.Supports(plugin.CapExchangeCode) {
		t.Errorf("Info = %+v", info)
	}
}

func TestSchemaAndSandboxDefaults(t *testing.T) {
	if err := miniapp.Schema.Check(); err != nil {
		t.Fatal(err)
	}
	f := plugintest.Serve(t, miniapp.New(nil))
	env := plugin.Environment{Sandbox: true, SandboxURL: "http://127.0.0.1:8900"}
	if _, err := plugintest.Configure(t.Context(), f, nil, plugin.Config{Environment: env}); err != nil {
		t.Fatalf("Configure against the sandbox without settings: %v", err)
	}
	pp, err := f.PayParams(t.Context(), plugin.PayParamsInput{PaymentID: "p", Upstream: map[string]string{
		"pay_info": `{"timeStamp":"1","nonceStr":"n","package":"prepay_id=x","signType":"RSA","paySign":"s"}`}})
	if err != nil || !strings.Contains(string(pp.JSON), `"username":"gh_0sandbox0001"`) {
		t.Errorf("PayParams against the sandbox = %s, %v", pp.JSON, err)
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
		{"missing app_secret", map[string]string{"app_id": appID}, "app_secret"},
		{"original_id not gh_", map[string]string{"app_id": appID, "app_secret": secret, "original_id": "wx123"}, "original_id"},
		{"page_path with query", map[string]string{"app_id": appID, "app_secret": secret, "page_path": "pages/pay/index?x=1"}, "page_path"},
		{"bad api_base", map[string]string{"app_id": appID, "app_secret": secret, "api_base": "ftp://x"}, "api_base"},
		{"oauth_base is not a mini-program setting", map[string]string{"app_id": appID, "app_secret": secret, "oauth_base": "https://x"}, "oauth_base"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := plugintest.Configure(t.Context(), plugintest.Serve(t, miniapp.New(nil)), c.settings, plugin.Config{})
			if got := plugintest.RefusedSetting(err); got != c.field || strings.Contains(fmt.Sprint(err), secret) {
				t.Errorf("Configure error = %v, want one refusing %s without showing the secret", err, c.field)
			}
		})
	}
}

func TestAuthorizeURLUnsupported(t *testing.T) {
	_, err := serve(t, nil).AuthorizeURL(t.Context(), plugin.AuthorizeInput{RedirectURI: "https://a.example/"})
	wantError(t, err, plugin.CodeUnsupported, "")
}

func TestExchangeCode(t *testing.T) {
	wx := wechattest.New(t)
	wx.AddApp(appID, secret)
	f := serve(t, map[string]string{"api_base": wx.URL})

	code := wx.MintCode(appID, "o-mini-1", "")
	id, err := f.ExchangeCode(t.Context(), plugin.ExchangeInput{Code: code})
	if err != nil {
		t.Fatal(err)
	}
	if id != (plugin.Identity{OpenID: "o-mini-1", AppID: appID}) {
		t.Errorf("identity = %+v", id)
	}
	reqs := wx.Requests()
	want := map[string][]string{"appid": {appID}, "secret": {secret}, "js_code": {code}, "grant_type": {"authorization_code"}}
	if len(reqs) != 1 || reqs[0].Path != "/sns/jscode2session" || !reflect.DeepEqual(map[string][]string(reqs[0].Query), want) {
		t.Errorf("requests = %+v", reqs)
	}

	_, err = f.ExchangeCode(t.Context(), plugin.ExchangeInput{Code: code})
	wantError(t, err, plugin.CodeCodeInvalid, "code")

	wx.FailWith(40226) // high-risk user
	_, err = f.ExchangeCode(t.Context(), plugin.ExchangeInput{Code: wx.MintCode(appID, "o", "")})
	wantError(t, err, plugin.CodeCodeExchangeFailed, "")
}

func TestShapeOrder(t *testing.T) {
	wx := wechattest.New(t)
	wx.AddApp(appID, secret)
	f := serve(t, map[string]string{"api_base": wx.URL})

	got, err := f.ShapeOrder(t.Context(), plugin.OrderInput{Buyer: plugin.Buyer{OpenID: "o-7"}, ClientIP: "198.51.100.4"})
	if err != nil {
		t.Fatal(err)
	}
	want := plugin.OrderShape{
		TradeType: "T_MINIAPP",
		Fields: map[string]string{
			"wx_data":         `{"sub_appid":"wx8888888888888888","sub_openid":"o-7"}`,
			"risk_check_data": `{"ip_addr":"198.51.100.4"}`,
		},
		Buyer: plugin.Identity{OpenID: "o-7", AppID: appID},
	}
	if got.PayParams == nil {
		t.Error("ShapeOrder gave no pay recipe")
	}
	got.PayParams = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ShapeOrder = %+v\nwant %+v", got, want)
	}

	code := wx.MintCode(appID, "o-from-login", "u-1")
	got, err = f.ShapeOrder(t.Context(), plugin.OrderInput{Buyer: plugin.Buyer{Code: code}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Fields["wx_data"] != `{"sub_appid":"wx8888888888888888","sub_openid":"o-from-login"}` ||
		got.Buyer != (plugin.Identity{OpenID: "o-from-login", UnionID: "u-1", AppID: appID}) {
		t.Errorf("ShapeOrder with code = %+v", got)
	}

	_, err = f.ShapeOrder(t.Context(), plugin.OrderInput{})
	wantError(t, err, plugin.CodeInvalidBuyer, "buyer.openid")
	_, err = f.ShapeOrder(t.Context(), plugin.OrderInput{Buyer: plugin.Buyer{Code: "c", AppID: "wxother"}})
	wantError(t, err, plugin.CodeInvalidBuyer, "buyer.app_id")
}

func TestPayParams(t *testing.T) {
	const payInfo = `{"appId":"wx8888888888888888","timeStamp":"1700000000","nonceStr":"n0nce","package":"prepay_id=wx201410272009395522657a690389285100","signType":"RSA","paySign":"c2lnbg=="}`
	cases := []struct {
		name     string
		settings map[string]string
		in       plugin.PayParamsInput
		want     string
	}{
		{
			name:     "with launch, query encoded",
			settings: map[string]string{"original_id": "gh_abcdef123456"},
			in:       plugin.PayParamsInput{PaymentID: "pay_01H", OutTradeNo: "A&B 1/2", Upstream: map[string]string{"pay_info": payInfo}},
			want: `{"request_payment":{"timeStamp":"1700000000","nonceStr":"n0nce","package":"prepay_id=wx201410272009395522657a690389285100","signType":"RSA","paySign":"c2lnbg=="},` +
				`"launch":{"username":"gh_abcdef123456","path":"pages/pay/index?payment_id=pay_01H&out_trade_no=A%26B+1%2F2"}}`,
		},
		{
			name:     "configured page path",
			settings: map[string]string{"original_id": "gh_abcdef123456", "page_path": "/sub/checkout"},
			in:       plugin.PayParamsInput{PaymentID: "p", OutTradeNo: "o", Upstream: map[string]string{"pay_info": payInfo}},
			want: `{"request_payment":{"timeStamp":"1700000000","nonceStr":"n0nce","package":"prepay_id=wx201410272009395522657a690389285100","signType":"RSA","paySign":"c2lnbg=="},` +
				`"launch":{"username":"gh_abcdef123456","path":"sub/checkout?payment_id=p&out_trade_no=o"}}`,
		},
		{
			name: "without original_id there is no launch; appId may be absent",
			in: plugin.PayParamsInput{PaymentID: "p", OutTradeNo: "o", Upstream: map[string]string{
				"pay_info": `{"timeStamp":"1","nonceStr":"n","package":"prepay_id=p","signType":"RSA","paySign":"s"}`}},
			want: `{"request_payment":{"timeStamp":"1","nonceStr":"n","package":"prepay_id=p","signType":"RSA","paySign":"s"}}`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := serve(t, c.settings)
			shape, err := f.ShapeOrder(t.Context(), plugin.OrderInput{PaymentID: c.in.PaymentID, OutTradeNo: c.in.OutTradeNo, Buyer: plugin.Buyer{OpenID: "o-1"}})
			if err != nil {
				t.Fatal(err)
			}
			got, err := plugintest.PayParams(t, f, shape, c.in)
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != upstream.KindWeChatMiniApp || string(got.JSON) != c.want {
				t.Errorf("PayParams = %s %s\nwant %s", got.Kind, got.JSON, c.want)
			}
		})
	}

	f := serve(t, nil)
	shape, err := f.ShapeOrder(t.Context(), plugin.OrderInput{Buyer: plugin.Buyer{OpenID: "o-1"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = plugintest.PayParams(t, f, shape, plugin.PayParamsInput{Upstream: map[string]string{
		"pay_info": `{"appId":"wx1","timeStamp":"1","nonceStr":"n","package":"prepay_id=p","signType":"RSA"}`}})
	wantError(t, err, plugin.CodeInvalidRequest, "pay_info")
}

// TestMerchantsHaveTheirOwnMiniProgram configures a service provider's
// merchant with a mini-program of its own: its orders carry its app id as
// sub_appid, its codes are exchanged with its secret, and its launch
// links open its mini-program; other merchants use the flow's.
func TestMerchantsHaveTheirOwnMiniProgram(t *testing.T) {
	const otherApp, otherSecret = "wx7777777777777777", "other-secret-0123456789abcdef"
	wx := wechattest.New(t)
	wx.AddApp(appID, secret)
	wx.AddApp(otherApp, otherSecret)
	f := plugintest.Serve(t, miniapp.New(nil))
	raw := map[string]string{"app_id": appID, "app_secret": secret, "api_base": wx.URL, "original_id": "gh_base"}
	own, err := miniapp.Schema.ApplyMerchant("m2", raw, map[string]string{"app_id": otherApp, "app_secret": otherSecret}, plugin.Environment{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plugintest.Configure(t.Context(), f, raw, plugin.Config{Merchants: map[string]plugin.Settings{"m2": own}}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	code := wx.MintCode(otherApp, "o-other", "")
	shape, err := f.ShapeOrder(t.Context(), plugin.OrderInput{MerchantID: "m2", AmountFen: 1, Buyer: plugin.Buyer{Code: code}})
	if err != nil {
		t.Fatalf("ShapeOrder for m2: %v", err)
	}
	if want := `{"sub_appid":"` + otherApp + `","sub_openid":"o-other"}`; shape.Fields["wx_data"] != want {
		t.Errorf("wx_data = %s, want %s", shape.Fields["wx_data"], want)
	}
	// A code of m2's mini-program is no code of the flow's.
	if _, err := f.ShapeOrder(t.Context(), plugin.OrderInput{MerchantID: "m1", AmountFen: 1, Buyer: plugin.Buyer{Code: wx.MintCode(otherApp, "o-x", "")}}); err == nil {
		t.Errorf("m1 exchanged a code of m2's mini-program")
	}
	pp, err := f.PayParams(t.Context(), plugin.PayParamsInput{MerchantID: "m2", PaymentID: "p", Upstream: map[string]string{
		"pay_info": `{"timeStamp":"1","nonceStr":"n","package":"prepay_id=x","signType":"RSA","paySign":"s"}`}})
	if err != nil || strings.Contains(string(pp.JSON), "gh_base") {
		t.Errorf("m2's pay params launch the flow's mini-program: %s, %v", pp.JSON, err)
	}
	// A merchant with an app of its own and the flow's secret is refused.
	bad, err := miniapp.Schema.ApplyMerchant("m3", raw, map[string]string{"app_id": otherApp}, plugin.Environment{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = plugintest.Configure(t.Context(), f, raw, plugin.Config{Merchants: map[string]plugin.Settings{"m3": bad}})
	if plugintest.RefusedSetting(err) != "merchants.m3.app_secret" || strings.Contains(err.Error(), secret) {
		t.Errorf("merchant without its own secret: %v", err)
	}
}
