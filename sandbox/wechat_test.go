package sandbox_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
)

type wxAnswer struct {
	ErrCode     int    `json:"errcode"`
	ErrMsg      string `json:"errmsg"`
	OpenID      string `json:"openid"`
	AccessToken string `json:"access_token"`
	SessionKey  string `json:"session_key"`
	Scope       string `json:"scope"`
}

func wxGet(t *testing.T, inst *sandboxtest.Instance, path string, q url.Values) wxAnswer {
	t.Helper()
	resp, err := inst.HTTP.Get(inst.URL + path + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var a wxAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
	return a
}

// TestWeChatCodeExchange checks the code rules of both exchanges: a code
// maps to a stable openid per app, works once (40163 after), unknown codes
// give 40029, wrong secrets 40125, unknown apps 40013.
func TestWeChatCodeExchange(t *testing.T) {
	inst, clock := start(t)
	for _, ex := range []struct {
		path, codeParam, app, secret string
	}{
		{"/sns/oauth2/access_token", "code", sandbox.DevWeChatAppID, sandbox.DevWeChatSecret},
		{"/sns/jscode2session", "js_code", sandbox.DevMiniAppID, sandbox.DevMiniAppSecret},
	} {
		t.Run(ex.path, func(t *testing.T) {
			q := func(app, secret, code string) url.Values {
				return url.Values{"appid": {app}, "secret": {secret}, ex.codeParam: {code}, "grant_type": {"authorization_code"}}
			}
			c1 := inst.MintWeChatCode(t, ex.app, "alice")
			c2 := inst.MintWeChatCode(t, ex.app, "alice")
			c3 := inst.MintWeChatCode(t, ex.app, "bob")
			other := inst.MintWeChatCode(t, otherApp(ex.app), "alice")
			if c1.Code == c2.Code || c1.OpenID != c2.OpenID || c1.OpenID == c3.OpenID || c1.OpenID == other.OpenID ||
				c1.OpenID != sandbox.OpenID(ex.app, "alice") {
				t.Fatalf("codes %+v %+v %+v %+v", c1, c2, c3, other)
			}
			a := wxGet(t, inst, ex.path, q(ex.app, ex.secret, c1.Code))
			if a.ErrCode != 0 || a.OpenID != c1.OpenID {
				t.Fatalf("exchange = %+v", a)
			}
			if ex.codeParam == "code" && (a.AccessToken == "" || a.Scope != "snsapi_base") {
				t.Fatalf("access token answer = %+v", a)
			}
			if ex.codeParam == "js_code" && a.SessionKey == "" {
				t.Fatalf("session answer = %+v", a)
			}
			tests := []struct {
				name string
				q    url.Values
				want int
			}{
				{"reused code", q(ex.app, ex.secret, c1.Code), sandbox.WxErrCodeUsed},
				{"unknown code", q(ex.app, ex.secret, "nosuchcode"), sandbox.WxErrInvalidCode},
				{"code of another app", q(ex.app, ex.secret, other.Code), sandbox.WxErrInvalidCode},
				{"wrong secret", q(ex.app, "wrong", c2.Code), sandbox.WxErrInvalidSecret},
				{"unknown app", q("wxnosuchapp", ex.secret, c2.Code), sandbox.WxErrInvalidAppID},
				{"missing app", q("", ex.secret, c2.Code), sandbox.WxErrMissingAppID},
				{"missing secret", q(ex.app, "", c2.Code), sandbox.WxErrMissingSecret},
				{"missing code", q(ex.app, ex.secret, ""), sandbox.WxErrMissingCode},
				{"wrong grant type", with2(q(ex.app, ex.secret, c2.Code), "grant_type", "client_credential"), sandbox.WxErrInvalidGrant},
			}
			for _, tc := range tests {
				if a := wxGet(t, inst, ex.path, tc.q); a.ErrCode != tc.want || a.ErrMsg == "" || a.OpenID != "" {
					t.Errorf("%s: %+v, want errcode %d", tc.name, a, tc.want)
				}
			}
			// The refused calls did not use up c2; it works until it expires.
			if a := wxGet(t, inst, ex.path, q(ex.app, ex.secret, c2.Code)); a.OpenID != c1.OpenID {
				t.Fatalf("c2 = %+v", a)
			}
			clock.Advance(sandbox.WeChatCodeTTL + time.Second)
			if a := wxGet(t, inst, ex.path, q(ex.app, ex.secret, c3.Code)); a.ErrCode != sandbox.WxErrInvalidCode {
				t.Fatalf("expired code = %+v", a)
			}
		})
	}
	if _, err := inst.Control.MintWeChatCode(testCtx(t), "wxnosuchapp", ""); err == nil {
		t.Fatal("minting a code for an unknown app succeeded")
	}
}

func otherApp(app string) string {
	if app == sandbox.DevWeChatAppID {
		return sandbox.DevMiniAppID
	}
	return sandbox.DevWeChatAppID
}

func with2(v url.Values, k, val string) url.Values {
	v.Set(k, val)
	return v
}

// TestWeChatAuthorize follows the OAuth redirect the way a browser in WeChat
// would and exchanges the code it carries.
func TestWeChatAuthorize(t *testing.T) {
	inst, _ := start(t)
	noRedirect := &http.Client{Transport: inst.HTTP.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	authorize := func(q url.Values) *http.Response {
		resp, err := noRedirect.Get(inst.URL + "/connect/oauth2/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp
	}
	good := url.Values{"appid": {sandbox.DevWeChatAppID}, "redirect_uri": {"https://shop.example/pay?order=9"},
		"response_type": {"code"}, "scope": {"snsapi_userinfo"}, "state": {"xyz"}, "sandbox_user": {"carol"}}
	resp := authorize(good)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("HTTP %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if loc.Host != "shop.example" || loc.Path != "/pay" || loc.Query().Get("order") != "9" || loc.Query().Get("state") != "xyz" || loc.Query().Get("code") == "" {
		t.Fatalf("redirect to %s", loc)
	}
	a := wxGet(t, inst, "/sns/oauth2/access_token", url.Values{"appid": {sandbox.DevWeChatAppID}, "secret": {sandbox.DevWeChatSecret},
		"code": {loc.Query().Get("code")}, "grant_type": {"authorization_code"}})
	if a.OpenID != sandbox.OpenID(sandbox.DevWeChatAppID, "carol") || a.Scope != "snsapi_userinfo" {
		t.Fatalf("exchange = %+v", a)
	}
	for name, q := range map[string]url.Values{
		"unknown app":         with2(cloneValues(good), "appid", "wxnosuchapp"),
		"relative redirect":   with2(cloneValues(good), "redirect_uri", "/pay"),
		"wrong response_type": with2(cloneValues(good), "response_type", "token"),
		"wrong scope":         with2(cloneValues(good), "scope", "snsapi_login"),
	} {
		if resp := authorize(q); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d, want 400", name, resp.StatusCode)
		}
	}
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
