// Package wechattest is a small emulation of WeChat's sns API for the
// flows' tests: web OAuth code exchange (/sns/oauth2/access_token) and
// mini-program login (/sns/jscode2session), with one-time codes, app
// secrets and WeChat's {errcode, errmsg} answers.
package wechattest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
)

// Secrets WeChat hands out in successful answers. The flows must never
// pass them on; tests look for them in what the host receives.
const (
	AccessToken = "ACCESS-TOKEN-never-leaves-the-plugin"
	SessionKey  = "SESSION-KEY-never-leaves-the-plugin"
)

// Request is one request the emulation received.
type Request struct {
	// Path is the request path.
	Path string
	// Query is the request's query.
	Query url.Values
}

type code struct {
	appID, openID, unionID string
	used                   bool
}

// Server is the emulation, listening on a loopback port.
type Server struct {
	*httptest.Server

	mu       sync.Mutex
	apps     map[string]string
	codes    map[string]*code
	next     int
	requests []Request
	errCode  int
	status   int
	body     string
	redirect string
}

// New starts an emulation that stops when the test ends.
func New(t testing.TB) *Server {
	s := &Server{apps: map[string]string{}, codes: map[string]*code{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sns/oauth2/access_token", func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, "code", func(c *code) map[string]any {
			return map[string]any{"access_token": AccessToken, "expires_in": 7200, "refresh_token": "R-" + AccessToken,
				"openid": c.openID, "scope": "snsapi_base", "unionid": c.unionID}
		})
	})
	mux.HandleFunc("GET /sns/jscode2session", func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, "js_code", func(c *code) map[string]any {
			return map[string]any{"openid": c.openID, "session_key": SessionKey, "unionid": c.unionID}
		})
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// AddApp registers an app and its secret.
func (s *Server) AddApp(appID, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[appID] = secret
}

// MintCode issues a one-time code for openID (and unionID, if not empty)
// under appID.
func (s *Server) MintCode(appID, openID, unionID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	c := "code-" + strconv.Itoa(s.next)
	s.codes[c] = &code{appID: appID, openID: openID, unionID: unionID}
	return c
}

// FailWith makes every following exchange answer errcode (0 restores
// normal answers).
func (s *Server) FailWith(errcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errCode = errcode
}

// AnswerRaw makes every following request answer HTTP status with body
// (status 0 restores normal answers).
func (s *Server) AnswerRaw(status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

// RedirectTo makes every following request answer 302 Found to target
// ("" restores normal answers).
func (s *Server) RedirectTo(target string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.redirect = target
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, codeParam string, ok func(*code) map[string]any) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, Request{Path: r.URL.Path, Query: q})
	if s.redirect != "" {
		http.Redirect(w, r, s.redirect, http.StatusFound)
		return
	}
	if s.status != 0 {
		w.WriteHeader(s.status)
		_, _ = w.Write([]byte(s.body))
		return
	}
	if s.errCode != 0 {
		writeJSON(w, map[string]any{"errcode": s.errCode, "errmsg": "emulated failure"})
		return
	}
	secret, known := s.apps[q.Get("appid")]
	switch {
	case !known:
		writeJSON(w, map[string]any{"errcode": 40013, "errmsg": "invalid appid"})
		return
	case q.Get("secret") != secret:
		writeJSON(w, map[string]any{"errcode": 40125, "errmsg": "invalid appsecret"})
		return
	case q.Get("grant_type") != "authorization_code":
		writeJSON(w, map[string]any{"errcode": 40002, "errmsg": "invalid grant_type"})
		return
	}
	c, found := s.codes[q.Get(codeParam)]
	switch {
	case !found || c.appID != q.Get("appid"):
		writeJSON(w, map[string]any{"errcode": 40029, "errmsg": "invalid code"})
		return
	case c.used:
		writeJSON(w, map[string]any{"errcode": 40163, "errmsg": "code been used"})
		return
	}
	c.used = true
	writeJSON(w, ok(c))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
