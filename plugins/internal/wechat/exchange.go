// Package wechat holds what the two WeChat flows share: the code exchanges
// against WeChat's sns API, the wx_data order field, the pay_info answer
// and the wx_response part of a notification.
package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/paysidecar/paysidecar/sdk/plugin"
)

// Default base URLs of WeChat.
const (
	DefaultOAuthBase = "https://open.weixin.qq.com"
	DefaultAPIBase   = "https://api.weixin.qq.com"
)

// DefaultTimeout bounds one call to WeChat unless configured otherwise.
const DefaultTimeout = 10 * time.Second

// WeChat's error codes for a code that cannot be exchanged.
const (
	ErrCodeInvalidCode = 40029 // invalid, expired or foreign code
	ErrCodeCodeUsed    = 40163 // code already used
)

// Paths of the exchanges.
const (
	PathOAuthAccessToken = "/sns/oauth2/access_token"
	PathJSCode2Session   = "/sns/jscode2session"
)

// maxAnswer bounds how much of WeChat's answer is read.
const maxAnswer = 1 << 20

// Exchanger exchanges codes for openids with one app's credentials.
type Exchanger struct {
	// HTTP is the client used; it must not follow redirects (see
	// NewHTTPClient), so the app secret in the query goes nowhere else.
	HTTP *http.Client
	// APIBase is WeChat's API base URL without trailing slash.
	APIBase string
	// AppID is the app the codes are issued to.
	AppID string
	// Secret is the app secret. It is sent to WeChat only and never
	// appears in an error.
	Secret string
}

// NewHTTPClient returns the HTTP client for calls to WeChat: bounded by
// timeout and never following redirects.
func NewHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// answer is WeChat's answer to both exchanges. access_token,
// refresh_token and session_key are deliberately not decoded: they never
// leave WeChat's answer.
type answer struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
	OpenID  string `json:"openid"`
	UnionID string `json:"unionid"`
}

// OAuth exchanges a web OAuth code (JSAPI) with
// GET {api_base}/sns/oauth2/access_token.
func (e *Exchanger) OAuth(ctx context.Context, code string) (plugin.Identity, error) {
	return e.exchange(ctx, PathOAuthAccessToken, "code", code)
}

// Login exchanges a mini-program wx.login code with
// GET {api_base}/sns/jscode2session.
func (e *Exchanger) Login(ctx context.Context, code string) (plugin.Identity, error) {
	return e.exchange(ctx, PathJSCode2Session, "js_code", code)
}

func (e *Exchanger) exchange(ctx context.Context, path, codeParam, code string) (plugin.Identity, error) {
	code = strings.TrimSpace(code)
	if code == "" {
		return plugin.Identity{}, plugin.Errorf(plugin.CodeInvalidRequest, "code", "code is required")
	}
	if len(code) > 512 {
		return plugin.Identity{}, plugin.Errorf(plugin.CodeInvalidRequest, "code", "code is too long")
	}
	// The parameters in the order WeChat documents them.
	query := "appid=" + url.QueryEscape(e.AppID) +
		"&secret=" + url.QueryEscape(e.Secret) +
		"&" + codeParam + "=" + url.QueryEscape(code) +
		"&grant_type=authorization_code"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.APIBase+path+"?"+query, nil)
	if err != nil {
		return plugin.Identity{}, plugin.Errorf(plugin.CodeInternal, "", "build request to WeChat %s", path)
	}
	resp, err := e.HTTP.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return plugin.Identity{}, fmt.Errorf("WeChat %s: %w", path, ctxErr)
		}
		// *url.Error carries the URL, and with it the app secret: keep
		// only the cause.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return plugin.Identity{}, plugin.Errorf(plugin.CodeChannelUnavailable, "", "WeChat %s unreachable: %v", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return plugin.Identity{}, plugin.Errorf(plugin.CodeChannelUnavailable, "", "WeChat %s answered HTTP %d", path, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return plugin.Identity{}, plugin.Errorf(plugin.CodeChannelUnavailable, "", "read WeChat %s answer: %v", path, err)
	}
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		return plugin.Identity{}, plugin.Errorf(plugin.CodeChannelUnavailable, "", "WeChat %s answered something that is not JSON", path)
	}
	switch a.ErrCode {
	case 0:
	case ErrCodeInvalidCode, ErrCodeCodeUsed:
		return plugin.Identity{}, plugin.Errorf(plugin.CodeCodeInvalid, "code", "WeChat refused the code: errcode %d: %s", a.ErrCode, e.clean(a.ErrMsg))
	default:
		return plugin.Identity{}, plugin.Errorf(plugin.CodeCodeExchangeFailed, "", "WeChat refused the code exchange: errcode %d: %s", a.ErrCode, e.clean(a.ErrMsg))
	}
	if a.OpenID == "" {
		return plugin.Identity{}, plugin.Errorf(plugin.CodeChannelUnavailable, "", "WeChat %s answer carries no openid", path)
	}
	return plugin.Identity{OpenID: a.OpenID, UnionID: a.UnionID, AppID: e.AppID}, nil
}

// clean makes WeChat's errmsg safe to pass on: bounded in length and
// without the app secret, should an answer ever echo it.
func (e *Exchanger) clean(msg string) string {
	if e.Secret != "" {
		msg = strings.ReplaceAll(msg, e.Secret, "[redacted]")
	}
	if r := []rune(msg); len(r) > 200 {
		msg = string(r[:200]) + "…"
	}
	return msg
}

// Names of the settings both WeChat flows declare for their app.
const (
	SettingAppID       = "app_id"
	SettingAppSecret   = "app_secret"
	SettingAPIBase     = "api_base"
	SettingHTTPTimeout = "http_timeout"
)

// NewExchanger returns the Exchanger of the app the settings name
// (app_id, app_secret, api_base, http_timeout), checked by the flow's
// schema.
func NewExchanger(s plugin.Settings) *Exchanger {
	return &Exchanger{
		HTTP:    NewHTTPClient(s.Duration(SettingHTTPTimeout)),
		APIBase: s.Get(SettingAPIBase),
		AppID:   s.Get(SettingAppID),
		Secret:  s.Get(SettingAppSecret),
	}
}

// LogConfigured logs a flow's configuration, its secrets redacted, through
// the host's logger when it has one and through fallback otherwise.
func LogConfigured(c plugin.Config, fallback *slog.Logger) {
	logger := fallback
	if c.Logger != nil {
		logger = c.Logger
	}
	logger.Info("configured", "settings", c.Settings, "sandbox", c.Environment.Sandbox)
}
