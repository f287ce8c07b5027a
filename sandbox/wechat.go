package sandbox

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// WeChat error codes the emulation answers, in WeChat's {errcode, errmsg}
// shape.
const (
	WxErrInvalidGrant  = 40002 // grant_type is not authorization_code
	WxErrInvalidAppID  = 40013 // unknown app id
	WxErrInvalidCode   = 40029 // unknown, expired or foreign code
	WxErrInvalidSecret = 40125 // wrong app secret
	WxErrCodeUsed      = 40163 // code already exchanged
	WxErrMissingAppID  = 41002 // appid missing
	WxErrMissingSecret = 41004 // secret missing
	WxErrMissingCode   = 41008 // code missing
	WxErrRedirectURI   = 10003 // redirect_uri missing or not absolute
	WxErrResponseType  = 10004 // response_type is not code
	WxErrScope         = 10005 // scope is not snsapi_base or snsapi_userinfo
)

// DefaultWeChatUser is the user a code is minted for when none is named.
const DefaultWeChatUser = "sandbox-user"

const (
	sandboxUserParam    = "sandbox_user"
	sandboxDenyParam    = "sandbox_deny"
	defaultWeChatScope  = "snsapi_base"
	weChatUserinfoScope = "snsapi_userinfo"
)

// wxCode is a one-time code of WeChat's OAuth or wx.login.
type wxCode struct {
	appID  string
	user   string
	openID string
	scope  string
	issued time.Time
	used   bool
}

// WeChatCode is a code minted for an app id and the openid it maps to.
type WeChatCode struct {
	AppID  string `json:"appid"`
	Code   string `json:"code"`
	OpenID string `json:"openid"`
	User   string `json:"user"`
}

// OpenID returns the openid WeChat gives user under appID. It is stable:
// the same app id and user always give the same openid, whatever the seed.
func OpenID(appID, user string) string {
	sum := sha256.Sum256([]byte("openid\x00" + appID + "\x00" + user))
	return "o" + base64.RawURLEncoding.EncodeToString(sum[:])[:27]
}

// mintCodeLocked issues a new code for user under appID.
func (s *Server) mintCodeLocked(appID, user, scope string) WeChatCode {
	if user == "" {
		user = DefaultWeChatUser
	}
	n := s.l.next()
	code := s.token(32, "wxcode", strconv.FormatUint(n, 10))
	c := &wxCode{appID: appID, user: user, openID: OpenID(appID, user), scope: scope, issued: s.now()}
	s.l.codes[code] = c
	return WeChatCode{AppID: appID, Code: code, OpenID: c.openID, User: user}
}

type wxError struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeWx answers a WeChat error; WeChat answers HTTP 200 with errcode.
func writeWx(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, http.StatusOK, wxError{ErrCode: code, ErrMsg: msg})
}

// serveAuthorize emulates open.weixin.qq.com's OAuth authorize: it mints a
// code and redirects to redirect_uri with code and state, as a user who
// consented would be. The sandbox-only parameter sandbox_user picks who
// that user is (DefaultWeChatUser by default).
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	appID := q.Get("appid")
	_, known := s.cfg.WeChatApps[appID]
	if appID == "" {
		writeJSON(w, http.StatusBadRequest, wxError{WxErrMissingAppID, "appid missing"})
		return
	}
	if !known {
		writeJSON(w, http.StatusBadRequest, wxError{WxErrInvalidAppID, "invalid appid"})
		return
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || (redirect.Scheme != "http" && redirect.Scheme != "https") || redirect.Host == "" {
		writeJSON(w, http.StatusBadRequest, wxError{WxErrRedirectURI, "redirect_uri must be an absolute http or https URL"})
		return
	}
	if q.Get("response_type") != "code" {
		writeJSON(w, http.StatusBadRequest, wxError{WxErrResponseType, "response_type must be code"})
		return
	}
	scope := q.Get("scope")
	if scope != defaultWeChatScope && scope != weChatUserinfoScope {
		writeJSON(w, http.StatusBadRequest, wxError{WxErrScope, "scope must be snsapi_base or snsapi_userinfo"})
		return
	}
	s.mu.Lock()
	s.l.wxAuthorizations = append(s.l.wxAuthorizations, AuthorizeRecord{
		AppID: appID, RedirectURI: q.Get("redirect_uri"), Scope: scope, State: q.Get("state"),
		ConnectRedirect: q.Get("connect_redirect"), At: s.now(),
	})
	c := s.mintCodeLocked(appID, q.Get(sandboxUserParam), scope)
	s.mu.Unlock()
	rq := redirect.Query()
	if q.Get(sandboxDenyParam) == "" {
		rq.Set("code", c.Code)
	}
	rq.Set("state", q.Get("state"))
	redirect.RawQuery = rq.Encode()
	redirect.Fragment = ""
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// exchange checks an app id, secret, grant type and code as WeChat does
// and consumes the code. ok is false when an error was written.
func (s *Server) exchange(w http.ResponseWriter, q url.Values, codeParam string) (*wxCode, bool) {
	appID, secret, code := q.Get("appid"), q.Get("secret"), q.Get(codeParam)
	if appID == "" {
		writeWx(w, WxErrMissingAppID, "appid missing")
		return nil, false
	}
	want, known := s.cfg.WeChatApps[appID]
	if !known {
		writeWx(w, WxErrInvalidAppID, "invalid appid")
		return nil, false
	}
	if secret == "" {
		writeWx(w, WxErrMissingSecret, "appsecret missing")
		return nil, false
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 {
		writeWx(w, WxErrInvalidSecret, "invalid appsecret")
		return nil, false
	}
	if q.Get("grant_type") != "authorization_code" {
		writeWx(w, WxErrInvalidGrant, "invalid grant_type")
		return nil, false
	}
	if code == "" {
		writeWx(w, WxErrMissingCode, "missing code")
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.l.codes[code]
	if c == nil || c.appID != appID || s.now().Sub(c.issued) > WeChatCodeTTL {
		writeWx(w, WxErrInvalidCode, "invalid code")
		return nil, false
	}
	if c.used {
		writeWx(w, WxErrCodeUsed, "code been used")
		return nil, false
	}
	c.used = true
	return c, true
}

// serveAccessToken emulates api.weixin.qq.com/sns/oauth2/access_token.
func (s *Server) serveAccessToken(w http.ResponseWriter, r *http.Request) {
	c, ok := s.exchange(w, r.URL.Query(), "code")
	if !ok {
		return
	}
	scope := c.scope
	if scope == "" {
		scope = defaultWeChatScope
	}
	s.mu.Lock()
	tok, t := s.issueTokenLocked(c.appID, tokenOAuth, s.now())
	t.openID, t.user, t.scope = c.openID, c.user, scope
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":  tok,
		"expires_in":    int(WeChatTokenTTL.Seconds()),
		"refresh_token": s.token(48, "refresh_token", c.openID, c.issued.String()),
		"openid":        c.openID,
		"scope":         scope,
	})
}

// serveJSCode2Session emulates api.weixin.qq.com/sns/jscode2session.
func (s *Server) serveJSCode2Session(w http.ResponseWriter, r *http.Request) {
	c, ok := s.exchange(w, r.URL.Query(), "js_code")
	if !ok {
		return
	}
	sum := s.digest("session_key", c.openID, c.issued.String())
	writeJSON(w, http.StatusOK, map[string]any{
		"openid":      c.openID,
		"session_key": base64.StdEncoding.EncodeToString(sum[:16]),
	})
}
