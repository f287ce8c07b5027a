package wechat_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/plugins/internal/wechat"
	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/plugin"
)

func tokenSource(sb *sandboxtest.Instance, api string) *wechat.TokenSource {
	return &wechat.TokenSource{
		HTTP: wechat.NewHTTPClient(5 * time.Second), APIBase: sb.URL,
		AppID: sandbox.DevMiniAppID, Secret: sandbox.DevMiniAppSecret, API: api,
	}
}

// tokensToday is how often the sandbox issued a cgi-bin/token to the
// mini-program today.
func tokensToday(t *testing.T, sb *sandboxtest.Instance) int {
	t.Helper()
	st, err := sb.Control.SetWeChatApp(t.Context(), sandbox.WeChatAppRequest{AppID: sandbox.DevMiniAppID})
	if err != nil {
		t.Fatalf("SetWeChatApp: %v", err)
	}
	return st.TokensToday
}

// TestTokenFetchedOnceForConcurrentCallers has many callers ask at once
// for a token nobody has yet: WeChat is asked once and all get its token.
func TestTokenFetchedOnceForConcurrentCallers(t *testing.T) {
	sb := sandboxtest.Start(t)
	src := tokenSource(sb, wechat.TokenAPIToken)
	const n = 16
	toks := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { toks[i], errs[i] = src.Token(t.Context()) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || toks[i] == "" || toks[i] != toks[0] {
			t.Fatalf("caller %d: %q, %v; first got %q", i, toks[i], errs[i], toks[0])
		}
	}
	if got := tokensToday(t, sb); got != 1 {
		t.Errorf("WeChat issued %d tokens for %d concurrent callers, want 1", got, n)
	}
	// Cached: asking again costs nothing.
	if tok, err := src.Token(t.Context()); err != nil || tok != toks[0] {
		t.Errorf("cached Token = %q, %v", tok, err)
	}
	if got := tokensToday(t, sb); got != 1 {
		t.Errorf("a cached token was fetched again: %d issued", got)
	}
}

// TestTokenReplacedShortlyBeforeExpiry moves the clock to just inside the
// margin before the token's expiry: the next caller gets a new token.
func TestTokenReplacedShortlyBeforeExpiry(t *testing.T) {
	sb := sandboxtest.Start(t)
	clock := sandboxtest.NewClock(time.Now())
	src := tokenSource(sb, wechat.TokenAPIToken)
	src.Now = clock.Now
	first, err := src.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(sandbox.WeChatTokenTTL - wechat.DefaultTokenMargin - time.Second)
	if tok, _ := src.Token(t.Context()); tok != first {
		t.Errorf("token replaced before the margin")
	}
	clock.Advance(2 * time.Second)
	second, err := src.Token(t.Context())
	if err != nil || second == first {
		t.Errorf("token inside the margin = %q, %v; want a new one", second, err)
	}
	if got := tokensToday(t, sb); got != 2 {
		t.Errorf("WeChat issued %d tokens, want 2", got)
	}
}

func miniProgram(sb *sandboxtest.Instance, api string) *wechat.MiniProgram {
	return &wechat.MiniProgram{
		AppID: sandbox.DevMiniAppID, OriginalID: sandbox.DevMiniAppOriginalID, PagePath: "pages/pay/index",
		EnvVersion: "release", Tokens: tokenSource(sb, api),
	}
}

// TestLaunchLinksOpenThePayingPage builds every link and has the sandbox
// phone open each: all lead to the paying page with the checkout's query.
func TestLaunchLinksOpenThePayingPage(t *testing.T) {
	sb := sandboxtest.Start(t)
	mp := miniProgram(sb, wechat.TokenAPIStable)
	expires := time.Now().Add(30 * time.Minute).Truncate(time.Second)
	links, err := mp.LaunchLinks(t.Context(), plugin.LaunchInput{CheckoutID: "chk_1", Query: "checkout=chk_1", ExpiresAt: expires})
	if err != nil {
		t.Fatalf("LaunchLinks: %v", err)
	}
	if !strings.HasPrefix(links.URLScheme, "weixin://dl/business/?t=") || !strings.HasPrefix(links.URLLink, "https://wxaurl.cn/") {
		t.Errorf("links = %+v", links)
	}
	if !links.URLSchemeExpiresAt.Equal(expires) || !links.URLLinkExpiresAt.Equal(expires) {
		t.Errorf("expiries = %v, %v; want the checkout's %v", links.URLSchemeExpiresAt, links.URLLinkExpiresAt, expires)
	}
	for kind, link := range map[string]string{sandbox.LinkScheme: links.URLScheme, sandbox.LinkURL: links.URLLink, sandbox.LinkPlainScheme: links.PlainScheme} {
		l, err := sb.Control.OpenWeChatLink(t.Context(), link)
		if err != nil {
			t.Fatalf("open %s %s: %v", kind, link, err)
		}
		if l.Kind != kind || l.AppID != sandbox.DevMiniAppID || l.Path != "pages/pay/index" || l.Query != "checkout=chk_1" || l.EnvVersion != "release" {
			t.Errorf("%s opens %+v", kind, l)
		}
		if kind != sandbox.LinkPlainScheme && !l.ExpiresAt.Equal(expires) {
			t.Errorf("%s expires at %v, want %v", kind, l.ExpiresAt, expires)
		}
	}
	if links.App == nil {
		t.Fatal("no app launch data")
	}
	l, err := sb.Control.LaunchWeChatApp(t.Context(), links.App.UserName, links.App.Path, links.App.MiniProgramType)
	if err != nil || l.Path != "pages/pay/index" || l.Query != "checkout=chk_1" || l.EnvVersion != "release" {
		t.Errorf("app launch opens %+v, %v", l, err)
	}
}

// TestLaunchLinksSurviveTokenExpiry ends the cached token in WeChat (expired:
// 42001, revoked: 40001) between two calls: each time the token is fetched
// once more and the call succeeds.
func TestLaunchLinksSurviveTokenExpiry(t *testing.T) {
	for _, api := range []string{wechat.TokenAPIStable, wechat.TokenAPIToken} {
		for _, revoke := range []bool{false, true} {
			sb := sandboxtest.Start(t)
			mp := miniProgram(sb, api)
			in := plugin.LaunchInput{Query: "checkout=chk_2", ExpiresAt: time.Now().Add(time.Hour)}
			if _, err := mp.LaunchLinks(t.Context(), in); err != nil {
				t.Fatalf("%s: LaunchLinks: %v", api, err)
			}
			if n, err := sb.Control.ExpireWeChatTokens(t.Context(), sandbox.ExpireTokensRequest{AppID: sandbox.DevMiniAppID, Revoke: revoke}); err != nil || n == 0 {
				t.Fatalf("ExpireWeChatTokens: %d, %v", n, err)
			}
			links, err := mp.LaunchLinks(t.Context(), in)
			if err != nil {
				t.Fatalf("%s revoke=%v: LaunchLinks after the token ended: %v", api, revoke, err)
			}
			if _, err := sb.Control.OpenWeChatLink(t.Context(), links.URLLink); err != nil {
				t.Errorf("%s: the link made after a new token does not open: %v", api, err)
			}
			if got := mp.Tokens.Fetches(); got != 2 {
				t.Errorf("%s revoke=%v: %d token fetches, want 2", api, revoke, got)
			}
		}
	}
}

// TestLaunchLinksRefusals checks WeChat's refusals become the contract's
// codes and never carry the secret or the token.
func TestLaunchLinksRefusals(t *testing.T) {
	sb := sandboxtest.Start(t)
	mp := miniProgram(sb, wechat.TokenAPIStable)
	pages := []string{"pages/index/index"}
	if _, err := sb.Control.SetWeChatApp(t.Context(), sandbox.WeChatAppRequest{AppID: sandbox.DevMiniAppID, Pages: &pages}); err != nil {
		t.Fatal(err)
	}
	_, err := mp.LaunchLinks(t.Context(), plugin.LaunchInput{Query: "checkout=chk_3"})
	if plugin.ErrorCode(err) != plugin.CodeChannelUnavailable || !strings.Contains(err.Error(), "page_path") {
		t.Errorf("unpublished page: %v", err)
	}
	_, err = mp.LaunchLinks(t.Context(), plugin.LaunchInput{Query: "checkout=<chk>"})
	if plugin.ErrorCode(err) != plugin.CodeChannelUnavailable && plugin.ErrorCode(err) != plugin.CodeInvalidRequest {
		t.Errorf("bad query: %v", err)
	}
	tok, _ := mp.Tokens.Token(t.Context())
	if tok == "" || strings.Contains(err.Error(), tok) {
		t.Errorf("error shows the token: %v", err)
	}
	bad := miniProgram(sb, wechat.TokenAPIStable)
	bad.Tokens.Secret = "wrong-secret-0123456789"
	_, err = bad.LaunchLinks(t.Context(), plugin.LaunchInput{Query: "checkout=chk_4"})
	if plugin.ErrorCode(err) != plugin.CodeChannelUnavailable || strings.Contains(err.Error(), "wrong-secret") {
		t.Errorf("wrong secret: %v", err)
	}
}

// TestStableTokenForcedWhenWeChatKeepsARefusedOne has WeChat refuse a
// stable token that stable_token keeps answering: the source asks once
// with force_refresh, and the call is repeated with the new token.
func TestStableTokenForcedWhenWeChatKeepsARefusedOne(t *testing.T) {
	var mu sync.Mutex
	current, forced := "tok-1", 0
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+wechat.PathStableToken, func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ForceRefresh bool `json:"force_refresh"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		mu.Lock()
		defer mu.Unlock()
		if req.ForceRefresh {
			forced++
			current = "tok-2"
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": current, "expires_in": 7200})
	})
	mux.HandleFunc("POST "+wechat.PathGenerateURLLink, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("access_token") != "tok-2" {
			_ = json.NewEncoder(w).Encode(map[string]any{"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"errcode": 0, "url_link": "https://wxaurl.cn/x"})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	src := &wechat.TokenSource{HTTP: wechat.NewHTTPClient(5 * time.Second), APIBase: srv.URL, AppID: "wx1", Secret: "s"}
	var out struct {
		wechat.APIError
		URLLink string `json:"url_link"`
	}
	if err := src.PostJSON(t.Context(), wechat.PathGenerateURLLink, map[string]string{}, &out); err != nil || out.URLLink == "" {
		t.Fatalf("PostJSON = %+v, %v", out, err)
	}
	if forced != 1 {
		t.Errorf("force_refresh asked %d times, want 1", forced)
	}
}

// TestShortLivedTokenRenewedHalfway has WeChat hand out a token that lives
// less than twice the margin: it is cached for half its life, neither
// fetched on every call nor used until it expires.
func TestShortLivedTokenRenewedHalfway(t *testing.T) {
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		n++
		tok := "tok-" + strings.Repeat("x", n)
		mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "expires_in": 60})
	}))
	defer srv.Close()
	clock := sandboxtest.NewClock(time.Now())
	src := &wechat.TokenSource{HTTP: wechat.NewHTTPClient(5 * time.Second), APIBase: srv.URL, AppID: "wx1", Secret: "s", Now: clock.Now}
	first, err := src.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(29 * time.Second)
	if tok, _ := src.Token(t.Context()); tok != first {
		t.Errorf("the token was replaced before half its life")
	}
	clock.Advance(2 * time.Second)
	if tok, _ := src.Token(t.Context()); tok == first {
		t.Errorf("the token was kept past half its life")
	}
	if got := src.Fetches(); got != 2 {
		t.Errorf("%d fetches, want 2", got)
	}
}
