package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// Paths of the phone side of the WeChat emulation: what WeChat's app does
// with a link, a stand-in mini-program, the pay sheet and a stand-in
// WeixinJSBridge for pages that run in the sandbox or its tests.
const (
	// PathWeChatOpen opens a URL Scheme, URL Link, plain scheme (?link=) or
	// a native app's launch (?username=gh_…&path=…&miniprogram_type=).
	PathWeChatOpen = "/wechat/open"
	// PathWeChatMiniProgram is the stand-in mini-program page.
	PathWeChatMiniProgram = "/wechat/miniprogram"
	// PathWeChatRequest relays the stand-in mini-program's wx.request to
	// the app's back end.
	PathWeChatRequest = "/wechat/miniprogram/request"
	// PathWeChatPay pays (or not) an order from the pay sheet.
	PathWeChatPay = "/wechat/pay"
	// PathWeChatBridge is a script that gives a page a stand-in
	// WeixinJSBridge. Load it only in the sandbox and in tests.
	PathWeChatBridge = "/wechat/jsbridge.js"
	// PathWeChatPaySheet is the script of the pay sheet alone.
	PathWeChatPaySheet = "/wechat/paysheet.js"
)

// Results of a payment on the phone. None of them is final: the order is
// paid when the notification or a query says so.
const (
	PayResultOK     = "ok"
	PayResultCancel = "cancel"
	PayResultFail   = "fail"
)

func (s *Server) wechatRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /cgi-bin/token", s.serveServerToken)
	mux.HandleFunc("POST /cgi-bin/stable_token", s.serveStableToken)
	mux.HandleFunc("POST /wxa/generatescheme", s.serveGenerateLink(LinkScheme))
	mux.HandleFunc("POST /wxa/generate_urllink", s.serveGenerateLink(LinkURL))
	mux.HandleFunc("GET /sns/userinfo", s.serveUserInfo)

	openPage := template.Must(template.New("open").Parse(openPageHTML))
	miniPage := template.Must(template.New("miniprogram").Parse(miniProgramHTML))
	mux.HandleFunc("GET "+PathWeChatOpen, func(w http.ResponseWriter, r *http.Request) { s.serveOpen(w, r, openPage) })
	mux.HandleFunc("GET "+PathWeChatMiniProgram, func(w http.ResponseWriter, r *http.Request) { s.serveMiniProgram(w, r, miniPage) })
	mux.HandleFunc("POST "+PathWeChatRequest, s.serveRelay)
	mux.HandleFunc("GET "+PathWeChatPay, cors(s.servePayInfo))
	mux.HandleFunc("POST "+PathWeChatPay, cors(s.servePay))
	mux.HandleFunc("OPTIONS "+PathWeChatPay, cors(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	mux.HandleFunc("GET "+PathWeChatBridge, s.serveScript(paySheetJS+bridgeJS))
	mux.HandleFunc("GET "+PathWeChatPaySheet, s.serveScript(paySheetJS))
}

// cors lets pages of any origin call h: the pay sheet runs inside the
// merchant's page.
func cors(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
		w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
		h(w, r)
	}
}

// Launch is where a link opens a mini-program, as the phone would.
type Launch struct {
	// Kind is LinkScheme, LinkURL, LinkPlainScheme or LinkApp.
	Kind  string `json:"kind"`
	AppID string `json:"appid"`
	// Path is the page; empty is the home page.
	Path string `json:"path"`
	// Query is the page's query string, as the mini-program's
	// options.query will hold it.
	Query      string `json:"query"`
	EnvVersion string `json:"env_version"`
	// Scene is what the mini-program sees in options.scene.
	Scene     int       `json:"scene"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// MiniProgramURL is the stand-in mini-program page for this launch.
	MiniProgramURL string `json:"miniprogram_url"`
}

// launchError is a link the phone cannot open.
type launchError struct {
	status int
	msg    string
}

// resolveLaunchLocked tells where the link in q leads.
func (s *Server) resolveLaunchLocked(q url.Values, now time.Time) (Launch, *launchError) {
	if user := q.Get("username"); user != "" {
		appID, ok := s.cfg.WeChatOriginalIDs[user]
		if !ok {
			return Launch{}, &launchError{http.StatusNotFound, "no mini-program has the original id " + user}
		}
		env := map[string]string{"": "release", "0": "release", "1": "develop", "2": "trial"}[q.Get("miniprogram_type")]
		if env == "" {
			return Launch{}, &launchError{http.StatusBadRequest, "miniprogram_type must be 0 (release), 1 (develop) or 2 (trial)"}
		}
		path, query, _ := strings.Cut(strings.TrimPrefix(q.Get("path"), "/"), "?")
		return s.checkLaunchLocked(Launch{Kind: LinkApp, AppID: appID, Path: path, Query: query, EnvVersion: env, Scene: SceneApp})
	}
	link := q.Get("link")
	switch {
	case strings.HasPrefix(link, schemePrefix):
		u, err := url.Parse(link)
		if err != nil {
			return Launch{}, &launchError{http.StatusBadRequest, "not a URL: " + err.Error()}
		}
		lq := u.Query()
		if id := lq.Get("t"); id != "" {
			return s.storedLinkLocked(LinkScheme, id, now)
		}
		appID := lq.Get("appid")
		if _, ok := s.cfg.WeChatApps[appID]; !ok {
			return Launch{}, &launchError{http.StatusNotFound, fmt.Sprintf("invalid appid %q", appID)}
		}
		env := lq.Get("env_version")
		if env == "" {
			env = "release"
		}
		return s.checkLaunchLocked(Launch{Kind: LinkPlainScheme, AppID: appID, Path: lq.Get("path"), Query: lq.Get("query"), EnvVersion: env, Scene: SceneURLScheme})
	case strings.HasPrefix(link, urlLinkPrefix):
		return s.storedLinkLocked(LinkURL, strings.TrimPrefix(link, urlLinkPrefix), now)
	}
	return Launch{}, &launchError{http.StatusBadRequest, "give link= a weixin://dl/business/ scheme or an https://wxaurl.cn/ link, or username=gh_… and path= of an app launch"}
}

func (s *Server) storedLinkLocked(kind, id string, now time.Time) (Launch, *launchError) {
	l := s.l.wxLinks[id]
	if l == nil || l.kind != kind {
		return Launch{}, &launchError{http.StatusNotFound, "no such link"}
	}
	if !now.Before(l.expires) {
		return Launch{}, &launchError{http.StatusGone, "the link expired at " + l.expires.In(cst()).Format(time.DateTime) + " (Beijing time)"}
	}
	scene := SceneURLScheme
	if kind == LinkURL {
		scene = SceneURLLink
	}
	return Launch{Kind: kind, AppID: l.appID, Path: l.path, Query: l.query, EnvVersion: l.envVersion, Scene: scene, ExpiresAt: l.expires}, nil
}

// checkLaunchLocked applies the page and query rules to a link that needs
// no API call.
func (s *Server) checkLaunchLocked(l Launch) (Launch, *launchError) {
	if e := s.checkJumpLocked(l.AppID, jumpWxa{Path: l.Path, Query: l.Query, EnvVersion: l.EnvVersion}); e != nil {
		return Launch{}, &launchError{http.StatusBadRequest, fmt.Sprintf("%d %s", e.ErrCode, e.ErrMsg)}
	}
	return l, nil
}

// serveOpen shows what WeChat's app does with a link: which mini-program,
// page and query it launches. It answers JSON when asked with format=json
// or Accept: application/json.
func (s *Server) serveOpen(w http.ResponseWriter, r *http.Request, page *template.Template) {
	s.mu.Lock()
	l, lerr := s.resolveLaunchLocked(r.URL.Query(), s.now())
	s.mu.Unlock()
	if lerr == nil {
		mq := url.Values{"appid": {l.AppID}, "path": {l.Path}, "query": {l.Query}, "scene": {strconv.Itoa(l.Scene)}, "env_version": {l.EnvVersion}}
		if user := r.URL.Query().Get(sandboxUserParam); user != "" {
			mq.Set(sandboxUserParam, user)
		}
		l.MiniProgramURL = s.baseURL(r) + PathWeChatMiniProgram + "?" + mq.Encode()
	}
	if r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json") {
		if lerr != nil {
			code := map[int]string{http.StatusNotFound: "not_found", http.StatusGone: "gone"}[lerr.status]
			if code == "" {
				code = "bad_request"
			}
			controlFail(w, lerr.status, code, lerr.msg)
			return
		}
		writeJSON(w, http.StatusOK, l)
		return
	}
	status, view := http.StatusOK, struct {
		Launch
		Error string
	}{Launch: l}
	if lerr != nil {
		status, view.Error = lerr.status, lerr.msg
	}
	renderPage(w, status, page, view, s)
}

func renderPage(w http.ResponseWriter, status int, page *template.Template, view any, s *Server) {
	var buf bytes.Buffer
	if err := page.Execute(&buf, view); err != nil {
		s.log.Error("sandbox could not render a page", "page", page.Name(), "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// serveMiniProgram is the stand-in mini-program: it shows the launch it
// was opened with and, at the press of a button, does what a payment page
// does (wx.login, wx.request to the app's back end, wx.requestPayment).
func (s *Server) serveMiniProgram(w http.ResponseWriter, r *http.Request, page *template.Template) {
	q := r.URL.Query()
	appID := q.Get("appid")
	if _, ok := s.cfg.WeChatApps[appID]; !ok {
		http.Error(w, fmt.Sprintf("unknown mini-program app id %q", appID), http.StatusNotFound)
		return
	}
	scene, _ := strconv.Atoi(q.Get("scene"))
	launch := map[string]any{
		"appid": appID, "path": q.Get("path"), "query": q.Get("query"), "scene": scene,
		"env_version": q.Get("env_version"), "user": q.Get(sandboxUserParam),
	}
	b, _ := json.Marshal(launch)
	renderPage(w, http.StatusOK, page, struct {
		AppID, Path, Query, EnvVersion string
		Scene                          int
		Launch                         template.JS
	}{appID, q.Get("path"), q.Get("query"), q.Get("env_version"), scene, template.JS(b)}, s)
}

// relayRequest is what the stand-in mini-program asks the sandbox to post
// to the app's back end.
type relayRequest struct {
	AppID string          `json:"appid"`
	Data  json.RawMessage `json:"data"`
}

// serveRelay emulates wx.request from the stand-in mini-program: it posts
// data as JSON to the back end configured for the app (only there, as
// WeChat only lets a mini-program call its configured domains) and answers
// {statusCode, data} as wx.request's success does.
func (s *Server) serveRelay(w http.ResponseWriter, r *http.Request) {
	var req relayRequest
	if !decodeControl(w, r, &req) {
		return
	}
	s.mu.Lock()
	backend := ""
	if a := s.l.wxApps[req.AppID]; a != nil {
		backend = a.backendURL
	}
	s.mu.Unlock()
	if backend == "" {
		controlFail(w, http.StatusConflict, "conflict", "no back end is configured for mini-program "+req.AppID+"; set backend_url with POST "+ControlWeChatApps)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, backend, bytes.NewReader(req.Data))
	if err != nil {
		controlFail(w, http.StatusBadGateway, "bad_gateway", err.Error())
		return
	}
	out.Header.Set("Content-Type", "application/json")
	// WeChat sends every wx.request with this Referer.
	out.Header.Set("Referer", "https://servicewechat.com/"+req.AppID+"/0/page-frame.html")
	resp, err := s.http.Do(out)
	if err != nil {
		controlFail(w, http.StatusBadGateway, "bad_gateway", "the back end did not answer: "+err.Error())
		return
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		controlFail(w, http.StatusBadGateway, "bad_gateway", "reading the back end's answer: "+err.Error())
		return
	}
	var data any = string(body)
	if json.Valid(body) {
		data = json.RawMessage(body)
	}
	writeJSON(w, http.StatusOK, map[string]any{"statusCode": resp.StatusCode, "data": data})
}

// PayAttempt is what the pay sheet sends when the buyer decides.
type PayAttempt struct {
	// Kind is "jsapi" (getBrandWCPayRequest) or "miniprogram"
	// (wx.requestPayment).
	Kind string `json:"kind"`
	// AppID is the appId of the JSAPI parameters, or the mini-program's
	// own app id.
	AppID     string `json:"appid"`
	TimeStamp string `json:"timeStamp"`
	NonceStr  string `json:"nonceStr"`
	Package   string `json:"package"`
	SignType  string `json:"signType"`
	PaySign   string `json:"paySign"`
	// Action is "pay", "cancel" or "fail" (the bank declines; the order
	// stays payable).
	Action string `json:"action"`
}

// PayOutcome is the pay sheet's answer.
type PayOutcome struct {
	// Result is PayResultOK, PayResultCancel or PayResultFail.
	Result  string `json:"result"`
	Message string `json:"message,omitempty"`
}

// servePay pays the order named by package when the buyer presses Pay:
// the parameters must be the order's, paySign must verify with the WeChat
// key, and the trade type must suit the API (T_JSAPI for
// getBrandWCPayRequest, T_MINIAPP for wx.requestPayment). The order is then
// paid and its notification follows; cancel and fail change nothing.
func (s *Server) servePay(w http.ResponseWriter, r *http.Request) {
	var p PayAttempt
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&p); err != nil {
		writeJSON(w, http.StatusBadRequest, PayOutcome{Result: PayResultFail, Message: "malformed JSON"})
		return
	}
	switch p.Action {
	case "cancel":
		writeJSON(w, http.StatusOK, PayOutcome{Result: PayResultCancel})
		return
	case "fail":
		writeJSON(w, http.StatusOK, PayOutcome{Result: PayResultFail, Message: "the bank declined the payment (sandbox); the order can still be paid"})
		return
	case "pay":
	default:
		writeJSON(w, http.StatusBadRequest, PayOutcome{Result: PayResultFail, Message: "action must be pay, cancel or fail"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	writeJSON(w, http.StatusOK, s.payLocked(p))
}

func (s *Server) payLocked(p PayAttempt) PayOutcome {
	fail := func(msg string) PayOutcome { return PayOutcome{Result: PayResultFail, Message: msg} }
	o := s.l.ordersByPrepay[p.Package]
	if o == nil {
		return fail("no order has this package (prepay_id)")
	}
	want := map[string]string{"jsapi": upstream.TradeWeChatJSAPI, "miniprogram": upstream.TradeWeChatMiniApp}[p.Kind]
	switch {
	case want == "":
		return fail("kind must be jsapi or miniprogram")
	case o.tradeType != want:
		return fail(fmt.Sprintf("the order is %s; %s pays only %s orders", o.tradeType, p.Kind, want))
	case p.AppID != o.appID:
		return fail(fmt.Sprintf("app id %s is not the order's (%s)", p.AppID, o.appID))
	case p.SignType != "RSA":
		return fail("signType must be RSA")
	}
	msg := PaySignMessage(upstream.PayInfo{AppID: p.AppID, TimeStamp: p.TimeStamp, NonceStr: p.NonceStr, Package: p.Package})
	if err := nkp.Verify(&s.cfg.WeChatKey.PublicKey, []byte(msg), p.PaySign); err != nil {
		return fail("paySign does not verify")
	}
	if err := s.settlePaymentLocked(o, true, "", "", s.now()); err != nil {
		return fail(err.Error())
	}
	return PayOutcome{Result: PayResultOK}
}

// servePayInfo tells the pay sheet what the order named by package is for.
func (s *Server) servePayInfo(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.l.ordersByPrepay[r.URL.Query().Get("package")]
	if o == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no order has this package"})
		return
	}
	expireLocked(o, s.now())
	writeJSON(w, http.StatusOK, map[string]string{
		"huifu_id": o.huifu, "goods_desc": o.goodsDesc, "trans_amt": o.amount.Yuan(), "trans_stat": o.stat, "trade_type": o.tradeType,
	})
}

// serveScript serves a script of the stand-ins with the sandbox's base URL
// filled in.
func (s *Server) serveScript(src string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		base, _ := json.Marshal(s.baseURL(r))
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = io.WriteString(w, strings.ReplaceAll(src, "__SANDBOX_BASE__", string(base)))
	}
}

// paySheetJS defines SandboxWeChatPay(kind, appid, params), which shows
// WeChat's pay sheet over the page and resolves to the PayOutcome of the
// buyer's choice. Buttons: #sandbox-wxpay-pay, #sandbox-wxpay-cancel,
// #sandbox-wxpay-fail.
const paySheetJS = `(function () {
  'use strict';
  var base = __SANDBOX_BASE__;
  function post(path, body) {
    return fetch(base + path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
      .then(function (r) { return r.json(); });
  }
  window.SandboxWeChatPay = function (kind, appid, params) {
    return fetch(base + '/wechat/pay?package=' + encodeURIComponent(params['package'] || ''))
      .then(function (r) { return r.ok ? r.json() : null; }, function () { return null; })
      .then(function (order) {
        return new Promise(function (resolve) {
          var sheet = document.createElement('div');
          sheet.id = 'sandbox-wxpay';
          sheet.setAttribute('role', 'dialog');
          sheet.style.cssText = 'position:fixed;left:0;right:0;bottom:0;z-index:2147483647;background:#fff;border-top:1px solid #ccc;' +
            'padding:1rem;font:16px system-ui,sans-serif;box-shadow:0 -4px 16px rgba(0,0,0,.2)';
          var title = document.createElement('p');
          title.textContent = 'WeChat Pay (sandbox, no real money)';
          var what = document.createElement('p');
          what.id = 'sandbox-wxpay-order';
          what.textContent = order ? order.goods_desc + ' \u00a5' + order.trans_amt : 'unknown order';
          sheet.appendChild(title);
          sheet.appendChild(what);
          [['pay', 'Pay'], ['cancel', 'Cancel'], ['fail', 'Make it fail']].forEach(function (b) {
            var btn = document.createElement('button');
            btn.type = 'button';
            btn.id = 'sandbox-wxpay-' + b[0];
            btn.textContent = b[1];
            btn.style.cssText = 'margin-right:.5rem;padding:.5rem 1rem;font:inherit';
            btn.addEventListener('click', function () {
              sheet.remove();
              var attempt = { kind: kind, appid: appid, action: b[0] };
              ['timeStamp', 'nonceStr', 'package', 'signType', 'paySign'].forEach(function (k) { attempt[k] = params[k]; });
              post('/wechat/pay', attempt).then(resolve, function (e) { resolve({ result: 'fail', message: String(e) }); });
            });
            sheet.appendChild(btn);
          });
          document.body.appendChild(sheet);
        });
      });
  };
})();
`

// bridgeJS gives the page a stand-in WeixinJSBridge once the page has
// loaded (after delay_ms more, when the script's URL asks), then fires
// WeixinJSBridgeReady on document, as WeChat's browser does.
const bridgeJS = `(function () {
  'use strict';
  var script = document.currentScript;
  var delay = script ? Number(new URL(script.src).searchParams.get('delay_ms')) || 0 : 0;
  var fields = ['appId', 'timeStamp', 'nonceStr', 'package', 'signType', 'paySign'];
  function invoke(name, params, cb) {
    cb = cb || function () {};
    if (name !== 'getBrandWCPayRequest') {
      setTimeout(function () { cb({ err_msg: name + ':fail' }); }, 0);
      return;
    }
    for (var i = 0; i < fields.length; i++) {
      if (!params || typeof params[fields[i]] !== 'string' || !params[fields[i]]) {
        var missing = fields[i];
        setTimeout(function () { cb({ err_msg: 'get_brand_wcpay_request:fail', err_desc: 'missing ' + missing }); }, 0);
        return;
      }
    }
    window.SandboxWeChatPay('jsapi', params.appId, params).then(function (out) {
      var res = { err_msg: 'get_brand_wcpay_request:' + out.result };
      if (out.message) res.err_desc = out.message;
      cb(res);
    });
  }
  function ready() {
    setTimeout(function () {
      window.WeixinJSBridge = { invoke: invoke, on: function () {}, call: function () {} };
      var ev = document.createEvent('Event');
      ev.initEvent('WeixinJSBridgeReady', true, true);
      document.dispatchEvent(ev);
    }, delay);
  }
  if (document.readyState === 'complete') ready(); else window.addEventListener('load', ready);
})();
`

// openPageHTML shows where a link leads.
const openPageHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>WeChat (sandbox): open a mini-program</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;color:#222}
dt{font-weight:600;margin-top:.5rem}code{background:#f4f4f4;padding:.1rem .3rem;overflow-wrap:anywhere}.err{color:#a00}</style>
</head><body>
<p><strong>WeChat (sandbox)</strong> &mdash; what the phone does with this link.</p>
{{if .Error}}<p class="err" id="open-error">{{.Error}}</p>{{else}}
<dl>
<dt>Opened by</dt><dd id="open-kind">{{.Kind}}</dd>
<dt>Mini-program</dt><dd><code id="open-appid">{{.AppID}}</code> ({{.EnvVersion}})</dd>
<dt>Page</dt><dd><code id="open-path">{{.Path}}</code></dd>
<dt>Query</dt><dd><code id="open-query">{{.Query}}</code></dd>
<dt>Scene</dt><dd id="open-scene">{{.Scene}}</dd>
{{if not .ExpiresAt.IsZero}}<dt>Expires</dt><dd id="open-expires">{{.ExpiresAt.Format "2006-01-02 15:04:05 MST"}}</dd>{{end}}
</dl>
<p><a id="open-miniprogram" href="{{.MiniProgramURL}}">Open the mini-program</a></p>
{{end}}
</body></html>
`

// miniProgramHTML is the stand-in mini-program page. Its script uses a
// stand-in wx (login, request, requestPayment) the way a payment page
// does: wx.login, then wx.request to the app's back end with the code and
// the launch query, then wx.requestPayment with the answer's
// request_payment (or pay_params.request_payment).
const miniProgramHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Mini-program {{.AppID}} (sandbox)</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;color:#222}
code{background:#f4f4f4;padding:.1rem .3rem;overflow-wrap:anywhere}button{font:inherit;padding:.5rem 1rem}
#mp-result[data-result="ok"]{color:#0a7d2c}#mp-result[data-result="fail"],#mp-result[data-result="error"]{color:#a00}</style>
</head><body>
<p><strong>Mini-program <code id="mp-appid">{{.AppID}}</code></strong> (sandbox stand-in, {{.EnvVersion}})</p>
<p>Page <code id="mp-path">{{.Path}}</code>, scene <span id="mp-scene">{{.Scene}}</span></p>
<p>Query <code id="mp-query">{{.Query}}</code></p>
<button type="button" id="mp-start" disabled>Log in and pay</button>
<p id="mp-status"></p>
<p id="mp-result" data-result=""></p>
<script src="/wechat/paysheet.js"></script>
<script>
(function () {
  'use strict';
  var launch = {{.Launch}};
  function post(path, body) {
    return fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
      .then(function (r) { return r.json().then(function (d) { if (!r.ok) throw new Error((d.error && d.error.message) || ('HTTP ' + r.status)); return d; }); });
  }
  // The stand-in wx: the calls a payment page makes, with WeChat's
  // callback conventions.
  var wx = {
    login: function (o) {
      post('/_sandbox/wechat/codes', { appid: launch.appid, user: launch.user || undefined })
        .then(function (c) { o.success({ code: c.code, errMsg: 'login:ok' }); }, function (e) { o.fail({ errMsg: 'login:fail ' + e.message }); });
    },
    request: function (o) {
      post('/wechat/miniprogram/request', { appid: launch.appid, data: o.data })
        .then(function (r) { o.success({ statusCode: r.statusCode, data: r.data, errMsg: 'request:ok' }); }, function (e) { o.fail({ errMsg: 'request:fail ' + e.message }); });
    },
    requestPayment: function (o) {
      window.SandboxWeChatPay('miniprogram', launch.appid, o).then(function (out) {
        if (out.result === 'ok') o.success({ errMsg: 'requestPayment:ok' });
        else if (out.result === 'cancel') o.fail({ errMsg: 'requestPayment:fail cancel' });
        else o.fail({ errMsg: 'requestPayment:fail ' + (out.message || '') });
      });
    }
  };
  var query = {};
  new URLSearchParams(launch.query).forEach(function (v, k) { query[k] = v; });
  function show(result, text) {
    var el = document.getElementById('mp-result');
    el.dataset.result = result;
    el.textContent = text;
  }
  function status(text) { document.getElementById('mp-status').textContent = text; }
  // The button is enabled only once it does something: it is on the page
  // (and clickable) before this script has run.
  var start = document.getElementById('mp-start');
  start.addEventListener('click', function () {
    status('wx.login…');
    wx.login({
      fail: function (res) { show('error', res.errMsg); },
      success: function (login) {
        status('asking the back end for the payment…');
        // The launch query's members also come at the top level, so that a
        // back end reading {"checkout", "code"} serves this page as is.
        wx.request({
          data: Object.assign({}, query, { code: login.code, appid: launch.appid, path: launch.path, query: query, scene: launch.scene }),
          fail: function (res) { show('error', res.errMsg); },
          success: function (res) {
            var d = res.data || {};
            var rp = d.request_payment || (d.pay_params && d.pay_params.request_payment);
            if (res.statusCode !== 200 || !rp) {
              show('error', 'the back end answered HTTP ' + res.statusCode + ': ' + (typeof d === 'string' ? d : JSON.stringify(d)));
              return;
            }
            status('wx.requestPayment…');
            rp.success = function (r) { show('ok', r.errMsg + ' — not final: the payment is confirmed by the merchant\'s server, not by this page.'); };
            rp.fail = function (r) { show(/cancel$/.test(r.errMsg) ? 'cancel' : 'fail', r.errMsg); };
            wx.requestPayment(rp);
          }
        });
      }
    });
  });
  start.disabled = false;
})();
</script>
</body></html>
`
