package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/paysidecar/paysidecar/sdk/plugin"
)

// Paths of WeChat's server access token APIs.
const (
	PathStableToken = "/cgi-bin/stable_token"
	PathToken       = "/cgi-bin/token"
)

// The token APIs a TokenSource can use.
const (
	// TokenAPIStable is cgi-bin/stable_token: the same token for every
	// caller until it expires, so that several services sharing an app
	// do not push each other's tokens out.
	TokenAPIStable = "stable_token"
	// TokenAPIToken is cgi-bin/token: every call issues a new token and
	// the previous one lives five more minutes.
	TokenAPIToken = "token"
)

// WeChat's error codes that mean the access token must be fetched again.
const (
	ErrCodeInvalidCredential = 40001 // access_token unknown, revoked or replaced
	ErrCodeTokenExpired      = 42001 // access_token expired
)

// DefaultTokenMargin is how long before its expiry a cached access token
// is replaced.
const DefaultTokenMargin = 5 * time.Minute

// TokenSource fetches WeChat's server access token of one app, caches it
// until Margin before it expires, and lets one caller at a time fetch it:
// callers arriving during a fetch wait for its result. The token and the
// app secret never leave it except towards WeChat.
type TokenSource struct {
	// HTTP is the client used; it must not follow redirects.
	HTTP *http.Client
	// APIBase is WeChat's API base URL without trailing slash.
	APIBase string
	// AppID and Secret are the app's credentials.
	AppID, Secret string
	// API is TokenAPIStable (the default when empty) or TokenAPIToken.
	API string
	// Margin is how long before expiry the token is replaced;
	// DefaultTokenMargin when zero.
	Margin time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	mu    sync.Mutex
	token string
	// renew is when the cached token is replaced: Margin before it
	// expires, or halfway through its life when that is shorter.
	renew    time.Time
	inflight *tokenFetch
	fetches  int
}

// tokenFetch is one fetch of the token that callers wait for.
type tokenFetch struct {
	done  chan struct{}
	token string
	err   error
}

func (s *TokenSource) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Fetches reports how many times the token was fetched from WeChat.
func (s *TokenSource) Fetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

// Token returns a valid access token, fetching one when none is cached or
// the cached one is about to expire.
func (s *TokenSource) Token(ctx context.Context) (string, error) {
	return s.get(ctx, "")
}

// get returns the cached token unless it is stale (the token a call was
// just refused with) or about to expire; otherwise it fetches one, or
// waits for the fetch another caller started.
func (s *TokenSource) get(ctx context.Context, stale string) (string, error) {
	s.mu.Lock()
	if s.token != "" && s.token != stale && s.now().Before(s.renew) {
		tok := s.token
		s.mu.Unlock()
		return tok, nil
	}
	if s.token == stale {
		s.token = ""
	}
	f := s.inflight
	leader := f == nil
	if leader {
		f = &tokenFetch{done: make(chan struct{})}
		s.inflight = f
		s.fetches++
	}
	s.mu.Unlock()
	if leader {
		// The fetch outlives a caller that gives up, so that those
		// waiting for it get its result; the HTTP client's timeout
		// bounds it.
		fctx := context.WithoutCancel(ctx)
		tok, expiresIn, err := s.fetch(fctx, false)
		if err == nil && stale != "" && tok == stale && s.API != TokenAPIToken {
			// stable_token answers the token WeChat just refused while
			// it has not expired: force a new one (WeChat allows a few
			// a day).
			tok, expiresIn, err = s.fetch(fctx, true)
		}
		s.mu.Lock()
		if err == nil {
			margin := s.Margin
			if margin <= 0 {
				margin = DefaultTokenMargin
			}
			s.token, s.renew = tok, s.now().Add(expiresIn-min(margin, expiresIn/2))
		}
		f.token, f.err = tok, err
		s.inflight = nil
		s.mu.Unlock()
		close(f.done)
	}
	select {
	case <-f.done:
		return f.token, f.err
	case <-ctx.Done():
		return "", fmt.Errorf("WeChat access token: %w", ctx.Err())
	}
}

// tokenAnswer is the answer of both token APIs.
type tokenAnswer struct {
	ErrCode     int    `json:"errcode"`
	ErrMsg      string `json:"errmsg"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

func (s *TokenSource) fetch(ctx context.Context, force bool) (string, time.Duration, error) {
	var req *http.Request
	var err error
	path := PathStableToken
	if s.API == TokenAPIToken {
		path = PathToken
		q := "grant_type=client_credential&appid=" + url.QueryEscape(s.AppID) + "&secret=" + url.QueryEscape(s.Secret)
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, s.APIBase+path+"?"+q, nil)
	} else {
		body, _ := json.Marshal(map[string]any{"grant_type": "client_credential", "appid": s.AppID, "secret": s.Secret, "force_refresh": force})
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, s.APIBase+path, bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	if err != nil {
		return "", 0, plugin.Errorf(plugin.CodeInternal, "", "build request to WeChat %s", path)
	}
	var a tokenAnswer
	if err := s.do(req, path, &a); err != nil {
		return "", 0, err
	}
	if a.ErrCode != 0 {
		return "", 0, plugin.Errorf(plugin.CodeChannelUnavailable, "", "WeChat %s refused: errcode %d: %s", path, a.ErrCode, clean(a.ErrMsg, s.Secret))
	}
	if a.AccessToken == "" || a.ExpiresIn <= 0 {
		return "", 0, plugin.Errorf(plugin.CodeChannelUnavailable, "", "WeChat %s answer carries no access token", path)
	}
	return a.AccessToken, time.Duration(a.ExpiresIn) * time.Second, nil
}

// do sends req and decodes WeChat's JSON answer into v, with errors that
// carry neither the URL (with its secret or token) nor the body.
func (s *TokenSource) do(req *http.Request, path string, v any) error {
	resp, err := s.HTTP.Do(req)
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return fmt.Errorf("WeChat %s: %w", path, ctxErr)
		}
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return plugin.Errorf(plugin.CodeChannelUnavailable, "", "WeChat %s unreachable: %v", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return plugin.Errorf(plugin.CodeChannelUnavailable, "", "WeChat %s answered HTTP %d", path, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return plugin.Errorf(plugin.CodeChannelUnavailable, "", "read WeChat %s answer: %v", path, err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return plugin.Errorf(plugin.CodeChannelUnavailable, "", "WeChat %s answered something that is not JSON", path)
	}
	return nil
}

// PostJSON calls a WeChat server API that takes the access token in its
// query and a JSON body, and decodes the answer into out, which must
// embed APIError. When WeChat answers that the token is invalid or
// expired (40001, 42001), the token is fetched again and the call is
// repeated once.
func (s *TokenSource) PostJSON(ctx context.Context, path string, in any, out interface{ apiError() *APIError }) error {
	body, err := json.Marshal(in)
	if err != nil {
		return plugin.Errorf(plugin.CodeInternal, "", "encode WeChat %s request: %v", path, err)
	}
	stale := ""
	for attempt := 0; ; attempt++ {
		tok, err := s.get(ctx, stale)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.APIBase+path+"?access_token="+url.QueryEscape(tok), bytes.NewReader(body))
		if err != nil {
			return plugin.Errorf(plugin.CodeInternal, "", "build request to WeChat %s", path)
		}
		req.Header.Set("Content-Type", "application/json")
		*out.apiError() = APIError{}
		if err := s.do(req, path, out); err != nil {
			return err
		}
		e := out.apiError()
		switch {
		case e.ErrCode == 0:
			return nil
		case (e.ErrCode == ErrCodeInvalidCredential || e.ErrCode == ErrCodeTokenExpired) && attempt == 0:
			stale = tok
			continue
		}
		e.ErrMsg = clean(strings.ReplaceAll(e.ErrMsg, tok, "[redacted]"), s.Secret)
		return e
	}
}

// APIError is WeChat's {errcode, errmsg}; as an error it says which code
// WeChat answered.
type APIError struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

func (e *APIError) apiError() *APIError { return e }

// Error implements error.
func (e *APIError) Error() string {
	return fmt.Sprintf("WeChat refused: errcode %d: %s", e.ErrCode, e.ErrMsg)
}

// clean makes WeChat's errmsg safe to pass on: bounded in length and
// without the secret, should an answer ever echo it.
func clean(msg, secret string) string {
	if secret != "" {
		msg = strings.ReplaceAll(msg, secret, "[redacted]")
	}
	if r := []rune(msg); len(r) > 200 {
		msg = string(r[:200]) + "…"
	}
	return msg
}
