package sandbox_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// wxMP is one answer of WeChat's server APIs.
type wxMP struct {
	ErrCode     int    `json:"errcode"`
	ErrMsg      string `json:"errmsg"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	OpenLink    string `json:"openlink"`
	URLLink     string `json:"url_link"`
}

func wxPost(t *testing.T, inst *sandboxtest.Instance, path string, q url.Values, body string) wxMP {
	t.Helper()
	u := inst.URL + path
	if q != nil {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return wxDo(t, inst, req)
}

func wxGetMP(t *testing.T, inst *sandboxtest.Instance, path string, q url.Values) wxMP {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, inst.URL+path+"?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return wxDo(t, inst, req)
}

// wxDo sends req and decodes WeChat's answer, which always comes with HTTP
// 200.
func wxDo(t *testing.T, inst *sandboxtest.Instance, req *http.Request) wxMP {
	t.Helper()
	resp, err := inst.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var a wxMP
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: HTTP %d, %v", req.URL.Path, resp.StatusCode, err)
	}
	return a
}

func wantWx(t *testing.T, a wxMP, code int) {
	t.Helper()
	if a.ErrCode != code {
		t.Fatalf("errcode = %d (%s), want %d", a.ErrCode, a.ErrMsg, code)
	}
}

func serverToken(t *testing.T, inst *sandboxtest.Instance, app, secret string) wxMP {
	t.Helper()
	return wxGetMP(t, inst, "/cgi-bin/token", url.Values{"grant_type": {"client_credential"}, "appid": {app}, "secret": {secret}})
}

func stableToken(t *testing.T, inst *sandboxtest.Instance, force bool) wxMP {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"grant_type": "client_credential", "appid": sandbox.DevMiniAppID, "secret": sandbox.DevMiniAppSecret, "force_refresh": force})
	return wxPost(t, inst, "/cgi-bin/stable_token", nil, string(b))
}

// scheme asks for a URL Scheme with token and body.
func scheme(t *testing.T, inst *sandboxtest.Instance, token, body string) wxMP {
	t.Helper()
	return wxPost(t, inst, "/wxa/generatescheme", url.Values{"access_token": {token}}, body)
}

func TestWeChatServerToken(t *testing.T) {
	inst, clock := start(t)
	first := serverToken(t, inst, sandbox.DevMiniAppID, sandbox.DevMiniAppSecret)
	if first.ErrCode != 0 || first.AccessToken == "" || first.ExpiresIn != 7200 {
		t.Fatalf("token = %+v", first)
	}
	for name, tc := range map[string]struct {
		q    url.Values
		want int
	}{
		"no appid":        {url.Values{"grant_type": {"client_credential"}, "secret": {"x"}}, sandbox.WxErrMissingAppID},
		"unknown app":     {url.Values{"grant_type": {"client_credential"}, "appid": {"wxnosuchapp"}, "secret": {"x"}}, sandbox.WxErrInvalidAppID},
		"no secret":       {url.Values{"grant_type": {"client_credential"}, "appid": {sandbox.DevMiniAppID}}, sandbox.WxErrMissingSecret},
		"wrong secret":    {url.Values{"grant_type": {"client_credential"}, "appid": {sandbox.DevMiniAppID}, "secret": {"nope"}}, sandbox.WxErrInvalidSecret},
		"wrong grant":     {url.Values{"grant_type": {"authorization_code"}, "appid": {sandbox.DevMiniAppID}, "secret": {sandbox.DevMiniAppSecret}}, sandbox.WxErrInvalidGrant},
		"secret of other": {url.Values{"grant_type": {"client_credential"}, "appid": {sandbox.DevMiniAppID}, "secret": {sandbox.DevWeChatSecret}}, sandbox.WxErrInvalidSecret},
	} {
		t.Run(name, func(t *testing.T) { wantWx(t, wxGetMP(t, inst, "/cgi-bin/token", tc.q), tc.want) })
	}

	// A new token replaces the old one, which stays valid for five
	// minutes.
	second := serverToken(t, inst, sandbox.DevMiniAppID, sandbox.DevMiniAppSecret)
	if second.AccessToken == first.AccessToken {
		t.Fatal("cgi-bin/token answered the same token twice")
	}
	wantWx(t, scheme(t, inst, first.AccessToken, `{}`), 0)
	clock.Advance(sandbox.WeChatTokenOverlap)
	wantWx(t, scheme(t, inst, first.AccessToken, `{}`), sandbox.WxErrTokenExpired)
	wantWx(t, scheme(t, inst, second.AccessToken, `{}`), 0)
	clock.Advance(sandbox.WeChatTokenTTL)
	wantWx(t, scheme(t, inst, second.AccessToken, `{}`), sandbox.WxErrTokenExpired)

	// The daily quota.
	one := 1
	if _, err := inst.Control.SetWeChatApp(testCtx(t), sandbox.WeChatAppRequest{AppID: sandbox.DevWeChatAppID, DailyTokens: &one}); err != nil {
		t.Fatal(err)
	}
	wantWx(t, serverToken(t, inst, sandbox.DevWeChatAppID, sandbox.DevWeChatSecret), 0)
	wantWx(t, serverToken(t, inst, sandbox.DevWeChatAppID, sandbox.DevWeChatSecret), sandbox.WxErrDailyQuota)
	clock.Advance(24 * time.Hour)
	wantWx(t, serverToken(t, inst, sandbox.DevWeChatAppID, sandbox.DevWeChatSecret), 0)
}

func TestWeChatStableToken(t *testing.T) {
	inst, clock := start(t)
	a := stableToken(t, inst, false)
	if a.ErrCode != 0 || a.AccessToken == "" || a.ExpiresIn != 7200 {
		t.Fatalf("stable token = %+v", a)
	}
	clock.Advance(time.Hour)
	b := stableToken(t, inst, false)
	if b.AccessToken != a.AccessToken || b.ExpiresIn != 3600 {
		t.Fatalf("stable token an hour later = %+v, want the same token with 3600 s left", b)
	}
	// cgi-bin/token does not touch the stable token.
	wantWx(t, serverToken(t, inst, sandbox.DevMiniAppID, sandbox.DevMiniAppSecret), 0)
	wantWx(t, scheme(t, inst, a.AccessToken, `{}`), 0)
	// Forcing a refresh ends the old token at once.
	c := stableToken(t, inst, true)
	if c.ErrCode != 0 || c.AccessToken == a.AccessToken || c.ExpiresIn != 7200 {
		t.Fatalf("forced refresh = %+v", c)
	}
	wantWx(t, scheme(t, inst, a.AccessToken, `{}`), sandbox.WxErrInvalidCredential)
	wantWx(t, scheme(t, inst, c.AccessToken, `{}`), 0)
	// Once expired, the normal mode hands out a new one.
	clock.Advance(sandbox.WeChatTokenTTL)
	if d := stableToken(t, inst, false); d.ErrCode != 0 || d.AccessToken == c.AccessToken {
		t.Fatalf("after expiry = %+v", d)
	}
	one := 1
	if _, err := inst.Control.SetWeChatApp(testCtx(t), sandbox.WeChatAppRequest{AppID: sandbox.DevMiniAppID, DailyForceRefresh: &one}); err != nil {
		t.Fatal(err)
	}
	wantWx(t, stableToken(t, inst, true), sandbox.WxErrDailyQuota) // the one of today is used
	wantWx(t, wxPost(t, inst, "/cgi-bin/stable_token", nil, `{"grant_type":`), sandbox.WxErrDataFormat)
	wantWx(t, wxPost(t, inst, "/cgi-bin/stable_token", nil, `{"grant_type":"client_credential","appid":"`+sandbox.DevMiniAppID+`","secret":"x"}`), sandbox.WxErrInvalidSecret)
}

func TestWeChatExpireTokenControl(t *testing.T) {
	inst, _ := start(t)
	a := serverToken(t, inst, sandbox.DevMiniAppID, sandbox.DevMiniAppSecret)
	if n, err := inst.Control.ExpireWeChatTokens(testCtx(t), sandbox.ExpireTokensRequest{AppID: sandbox.DevMiniAppID}); err != nil || n != 1 {
		t.Fatalf("expire = %d, %v", n, err)
	}
	wantWx(t, scheme(t, inst, a.AccessToken, `{}`), sandbox.WxErrTokenExpired)
	b := stableToken(t, inst, false)
	c := serverToken(t, inst, sandbox.DevMiniAppID, sandbox.DevMiniAppSecret)
	if n, err := inst.Control.ExpireWeChatTokens(testCtx(t), sandbox.ExpireTokensRequest{AppID: sandbox.DevMiniAppID, AccessToken: b.AccessToken, Revoke: true}); err != nil || n != 1 {
		t.Fatalf("revoke = %d, %v", n, err)
	}
	wantWx(t, scheme(t, inst, b.AccessToken, `{}`), sandbox.WxErrInvalidCredential)
	wantWx(t, scheme(t, inst, c.AccessToken, `{}`), 0) // only the named token ended
	if d := stableToken(t, inst, false); d.AccessToken == b.AccessToken {
		t.Fatal("a revoked stable token is handed out again")
	}
	if _, err := inst.Control.ExpireWeChatTokens(testCtx(t), sandbox.ExpireTokensRequest{AppID: sandbox.DevWeChatAppID}); err == nil {
		t.Fatal("ending the tokens of an app that has none succeeded")
	}
}

func TestWeChatGenerateLinks(t *testing.T) {
	inst, clock := start(t)
	tok := serverToken(t, inst, sandbox.DevMiniAppID, sandbox.DevMiniAppSecret).AccessToken
	now := clock.Now()
	ok := scheme(t, inst, tok, `{"jump_wxa":{"path":"pages/pay/index","query":"checkout=ck_1&x=%E4%B8%AD","env_version":"trial"},"is_expire":true,"expire_type":1,"expire_interval":1}`)
	wantWx(t, ok, 0)
	if !strings.HasPrefix(ok.OpenLink, "weixin://dl/business/?t=") {
		t.Fatalf("openlink = %q", ok.OpenLink)
	}
	link := wxPost(t, inst, "/wxa/generate_urllink", url.Values{"access_token": {tok}}, `{"path":"pages/pay/index","query":"checkout=ck_2","is_expire":true,"expire_type":0,"expire_time":`+strconv.FormatInt(now.Add(time.Hour).Unix(), 10)+`}`)
	wantWx(t, link, 0)
	if !strings.HasPrefix(link.URLLink, "https://wxaurl.cn/") {
		t.Fatalf("url_link = %q", link.URLLink)
	}

	// Where they lead, and until when.
	l, err := inst.Control.OpenWeChatLink(testCtx(t), ok.OpenLink)
	if err != nil || l.Kind != sandbox.LinkScheme || l.AppID != sandbox.DevMiniAppID || l.Path != "pages/pay/index" ||
		l.Query != "checkout=ck_1&x=%E4%B8%AD" || l.EnvVersion != "trial" || l.Scene != sandbox.SceneURLScheme || !l.ExpiresAt.Equal(now.Add(24*time.Hour)) ||
		!strings.HasPrefix(l.MiniProgramURL, inst.URL+sandbox.PathWeChatMiniProgram+"?") {
		t.Fatalf("scheme opens %+v, %v", l, err)
	}
	l, err = inst.Control.OpenWeChatLink(testCtx(t), link.URLLink)
	if err != nil || l.Kind != sandbox.LinkURL || l.Query != "checkout=ck_2" || l.EnvVersion != "release" || l.Scene != sandbox.SceneURLLink ||
		l.ExpiresAt.Unix() != now.Add(time.Hour).Unix() {
		t.Fatalf("link opens %+v, %v", l, err)
	}
	clock.Advance(time.Hour)
	if _, err := inst.Control.OpenWeChatLink(testCtx(t), link.URLLink); err == nil || !strings.Contains(err.Error(), "gone") {
		t.Fatalf("expired link: %v, want gone", err)
	}
	if _, err := inst.Control.OpenWeChatLink(testCtx(t), "https://wxaurl.cn/nosuchlink"); err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Fatalf("unknown link: %v, want not_found", err)
	}

	long := strings.Repeat("a", 1025)
	for name, tc := range map[string]struct {
		body string
		want int
	}{
		"not JSON":                 {`{"jump_wxa":`, sandbox.WxErrDataFormat},
		"path with a query":        {`{"jump_wxa":{"path":"pages/pay/index?x=1"}}`, sandbox.WxErrInvalidPagePath},
		"path with a leading /":    {`{"jump_wxa":{"path":"/pages/pay/index"}}`, sandbox.WxErrInvalidPagePath},
		"query with a space":       {`{"jump_wxa":{"query":"a=b c"}}`, sandbox.WxErrInvalidQuery},
		"query too long":           {`{"jump_wxa":{"query":"` + long + `"}}`, sandbox.WxErrInvalidQuery},
		"unknown env_version":      {`{"jump_wxa":{"env_version":"beta"}}`, sandbox.WxErrInvalidArgs},
		"expire_time passed":       {`{"is_expire":true,"expire_time":` + strconv.FormatInt(now.Unix(), 10) + `}`, sandbox.WxErrExpireTime},
		"expire_time past 30 days": {`{"is_expire":true,"expire_time":` + strconv.FormatInt(now.Add(31*24*time.Hour).Unix(), 10) + `}`, sandbox.WxErrExpireTime},
		"expire_interval 0":        {`{"is_expire":true,"expire_type":1,"expire_interval":0}`, sandbox.WxErrExpireInterval},
		"expire_interval 31":       {`{"is_expire":true,"expire_type":1,"expire_interval":31}`, sandbox.WxErrExpireInterval},
	} {
		t.Run(name, func(t *testing.T) {
			tok := serverToken(t, inst, sandbox.DevMiniAppID, sandbox.DevMiniAppSecret).AccessToken
			wantWx(t, scheme(t, inst, tok, tc.body), tc.want)
		})
	}
	tok = serverToken(t, inst, sandbox.DevMiniAppID, sandbox.DevMiniAppSecret).AccessToken
	wantWx(t, wxPost(t, inst, "/wxa/generatescheme", nil, `{}`), sandbox.WxErrMissingToken)
	wantWx(t, scheme(t, inst, "nosuchtoken", `{}`), sandbox.WxErrInvalidCredential)

	// Published pages and the daily quota, set by the control.
	pages := []string{"pages/pay/index"}
	one := 1
	st, err := inst.Control.SetWeChatApp(testCtx(t), sandbox.WeChatAppRequest{AppID: sandbox.DevMiniAppID, Pages: &pages})
	if err != nil || len(st.Pages) != 1 {
		t.Fatalf("set pages = %+v, %v", st, err)
	}
	wantWx(t, scheme(t, inst, tok, `{"jump_wxa":{"path":"pages/other/index"}}`), sandbox.WxErrInvalidPagePath)
	wantWx(t, scheme(t, inst, tok, `{"jump_wxa":{"path":"pages/pay/index"}}`), 0)
	st, err = inst.Control.SetWeChatApp(testCtx(t), sandbox.WeChatAppRequest{AppID: sandbox.DevMiniAppID, DailyLinks: &one})
	if err != nil || st.LinksToday != 3 {
		t.Fatalf("set quota = %+v, %v", st, err)
	}
	wantWx(t, scheme(t, inst, tok, `{}`), sandbox.WxErrDailyQuota)
	wantWx(t, wxPost(t, inst, "/wxa/generate_urllink", url.Values{"access_token": {tok}}, `{}`), sandbox.WxErrDailyQuota)
}

func TestWeChatOpenLinksWithoutAPICall(t *testing.T) {
	inst, _ := start(t)
	plain := "weixin://dl/business/?appid=" + sandbox.DevMiniAppID + "&path=pages/pay/index&query=" + url.QueryEscape("checkout=ck_3&src=h5") + "&env_version=develop"
	l, err := inst.Control.OpenWeChatLink(testCtx(t), plain)
	if err != nil || l.Kind != sandbox.LinkPlainScheme || l.AppID != sandbox.DevMiniAppID || l.Path != "pages/pay/index" ||
		l.Query != "checkout=ck_3&src=h5" || l.EnvVersion != "develop" || l.Scene != sandbox.SceneURLScheme || !l.ExpiresAt.IsZero() {
		t.Fatalf("plain scheme opens %+v, %v", l, err)
	}
	l, err = inst.Control.LaunchWeChatApp(testCtx(t), sandbox.DevMiniAppOriginalID, "pages/pay/index?checkout=ck_4", 2)
	if err != nil || l.Kind != sandbox.LinkApp || l.AppID != sandbox.DevMiniAppID || l.Path != "pages/pay/index" || l.Query != "checkout=ck_4" ||
		l.EnvVersion != "trial" || l.Scene != sandbox.SceneApp {
		t.Fatalf("app launch opens %+v, %v", l, err)
	}
	for name, link := range map[string]string{
		"unknown app":  "weixin://dl/business/?appid=wxnosuchapp&path=pages/pay/index",
		"bad path":     "weixin://dl/business/?appid=" + sandbox.DevMiniAppID + "&path=pages%20pay",
		"not a link":   "https://example.com/",
		"unknown t":    "weixin://dl/business/?t=nosuchscheme",
		"empty string": "",
	} {
		if l, err := inst.Control.OpenWeChatLink(testCtx(t), link); err == nil {
			t.Errorf("%s: opened %+v", name, l)
		}
	}
	if _, err := inst.Control.LaunchWeChatApp(testCtx(t), "gh_nosuchapp", "pages/pay/index", 0); err == nil {
		t.Error("launch by an unknown original id succeeded")
	}
	if _, err := inst.Control.LaunchWeChatApp(testCtx(t), sandbox.DevMiniAppOriginalID, "pages/pay/index", 3); err == nil {
		t.Error("launch with miniprogram_type 3 succeeded")
	}
	// The page form shows the same.
	resp, err := inst.HTTP.Get(inst.URL + sandbox.PathWeChatOpen + "?link=" + url.QueryEscape(plain))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`id="open-miniprogram"`)) || !bytes.Contains(body, []byte("checkout=ck_3&amp;src=h5")) {
		t.Fatalf("open page: HTTP %d\n%s", resp.StatusCode, body)
	}
}

func TestWeChatUserInfo(t *testing.T) {
	inst, clock := start(t)
	token := func(app, secret, scope, user string) wxAnswer {
		c := authorizeCode(t, inst, app, scope, user)
		return wxGet(t, inst, "/sns/oauth2/access_token", url.Values{"appid": {app}, "secret": {secret}, "code": {c}, "grant_type": {"authorization_code"}})
	}
	info := func(tok, openid string) (map[string]any, int) {
		resp, err := inst.HTTP.Get(inst.URL + "/sns/userinfo?" + url.Values{"access_token": {tok}, "openid": {openid}, "lang": {"zh_CN"}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		code, _ := m["errcode"].(float64)
		return m, int(code)
	}
	a := token(sandbox.DevWeChatAppID, sandbox.DevWeChatSecret, "snsapi_userinfo", "dora")
	u, code := info(a.AccessToken, a.OpenID)
	if code != 0 || u["openid"] != a.OpenID || u["nickname"] != "dora" || u["unionid"] == "" {
		t.Fatalf("userinfo = %v", u)
	}
	// The unionid is the user's across apps.
	b := token(sandbox.DevMiniAppID, sandbox.DevMiniAppSecret, "snsapi_userinfo", "dora")
	if u2, _ := info(b.AccessToken, b.OpenID); u2["unionid"] != u["unionid"] || u2["openid"] == u["openid"] {
		t.Fatalf("userinfo under another app = %v", u2)
	}
	base := token(sandbox.DevWeChatAppID, sandbox.DevWeChatSecret, "snsapi_base", "dora")
	if _, code := info(base.AccessToken, base.OpenID); code != sandbox.WxErrAPIUnauthorized {
		t.Fatalf("snsapi_base token: errcode %d, want 48001", code)
	}
	if _, code := info(a.AccessToken, b.OpenID); code != sandbox.WxErrInvalidOpenID {
		t.Fatalf("another openid: errcode %d, want 40003", code)
	}
	if _, code := info("", a.OpenID); code != sandbox.WxErrMissingToken {
		t.Fatalf("no token: errcode %d, want 41001", code)
	}
	server := serverToken(t, inst, sandbox.DevWeChatAppID, sandbox.DevWeChatSecret)
	if _, code := info(server.AccessToken, a.OpenID); code != sandbox.WxErrInvalidCredential {
		t.Fatalf("server token: errcode %d, want 40001", code)
	}
	clock.Advance(sandbox.WeChatTokenTTL)
	if _, code := info(a.AccessToken, a.OpenID); code != sandbox.WxErrTokenExpired {
		t.Fatalf("expired token: errcode %d, want 42001", code)
	}
}

// authorizeCode visits the OAuth page for user and returns the code the
// redirect carries.
func authorizeCode(t *testing.T, inst *sandboxtest.Instance, app, scope, user string) string {
	t.Helper()
	loc := authorizeRedirect(t, inst, url.Values{"appid": {app}, "redirect_uri": {"https://shop.example/back"}, "response_type": {"code"},
		"scope": {scope}, "state": {"s"}, "connect_redirect": {"1"}, "sandbox_user": {user}})
	return loc.Query().Get("code")
}

func authorizeRedirect(t *testing.T, inst *sandboxtest.Instance, q url.Values) *url.URL {
	t.Helper()
	noRedirect := &http.Client{Transport: inst.HTTP.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(inst.URL + "/connect/oauth2/authorize?" + q.Encode() + "#wechat_redirect")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: HTTP %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestWeChatAuthorizeConnectRedirect(t *testing.T) {
	inst, _ := start(t)
	q := url.Values{"appid": {sandbox.DevWeChatAppID}, "redirect_uri": {"https://shop.example/back?o=1"}, "response_type": {"code"},
		"scope": {"snsapi_base"}, "state": {"st"}, "connect_redirect": {"1"}}
	loc := authorizeRedirect(t, inst, q)
	if loc.Query().Get("code") == "" || loc.Query().Get("state") != "st" || loc.Query().Get("o") != "1" || loc.Query().Has("connect_redirect") {
		t.Fatalf("redirect to %s", loc)
	}
	q.Set("sandbox_deny", "1")
	if loc := authorizeRedirect(t, inst, q); loc.Query().Has("code") || loc.Query().Get("state") != "st" {
		t.Fatalf("a refusing user is redirected to %s, want state and no code", loc)
	}
	recs, err := inst.Control.WeChatAuthorizations(testCtx(t))
	if err != nil || len(recs) != 2 || recs[0].ConnectRedirect != "1" || recs[0].Scope != "snsapi_base" || recs[0].RedirectURI != "https://shop.example/back?o=1" {
		t.Fatalf("authorizations = %+v, %v", recs, err)
	}
}

// payAttempt is what the pay sheet posts.
func payAttempt(t *testing.T, inst *sandboxtest.Instance, kind, appID string, pi upstream.PayInfo, action string) sandbox.PayOutcome {
	t.Helper()
	b, _ := json.Marshal(sandbox.PayAttempt{Kind: kind, AppID: appID, TimeStamp: pi.TimeStamp, NonceStr: pi.NonceStr, Package: pi.Package,
		SignType: pi.SignType, PaySign: pi.PaySign, Action: action})
	resp, err := inst.HTTP.Post(inst.URL+sandbox.PathWeChatPay, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Error("the pay endpoint does not allow the merchant's page to call it")
	}
	var out sandbox.PayOutcome
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func payInfoOf(t *testing.T, out map[string]any) upstream.PayInfo {
	t.Helper()
	var pi upstream.PayInfo
	if err := json.Unmarshal([]byte(out["pay_info"].(string)), &pi); err != nil {
		t.Fatal(err)
	}
	return pi
}

func TestWeChatPaySheet(t *testing.T) {
	inst, _ := start(t)
	jsapi := payInfoOf(t, placeOrder(t, inst, order("PS1")))
	mini := payInfoOf(t, placeOrder(t, inst, with(order("PS2"), "trade_type", upstream.TradeWeChatMiniApp,
		"wx_data", `{"sub_appid":"`+sandbox.DevMiniAppID+`","sub_openid":"oMini"}`)))
	orderState := func(seq string) string {
		os, err := inst.Control.Orders(testCtx(t), sandbox.Filter{ReqSeqID: seq})
		if err != nil || len(os) != 1 {
			t.Fatal(err)
		}
		return os[0].TransStat
	}
	bad := jsapi
	bad.PaySign = mini.PaySign
	unknown := jsapi
	unknown.Package = "prepay_id=wxnosuchprepay"
	for name, tc := range map[string]struct {
		kind, app string
		pi        upstream.PayInfo
		action    string
		want      string
	}{
		"cancel":                         {"jsapi", jsapi.AppID, jsapi, "cancel", sandbox.PayResultCancel},
		"declined":                       {"jsapi", jsapi.AppID, jsapi, "fail", sandbox.PayResultFail},
		"JSAPI order by requestPayment":  {"miniprogram", jsapi.AppID, jsapi, "pay", sandbox.PayResultFail},
		"mini-program order by JSAPI":    {"jsapi", mini.AppID, mini, "pay", sandbox.PayResultFail},
		"another app id":                 {"jsapi", sandbox.DevMiniAppID, jsapi, "pay", sandbox.PayResultFail},
		"paySign of another order":       {"jsapi", jsapi.AppID, bad, "pay", sandbox.PayResultFail},
		"unknown prepay_id":              {"jsapi", jsapi.AppID, unknown, "pay", sandbox.PayResultFail},
		"mini-program order, wrong kind": {"nosuchkind", mini.AppID, mini, "pay", sandbox.PayResultFail},
	} {
		t.Run(name, func(t *testing.T) {
			if got := payAttempt(t, inst, tc.kind, tc.app, tc.pi, tc.action); got.Result != tc.want {
				t.Fatalf("outcome = %+v, want %s", got, tc.want)
			}
		})
	}
	if orderState("PS1") != nkp.StatProcessing || orderState("PS2") != nkp.StatProcessing {
		t.Fatal("a payment that was not made changed an order")
	}
	if got := payAttempt(t, inst, "jsapi", jsapi.AppID, jsapi, "pay"); got.Result != sandbox.PayResultOK {
		t.Fatalf("pay JSAPI = %+v", got)
	}
	if got := payAttempt(t, inst, "miniprogram", sandbox.DevMiniAppID, mini, "pay"); got.Result != sandbox.PayResultOK {
		t.Fatalf("pay mini-program = %+v", got)
	}
	if orderState("PS1") != nkp.StatSuccess || orderState("PS2") != nkp.StatSuccess {
		t.Fatal("paid orders are not paid")
	}
	if got := payAttempt(t, inst, "jsapi", jsapi.AppID, jsapi, "pay"); got.Result != sandbox.PayResultFail || !strings.Contains(got.Message, "final") {
		t.Fatalf("paying twice = %+v", got)
	}

	// Preflight of the merchant's page.
	req, _ := http.NewRequest(http.MethodOptions, inst.URL+sandbox.PathWeChatPay, nil)
	req.Header.Set("Origin", "http://shop.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := inst.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Headers") != "Content-Type" {
		t.Fatalf("preflight: HTTP %d %v", resp.StatusCode, resp.Header)
	}
}

func TestWeChatRelay(t *testing.T) {
	inst, _ := start(t)
	relay := func() (int, map[string]any) {
		resp, err := inst.HTTP.Post(inst.URL+sandbox.PathWeChatRequest, "application/json",
			strings.NewReader(`{"appid":"`+sandbox.DevMiniAppID+`","data":{"code":"c1","query":{"checkout":"ck_9"}}}`))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if status, _ := relay(); status != http.StatusConflict {
		t.Fatalf("relay without a back end: HTTP %d, want 409", status)
	}
	var mu sync.Mutex
	var got []byte
	var referer string
	backend := newLoopback(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, referer = b, r.Header.Get("Referer")
		mu.Unlock()
		w.WriteHeader(http.StatusPaymentRequired)
		_, _ = io.WriteString(w, `{"error":{"code":"checkout_expired"}}`)
	}))
	u := backend.URL + "/mp/pay"
	if _, err := inst.Control.SetWeChatApp(testCtx(t), sandbox.WeChatAppRequest{AppID: sandbox.DevMiniAppID, BackendURL: &u}); err != nil {
		t.Fatal(err)
	}
	status, m := relay()
	mu.Lock()
	defer mu.Unlock()
	if status != http.StatusOK || m["statusCode"] != float64(http.StatusPaymentRequired) || m["data"].(map[string]any)["error"] == nil {
		t.Fatalf("relay answer: HTTP %d %v", status, m)
	}
	if string(got) != `{"code":"c1","query":{"checkout":"ck_9"}}` || referer != "https://servicewechat.com/"+sandbox.DevMiniAppID+"/0/page-frame.html" {
		t.Fatalf("the back end got %s with Referer %q", got, referer)
	}
}

func TestWeChatScripts(t *testing.T) {
	inst, _ := start(t)
	for _, p := range []string{sandbox.PathWeChatBridge, sandbox.PathWeChatPaySheet} {
		resp, err := inst.HTTP.Get(inst.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") ||
			!bytes.Contains(body, []byte(`var base = "`+inst.URL+`";`)) {
			t.Fatalf("%s: HTTP %d %s\n%.200s", p, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
}
