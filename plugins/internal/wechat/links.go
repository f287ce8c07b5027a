package wechat

import (
	"context"
	"errors"
	"net/url"
	"time"

	"github.com/paysidecar/paysidecar/sdk/plugin"
)

// Paths of the mini-program link APIs.
const (
	PathGenerateScheme  = "/wxa/generatescheme"
	PathGenerateURLLink = "/wxa/generate_urllink"
)

// WeChat's error codes of the link APIs that say the request, not WeChat,
// is wrong.
const (
	ErrCodeInvalidPagePath = 40165 // the page is not published
	ErrCodeInvalidQuery    = 40212 // the query is too long or has characters WeChat refuses
	ErrCodeDailyQuota      = 45009 // the daily quota is used up
	ErrCodeExpireTime      = 85401 // expire_time not between one minute and 30 days ahead
)

// Bounds of a link's life, as WeChat enforces them.
const (
	MinLinkTTL = 2 * time.Minute // WeChat refuses less than one minute; keep a margin
	MaxLinkTTL = 30 * 24 * time.Hour
)

// The env_version values of a mini-program, and the miniProgramType a
// native app names each with.
var miniProgramTypes = map[string]int{"release": 0, "develop": 1, "trial": 2}

// MiniProgramType returns the WXLaunchMiniProgram type of an env_version.
func MiniProgramType(envVersion string) int { return miniProgramTypes[envVersion] }

// EnvVersions lists the env_version values, for a setting's enum.
var EnvVersions = []string{"release", "trial", "develop"}

// MiniProgram is one mini-program that a browser or a native app can open.
type MiniProgram struct {
	// AppID is the mini-program's app id.
	AppID string
	// OriginalID is its original id (gh_…), which a native app names;
	// empty when not configured.
	OriginalID string
	// PagePath is the page that pays, without leading slash.
	PagePath string
	// EnvVersion is release, trial or develop.
	EnvVersion string
	// Tokens fetches the app's server access token.
	Tokens *TokenSource
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

type linkAnswer struct {
	APIError
	OpenLink string `json:"openlink"`
	URLLink  string `json:"url_link"`
}

type jumpWxa struct {
	Path       string `json:"path"`
	Query      string `json:"query"`
	EnvVersion string `json:"env_version"`
}

// LaunchLinks answers every way to open the paying page with query: a URL
// Scheme and a URL Link from WeChat's API (expiring when the checkout does,
// within WeChat's bounds), the plain scheme, and a native app's launch
// data when the original id is known.
func (m *MiniProgram) LaunchLinks(ctx context.Context, in plugin.LaunchInput) (plugin.LaunchLinks, error) {
	now := time.Now()
	if m.Now != nil {
		now = m.Now()
	}
	expires := in.ExpiresAt
	if expires.IsZero() || expires.After(now.Add(MaxLinkTTL)) {
		expires = now.Add(MaxLinkTTL)
	}
	if expires.Before(now.Add(MinLinkTTL)) {
		expires = now.Add(MinLinkTTL)
	}
	expires = expires.Truncate(time.Second)
	jump := jumpWxa{Path: m.PagePath, Query: in.Query, EnvVersion: m.EnvVersion}

	var scheme linkAnswer
	if err := m.Tokens.PostJSON(ctx, PathGenerateScheme, struct {
		JumpWxa    jumpWxa `json:"jump_wxa"`
		IsExpire   bool    `json:"is_expire"`
		ExpireType int     `json:"expire_type"`
		ExpireTime int64   `json:"expire_time"`
	}{jump, true, 0, expires.Unix()}, &scheme); err != nil {
		return plugin.LaunchLinks{}, linkError(PathGenerateScheme, err)
	}
	var link linkAnswer
	if err := m.Tokens.PostJSON(ctx, PathGenerateURLLink, struct {
		jumpWxa
		IsExpire   bool  `json:"is_expire"`
		ExpireType int   `json:"expire_type"`
		ExpireTime int64 `json:"expire_time"`
	}{jump, true, 0, expires.Unix()}, &link); err != nil {
		return plugin.LaunchLinks{}, linkError(PathGenerateURLLink, err)
	}
	if scheme.OpenLink == "" || link.URLLink == "" {
		return plugin.LaunchLinks{}, plugin.Errorf(plugin.CodeChannelUnavailable, "", "WeChat answered no link")
	}
	out := plugin.LaunchLinks{
		URLScheme: scheme.OpenLink, URLSchemeExpiresAt: expires,
		URLLink: link.URLLink, URLLinkExpiresAt: expires,
		PlainScheme: m.PlainScheme(in.Query),
	}
	if m.OriginalID != "" {
		out.App = &plugin.AppLaunch{UserName: m.OriginalID, Path: m.PagePath + "?" + in.Query, MiniProgramType: MiniProgramType(m.EnvVersion)}
	}
	return out, nil
}

// PlainScheme is the scheme that opens the page with query and needs no
// API call: weixin://dl/business/?appid=…&path=…&query=…&env_version=….
// The mini-program must have enabled it for the page.
func (m *MiniProgram) PlainScheme(query string) string {
	return "weixin://dl/business/?appid=" + url.QueryEscape(m.AppID) +
		"&path=" + url.QueryEscape(m.PagePath) +
		"&query=" + url.QueryEscape(query) +
		"&env_version=" + url.QueryEscape(m.EnvVersion)
}

// linkError turns WeChat's refusal of a link into the contract's error:
// a page or query WeChat refuses is the flow's configuration or the
// query, anything else the channel being unavailable.
func linkError(path string, err error) error {
	var e *APIError
	if !errors.As(err, &e) {
		return err
	}
	switch e.ErrCode {
	case ErrCodeInvalidPagePath:
		return plugin.Errorf(plugin.CodeChannelUnavailable, "", "WeChat %s: the page_path is not a published page of the mini-program (errcode %d)", path, e.ErrCode)
	case ErrCodeInvalidQuery:
		return plugin.Errorf(plugin.CodeInvalidRequest, "query", "WeChat %s refused the query (errcode %d)", path, e.ErrCode)
	case ErrCodeDailyQuota:
		return plugin.Errorf(plugin.CodeChannelUnavailable, "", "WeChat %s: the mini-program's daily quota of links is used up (errcode %d)", path, e.ErrCode)
	}
	return plugin.Errorf(plugin.CodeChannelUnavailable, "", "WeChat %s: %v", path, e)
}
