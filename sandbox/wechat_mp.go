package sandbox

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// WeChat error codes of the server APIs (access tokens, URL Scheme, URL
// Link, user info), in WeChat's {errcode, errmsg} shape.
const (
	WxErrInvalidCredential = 40001 // access_token unknown, revoked or replaced
	WxErrInvalidOpenID     = 40003 // openid does not belong to the access_token
	WxErrInvalidArgs       = 40097 // a parameter has a value WeChat does not know
	WxErrInvalidPagePath   = 40165 // path is not a published page
	WxErrInvalidQuery      = 40212 // query too long or with characters WeChat refuses
	WxErrMissingToken      = 41001 // access_token missing
	WxErrTokenExpired      = 42001 // access_token expired
	WxErrDailyQuota        = 45009 // the daily quota of the API is used up
	WxErrDataFormat        = 47001 // the body is not the JSON the API takes
	WxErrAPIUnauthorized   = 48001 // the token's scope does not allow the API (snsapi_base and sns/userinfo)
	WxErrExpireTime        = 85401 // expire_time not between one minute and 30 days ahead
	WxErrExpireInterval    = 85402 // expire_interval not 1 to 30 days
)

// Lifetimes and limits of the WeChat emulation, as WeChat documents them.
const (
	// WeChatTokenTTL is the lifetime of every access token.
	WeChatTokenTTL = 7200 * time.Second
	// WeChatTokenOverlap is how long a server access token stays valid
	// after cgi-bin/token has issued its successor.
	WeChatTokenOverlap = 5 * time.Minute
	// WeChatLinkMaxTTL is the longest a URL Scheme or URL Link lives; one
	// asked for without expiry gets this.
	WeChatLinkMaxTTL = 30 * 24 * time.Hour
	// DefaultWeChatDailyLinks is how many URL Schemes and URL Links
	// together an app may generate per day.
	DefaultWeChatDailyLinks = 500000
	// DefaultWeChatDailyTokens is how many times per day an app may call
	// cgi-bin/token.
	DefaultWeChatDailyTokens = 2000
	// DefaultWeChatDailyForceRefresh is how many times per day an app may
	// force cgi-bin/stable_token to refresh.
	DefaultWeChatDailyForceRefresh = 20
	// wxQueryMax is the longest query a URL Scheme or URL Link may carry.
	wxQueryMax = 1024
)

// DevMiniAppOriginalID is the original id (gh_…) of DevMiniAppID, which a
// native app names to launch it.
const DevMiniAppOriginalID = "gh_0sandbox0001"

// Kinds of access token.
const (
	tokenServer = "token"        // cgi-bin/token
	tokenStable = "stable_token" // cgi-bin/stable_token
	tokenOAuth  = "oauth"        // sns/oauth2/access_token
)

// wxToken is an access token the emulation issued.
type wxToken struct {
	appID   string
	kind    string
	openID  string // oauth only
	user    string // oauth only
	scope   string // oauth only
	issued  time.Time
	expires time.Time
	revoked bool
}

// wxLink is a URL Scheme or URL Link and the page it opens.
type wxLink struct {
	kind       string // LinkScheme or LinkURL
	appID      string
	path       string
	query      string
	envVersion string
	created    time.Time
	expires    time.Time
}

// wxApp is what the emulation keeps per WeChat app besides tokens: its
// published pages, its daily quotas and what it has used of them, and the
// back end of the stand-in mini-program.
type wxApp struct {
	pages         []string // empty: any well-formed path is published
	dailyLinks    int
	dailyTokens   int
	dailyForce    int
	day           string // Beijing date the counts below belong to
	links, tokens int
	forces        int
	stable        string // the current stable_token
	server        string // the newest cgi-bin/token
	backendURL    string
}

// AuthorizeRecord is one visit of the OAuth authorize page, as the
// emulation saw it.
type AuthorizeRecord struct {
	AppID           string    `json:"appid"`
	RedirectURI     string    `json:"redirect_uri"`
	Scope           string    `json:"scope"`
	State           string    `json:"state"`
	ConnectRedirect string    `json:"connect_redirect"`
	At              time.Time `json:"at"`
}

// wxAppLocked returns the record of appID, creating it with the defaults.
func (s *Server) wxAppLocked(appID string) *wxApp {
	a := s.l.wxApps[appID]
	if a == nil {
		a = &wxApp{dailyLinks: DefaultWeChatDailyLinks, dailyTokens: DefaultWeChatDailyTokens, dailyForce: DefaultWeChatDailyForceRefresh}
		s.l.wxApps[appID] = a
	}
	if day := s.now().Format("20060102"); a.day != day {
		a.day, a.links, a.tokens, a.forces = day, 0, 0, 0
	}
	return a
}

// issueTokenLocked issues a new access token of kind for appID.
func (s *Server) issueTokenLocked(appID, kind string, now time.Time) (string, *wxToken) {
	n := s.l.next()
	tok := s.token(64, "wx-access-token", kind, appID, strconv.FormatUint(n, 10))
	t := &wxToken{appID: appID, kind: kind, issued: now, expires: now.Add(WeChatTokenTTL)}
	s.l.wxTokens[tok] = t
	return tok, t
}

// tokenLocked checks an access_token parameter as WeChat does: 41001 when
// missing, 40001 when unknown, revoked or of a kind the API does not take,
// 42001 when expired.
func (s *Server) tokenLocked(tok string, kinds ...string) (*wxToken, *wxError) {
	if tok == "" {
		return nil, &wxError{WxErrMissingToken, "access_token missing"}
	}
	t := s.l.wxTokens[tok]
	if t == nil || t.revoked || !slices.Contains(kinds, t.kind) {
		return nil, &wxError{WxErrInvalidCredential, "invalid credential, access_token is invalid or not latest"}
	}
	if !s.now().Before(t.expires) {
		return nil, &wxError{WxErrTokenExpired, "access_token expired"}
	}
	return t, nil
}

// appSecret checks appid and secret as the token endpoints do.
func (s *Server) appSecret(appID, secret, grantType string) *wxError {
	want, known := s.cfg.WeChatApps[appID]
	switch {
	case appID == "":
		return &wxError{WxErrMissingAppID, "appid missing"}
	case !known:
		return &wxError{WxErrInvalidAppID, "invalid appid"}
	case secret == "":
		return &wxError{WxErrMissingSecret, "appsecret missing"}
	case subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1:
		return &wxError{WxErrInvalidSecret, "invalid appsecret"}
	case grantType != "client_credential":
		return &wxError{WxErrInvalidGrant, "invalid grant_type"}
	}
	return nil
}

func writeToken(w http.ResponseWriter, tok string, t *wxToken, now time.Time) {
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "expires_in": int(t.expires.Sub(now).Seconds())})
}

// serveServerToken emulates GET cgi-bin/token: every call issues a new
// token; the one before stays valid for WeChatTokenOverlap.
func (s *Server) serveServerToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if e := s.appSecret(q.Get("appid"), q.Get("secret"), q.Get("grant_type")); e != nil {
		writeWx(w, e.ErrCode, e.ErrMsg)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	a := s.wxAppLocked(q.Get("appid"))
	if a.tokens >= a.dailyTokens {
		writeWx(w, WxErrDailyQuota, "reach max api daily quota limit")
		return
	}
	a.tokens++
	if old := s.l.wxTokens[a.server]; old != nil && old.expires.After(now.Add(WeChatTokenOverlap)) {
		old.expires = now.Add(WeChatTokenOverlap)
	}
	tok, t := s.issueTokenLocked(q.Get("appid"), tokenServer, now)
	a.server = tok
	writeToken(w, tok, t, now)
}

// stableTokenRequest is the body of cgi-bin/stable_token.
type stableTokenRequest struct {
	GrantType    string `json:"grant_type"`
	AppID        string `json:"appid"`
	Secret       string `json:"secret"`
	ForceRefresh bool   `json:"force_refresh"`
}

// serveStableToken emulates POST cgi-bin/stable_token: the same token until
// it expires; force_refresh replaces it at once, at most
// DefaultWeChatDailyForceRefresh times a day. Its tokens are apart from
// cgi-bin/token's.
func (s *Server) serveStableToken(w http.ResponseWriter, r *http.Request) {
	var req stableTokenRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		writeWx(w, WxErrDataFormat, "data format error")
		return
	}
	if e := s.appSecret(req.AppID, req.Secret, req.GrantType); e != nil {
		writeWx(w, e.ErrCode, e.ErrMsg)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	a := s.wxAppLocked(req.AppID)
	cur := s.l.wxTokens[a.stable]
	if !req.ForceRefresh && cur != nil && !cur.revoked && now.Before(cur.expires) {
		writeToken(w, a.stable, cur, now)
		return
	}
	if req.ForceRefresh {
		if a.forces >= a.dailyForce {
			writeWx(w, WxErrDailyQuota, "reach max api daily quota limit")
			return
		}
		a.forces++
		if cur != nil {
			cur.revoked = true
		}
	}
	tok, t := s.issueTokenLocked(req.AppID, tokenStable, now)
	a.stable = tok
	writeToken(w, tok, t, now)
}

// Kinds of link a mini-program can be opened by.
const (
	// LinkScheme is a URL Scheme from wxa/generatescheme,
	// weixin://dl/business/?t=….
	LinkScheme = "url_scheme"
	// LinkURL is a URL Link from wxa/generate_urllink,
	// https://wxaurl.cn/….
	LinkURL = "url_link"
	// LinkPlainScheme is the scheme a mini-program configured for a page,
	// weixin://dl/business/?appid=…&path=…&query=…&env_version=…, which
	// needs no API call.
	LinkPlainScheme = "plain_scheme"
	// LinkApp is a native app's launch (WXLaunchMiniProgram) by original
	// id and path.
	LinkApp = "app"
)

// Scenes a mini-program sees when opened by each kind of link.
const (
	SceneURLScheme = 1065
	SceneURLLink   = 1194
	SceneApp       = 1069
)

// URL forms of the links.
const (
	schemePrefix  = "weixin://dl/business/"
	urlLinkPrefix = "https://wxaurl.cn/"
)

// jumpWxa is where a URL Scheme or URL Link leads.
type jumpWxa struct {
	Path       string `json:"path"`
	Query      string `json:"query"`
	EnvVersion string `json:"env_version"`
}

// linkRequest is the body of wxa/generatescheme (Jump set) and
// wxa/generate_urllink (the same fields at the top level).
type linkRequest struct {
	JumpWxa *jumpWxa `json:"jump_wxa"`
	jumpWxa
	IsExpire       bool  `json:"is_expire"`
	ExpireType     int   `json:"expire_type"`
	ExpireTime     int64 `json:"expire_time"`
	ExpireInterval int   `json:"expire_interval"`
}

var (
	pagePattern  = regexp.MustCompile(`^[A-Za-z0-9_\-][A-Za-z0-9_\-./]*$`)
	queryPattern = regexp.MustCompile(`^[A-Za-z0-9!#$&'()*+,/:;=?@\-._~%]*$`)
)

// checkJumpLocked checks a page, a query and an env_version as WeChat
// does for every kind of link.
func (s *Server) checkJumpLocked(appID string, j jumpWxa) *wxError {
	a := s.wxAppLocked(appID)
	if j.Path != "" && (!pagePattern.MatchString(j.Path) || (len(a.pages) > 0 && !slices.Contains(a.pages, j.Path))) {
		return &wxError{WxErrInvalidPagePath, "invalid weapp pagepath"}
	}
	if len(j.Query) > wxQueryMax || !queryPattern.MatchString(j.Query) {
		return &wxError{WxErrInvalidQuery, "invalid query"}
	}
	switch j.EnvVersion {
	case "", "release", "trial", "develop":
	default:
		return &wxError{WxErrInvalidArgs, "invalid args: env_version must be release, trial or develop"}
	}
	return nil
}

// serveGenerateLink emulates POST wxa/generatescheme and
// wxa/generate_urllink.
func (s *Server) serveGenerateLink(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req linkRequest
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err == nil {
			err = json.Unmarshal(body, &req)
		}
		if err != nil {
			writeWx(w, WxErrDataFormat, "data format error")
			return
		}
		jump := req.jumpWxa
		if kind == LinkScheme {
			jump = jumpWxa{}
			if req.JumpWxa != nil {
				jump = *req.JumpWxa
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		now := s.now()
		t, e := s.tokenLocked(r.URL.Query().Get("access_token"), tokenServer, tokenStable)
		if e == nil {
			e = s.checkJumpLocked(t.appID, jump)
		}
		var expires time.Time
		if e == nil {
			expires, e = linkExpiry(req, now)
		}
		if e != nil {
			writeWx(w, e.ErrCode, e.ErrMsg)
			return
		}
		a := s.wxAppLocked(t.appID)
		if a.links >= a.dailyLinks {
			writeWx(w, WxErrDailyQuota, "reach max api daily quota limit")
			return
		}
		a.links++
		if jump.EnvVersion == "" {
			jump.EnvVersion = "release"
		}
		n := s.l.next()
		id := s.token(16, "wx-link", kind, strconv.FormatUint(n, 10))
		s.l.wxLinks[id] = &wxLink{kind: kind, appID: t.appID, path: jump.Path, query: jump.Query, envVersion: jump.EnvVersion, created: now, expires: expires}
		out := map[string]any{"errcode": 0, "errmsg": "ok"}
		if kind == LinkScheme {
			out["openlink"] = schemePrefix + "?t=" + id
		} else {
			out["url_link"] = urlLinkPrefix + id
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// linkExpiry returns when a link asked for by req expires: expire_type 1
// is expire_interval days (1 to 30), otherwise expire_time (one minute to
// 30 days ahead) when is_expire is set, else the longest a link lives.
func linkExpiry(req linkRequest, now time.Time) (time.Time, *wxError) {
	switch {
	case req.ExpireType == 1:
		if req.ExpireInterval < 1 || req.ExpireInterval > 30 {
			return time.Time{}, &wxError{WxErrExpireInterval, "invalid expire_interval: 1 to 30 days"}
		}
		return now.Add(time.Duration(req.ExpireInterval) * 24 * time.Hour), nil
	case req.ExpireType != 0:
		return time.Time{}, &wxError{WxErrInvalidArgs, "invalid args: expire_type must be 0 or 1"}
	case req.IsExpire:
		at := time.Unix(req.ExpireTime, 0)
		if !at.After(now.Add(time.Minute)) || at.After(now.Add(WeChatLinkMaxTTL)) {
			return time.Time{}, &wxError{WxErrExpireTime, "invalid expire_time: between one minute and 30 days ahead"}
		}
		return at, nil
	}
	return now.Add(WeChatLinkMaxTTL), nil
}

// serveUserInfo emulates GET sns/userinfo for an OAuth access token of
// scope snsapi_userinfo.
func (s *Server) serveUserInfo(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	t, e := s.tokenLocked(q.Get("access_token"), tokenOAuth)
	s.mu.Unlock()
	switch {
	case e != nil:
	case q.Get("openid") != t.openID:
		e = &wxError{WxErrInvalidOpenID, "invalid openid"}
	case t.scope != weChatUserinfoScope:
		e = &wxError{WxErrAPIUnauthorized, "api unauthorized"}
	}
	if e != nil {
		writeWx(w, e.ErrCode, e.ErrMsg)
		return
	}
	writeJSON(w, http.StatusOK, WeChatUser(t.user, t.openID))
}

// WeChatUserInfo is what sns/userinfo answers.
type WeChatUserInfo struct {
	OpenID     string   `json:"openid"`
	Nickname   string   `json:"nickname"`
	Sex        int      `json:"sex"`
	Province   string   `json:"province"`
	City       string   `json:"city"`
	Country    string   `json:"country"`
	HeadImgURL string   `json:"headimgurl"`
	Privilege  []string `json:"privilege"`
	UnionID    string   `json:"unionid"`
}

// WeChatUser returns the profile of a sandbox user under openID: the
// nickname is the user's name and the unionid is the same across apps.
func WeChatUser(user, openID string) WeChatUserInfo {
	if user == "" {
		user = DefaultWeChatUser
	}
	sum := sha256.Sum256([]byte("unionid\x00" + user))
	return WeChatUserInfo{OpenID: openID, Nickname: user, Country: "CN", Privilege: []string{},
		UnionID: "u" + base64.RawURLEncoding.EncodeToString(sum[:])[:27]}
}

// Paths of the WeChat controls.
const (
	ControlWeChatTokens         = "/_sandbox/wechat/tokens/expire"
	ControlWeChatApps           = "/_sandbox/wechat/apps"
	ControlWeChatAuthorizations = "/_sandbox/wechat/authorizations"
)

// ExpireTokensRequest ends access tokens early.
type ExpireTokensRequest struct {
	// AppID names the app whose tokens end.
	AppID string `json:"appid"`
	// AccessToken ends only this token; empty ends every token of the app.
	AccessToken string `json:"access_token,omitempty"`
	// Revoke makes the tokens answer 40001 (invalid or not latest) instead
	// of 42001 (expired).
	Revoke bool `json:"revoke,omitempty"`
}

// WeChatAppRequest changes how the emulation treats an app. Nil fields
// leave the setting as it is.
type WeChatAppRequest struct {
	AppID string `json:"appid"`
	// Pages are the mini-program's published pages: a link to another
	// path is refused with 40165. Empty accepts any well-formed path (the
	// default).
	Pages *[]string `json:"pages,omitempty"`
	// DailyLinks, DailyTokens and DailyForceRefresh are the daily quotas
	// of URL Schemes and Links together, of cgi-bin/token and of
	// stable_token's force_refresh; a call past one answers 45009.
	DailyLinks        *int `json:"daily_links,omitempty"`
	DailyTokens       *int `json:"daily_tokens,omitempty"`
	DailyForceRefresh *int `json:"daily_force_refresh,omitempty"`
	// BackendURL is where the stand-in mini-program posts its wx.login
	// code and launch query (see the sandbox README).
	BackendURL *string `json:"backend_url,omitempty"`
}

// WeChatAppState is an app's settings and what it used today.
type WeChatAppState struct {
	AppID             string   `json:"appid"`
	Pages             []string `json:"pages"`
	DailyLinks        int      `json:"daily_links"`
	DailyTokens       int      `json:"daily_tokens"`
	DailyForceRefresh int      `json:"daily_force_refresh"`
	LinksToday        int      `json:"links_today"`
	TokensToday       int      `json:"tokens_today"`
	ForceRefreshToday int      `json:"force_refresh_today"`
	BackendURL        string   `json:"backend_url"`
}

func (s *Server) wechatControlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+ControlWeChatTokens, s.serveExpireTokens)
	mux.HandleFunc("POST "+ControlWeChatApps, s.serveSetWeChatApp)
	mux.HandleFunc("GET "+ControlWeChatAuthorizations, s.serveAuthorizations)
}

func (s *Server) serveExpireTokens(w http.ResponseWriter, r *http.Request) {
	var req ExpireTokensRequest
	if !decodeControl(w, r, &req) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	n := 0
	for tok, t := range s.l.wxTokens {
		if t.appID != req.AppID || (req.AccessToken != "" && tok != req.AccessToken) || t.revoked || !now.Before(t.expires) {
			continue
		}
		if req.Revoke {
			t.revoked = true
		} else {
			t.expires = now
		}
		n++
	}
	if n == 0 {
		controlFail(w, http.StatusNotFound, "not_found", "no live access token matches")
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"ended": n})
}

func (s *Server) serveSetWeChatApp(w http.ResponseWriter, r *http.Request) {
	var req WeChatAppRequest
	if !decodeControl(w, r, &req) {
		return
	}
	if _, ok := s.cfg.WeChatApps[req.AppID]; !ok {
		controlFail(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("unknown WeChat app id %q", req.AppID))
		return
	}
	for _, n := range []*int{req.DailyLinks, req.DailyTokens, req.DailyForceRefresh} {
		if n != nil && *n < 0 {
			controlFail(w, http.StatusBadRequest, "bad_request", "daily quotas must not be negative")
			return
		}
	}
	if req.Pages != nil {
		for _, p := range *req.Pages {
			if !pagePattern.MatchString(p) {
				controlFail(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("page %q is not a mini-program page path", p))
				return
			}
		}
	}
	if req.BackendURL != nil && *req.BackendURL != "" {
		if u, err := url.Parse(*req.BackendURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			controlFail(w, http.StatusBadRequest, "bad_request", "backend_url must be an absolute http or https URL")
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.wxAppLocked(req.AppID)
	if req.Pages != nil {
		a.pages = append([]string{}, *req.Pages...)
	}
	set := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	set(&a.dailyLinks, req.DailyLinks)
	set(&a.dailyTokens, req.DailyTokens)
	set(&a.dailyForce, req.DailyForceRefresh)
	if req.BackendURL != nil {
		a.backendURL = *req.BackendURL
	}
	writeJSON(w, http.StatusOK, WeChatAppState{
		AppID: req.AppID, Pages: append([]string{}, a.pages...), DailyLinks: a.dailyLinks, DailyTokens: a.dailyTokens,
		DailyForceRefresh: a.dailyForce, LinksToday: a.links, TokensToday: a.tokens, ForceRefreshToday: a.forces, BackendURL: a.backendURL,
	})
}

func (s *Server) serveAuthorizations(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	out := append([]AuthorizeRecord{}, s.l.wxAuthorizations...)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}
