package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/paysidecar/paysidecar/internal/testenv"
	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/delivery"
)

var testSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("demo-app-test-secret-32-bytes!!!"))

const testQRCode = "http://127.0.0.1:8900/qr/tok_ABC123?from=demo&x=1"

// stubSidecar is a stand-in for the sidecar's app API that answers
// POST /v1/payments with a fixed payment and records what it was sent.
type stubSidecar struct {
	t *testing.T
	// payParams maps a flow to the pay_params answered for it.
	payParams map[string]string
	// fail, when set, is answered instead of a payment.
	fail *client.ErrorBody

	mu       sync.Mutex
	requests []client.CreatePaymentRequest
	keys     []string
	oauth    []map[string]string
}

func (s *stubSidecar) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Path == "/v1/oauth/authorize-url" {
		var in map[string]string
		_ = json.NewDecoder(r.Body).Decode(&in)
		s.mu.Lock()
		s.oauth = append(s.oauth, in)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"url": "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx1&redirect_uri=" +
			url.QueryEscape(in["redirect_uri"]) + "&response_type=code&scope=" + in["scope"] + "&state=" + in["state"] + "#wechat_redirect"})
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/payments" {
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
		return
	}
	var req client.CreatePaymentRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.t.Errorf("the demo sent a body the API would refuse: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.keys = append(s.keys, r.Header.Get("Idempotency-Key"))
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if s.fail != nil {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(s.fail)
		return
	}
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(client.Payment{
		Object: "payment", ID: "pay_demo1", Flow: req.Flow, OutTradeNo: req.OutTradeNo, AmountFen: req.AmountFen,
		Description: req.Description, Status: client.StatusProcessing, TradeType: "A_NATIVE",
		PayParams: json.RawMessage(s.payParams[req.Flow]), CreatedAt: time.Now().UTC(),
	})
}

func (s *stubSidecar) sent() ([]client.CreatePaymentRequest, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]client.CreatePaymentRequest(nil), s.requests...), append([]string(nil), s.keys...)
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newTestShop starts the stub sidecar and the demo shop in front of it.
func newTestShop(t *testing.T, stub *stubSidecar) (*app, *httptest.Server) {
	t.Helper()
	stub.t = t
	side := httptest.NewServer(stub)
	t.Cleanup(side.Close)
	a := newApp(client.New(side.URL), testSecret, quietLogger())
	shop := httptest.NewServer(a.handler())
	t.Cleanup(shop.Close)
	return a, shop
}

// Pay parameters in the shapes the flow plugins produce.
const (
	jsapiParams   = `{"appId":"wxsandbox00000001","timeStamp":"1735689600","nonceStr":"n0nce","package":"prepay_id=wx201410272009395522657a690389285100","signType":"RSA","paySign":"c2lnbmF0dXJl"}`
	miniappParams = `{"request_payment":{"timeStamp":"1735689600","nonceStr":"n0nce","package":"prepay_id=wx2","signType":"RSA","paySign":"c2ln"},"launch":{"username":"gh_0sandbox0001","path":"pages/pay/index?payment_id=pay_demo1&out_trade_no=DEMO-1"}}`
)

// alipayStub answers every flow; the Alipay parameters carry only the
// qr_code, so the page has to build the deep link itself.
func alipayStub() *stubSidecar {
	return &stubSidecar{payParams: map[string]string{
		client.FlowAlipayNative:  `{"qr_code":` + strconv.Quote(testQRCode) + `}`,
		client.FlowWeChatJSAPI:   jsapiParams,
		client.FlowWeChatMiniApp: miniappParams,
	}}
}

// createOrder creates an order through the shop's API.
func createOrder(t *testing.T, shop *httptest.Server, body string) (int, map[string]json.RawMessage) {
	t.Helper()
	resp, err := http.Post(shop.URL+"/api/orders", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var out map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("decode answer: %v", err)
	}
	return resp.StatusCode, out
}

func orderStatus(t *testing.T, shop *httptest.Server, outTradeNo string) order {
	t.Helper()
	resp, err := http.Get(shop.URL + "/api/orders/" + url.PathEscape(outTradeNo))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET order: HTTP %d", resp.StatusCode)
	}
	var o order
	if err := json.NewDecoder(resp.Body).Decode(&o); err != nil {
		t.Fatal(err)
	}
	return o
}

// signedEvent builds a webhook delivery of ev as the sidecar sends it.
func signedEvent(t *testing.T, secret string, ev client.Event, at time.Time) (http.Header, []byte) {
	t.Helper()
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	key, err := delivery.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(delivery.HeaderID, ev.ID)
	h.Set(delivery.HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	h.Set(delivery.HeaderSignature, delivery.Sign(key, ev.ID, at, body))
	return h, body
}

func postWebhook(t *testing.T, shop *httptest.Server, h http.Header, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, shop.URL+"/webhook", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

func succeeded(outTradeNo string) client.Event {
	return client.Event{
		ID: "evt_paid_" + outTradeNo, Type: client.EventPaymentSucceeded, CreatedAt: time.Now().UTC(),
		Data: client.EventData{Source: "notification", Payment: &client.Payment{
			Object: "payment", ID: "pay_demo1", OutTradeNo: outTradeNo, AmountFen: 1234, Status: client.StatusSucceeded,
		}},
	}
}

func TestCreateOrderCallsTheSidecar(t *testing.T) {
	stub := alipayStub()
	_, shop := newTestShop(t, stub)
	status, out := createOrder(t, shop, `{"flow":"alipay-native","amount_fen":1234}`)
	if status != http.StatusCreated {
		t.Fatalf("HTTP %d: %s", status, out["error"])
	}
	var o order
	var p client.Payment
	if err := json.Unmarshal(out["order"], &o); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out["payment"], &p); err != nil {
		t.Fatal(err)
	}
	sent, keys := stub.sent()
	if len(sent) != 1 {
		t.Fatalf("the sidecar got %d requests, want 1", len(sent))
	}
	req := sent[0]
	if req.Flow != client.FlowAlipayNative || req.AmountFen != 1234 || req.OutTradeNo != o.OutTradeNo || req.Description == "" {
		t.Errorf("sidecar request = %+v, order = %+v", req, o)
	}
	if keys[0] != o.OutTradeNo {
		t.Errorf("Idempotency-Key = %q, want the order number %q", keys[0], o.OutTradeNo)
	}
	if req.ClientIP != "127.0.0.1" {
		t.Errorf("client_ip = %q, want the buyer's address 127.0.0.1", req.ClientIP)
	}
	if p.ID != "pay_demo1" || o.PaymentID != "pay_demo1" || !strings.Contains(string(p.PayParams), "qr_code") {
		t.Errorf("answer payment = %+v, order = %+v", p, o)
	}
	if got := orderStatus(t, shop, o.OutTradeNo); got.Status != orderUnpaid {
		t.Errorf("new order status = %q, want %q", got.Status, orderUnpaid)
	}
}

func TestCreateOrderRefusesBadInput(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		fail       *client.ErrorBody
		wantStatus int
		wantCode   string
		wantCalls  int
	}{
		{"unknown flow", `{"flow":"paypal","amount_fen":100}`, nil, http.StatusBadRequest, "unknown_flow", 0},
		{"zero amount", `{"flow":"alipay-native","amount_fen":0}`, nil, http.StatusBadRequest, "amount_invalid", 0},
		{"amount above the demo's cap", `{"flow":"alipay-native","amount_fen":100001}`, nil, http.StatusBadRequest, "amount_invalid", 0},
		{"not JSON", `flow=alipay-native`, nil, http.StatusBadRequest, "invalid_json", 0},
		{"sidecar refuses", `{"flow":"wechat-jsapi","amount_fen":100}`,
			&client.ErrorBody{Error: client.ErrorDetail{Code: "missing_buyer", Message: "flow wechat-jsapi needs buyer.openid or buyer.code", Field: "buyer"}},
			http.StatusBadRequest, "missing_buyer", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub := alipayStub()
			stub.fail = tt.fail
			_, shop := newTestShop(t, stub)
			status, out := createOrder(t, shop, tt.body)
			var e client.ErrorDetail
			_ = json.Unmarshal(out["error"], &e)
			if status != tt.wantStatus || e.Code != tt.wantCode {
				t.Errorf("HTTP %d %q, want %d %q", status, e.Code, tt.wantStatus, tt.wantCode)
			}
			if sent, _ := stub.sent(); len(sent) != tt.wantCalls {
				t.Errorf("the sidecar got %d requests, want %d", len(sent), tt.wantCalls)
			}
		})
	}
}

func TestWeChatLogin(t *testing.T) {
	stub := alipayStub()
	_, shop := newTestShop(t, stub)
	post := func(redirect string) (int, map[string]string) {
		t.Helper()
		body, _ := json.Marshal(map[string]string{"redirect_uri": redirect})
		resp, err := http.Post(shop.URL+"/api/wechat-login", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var out map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	status, out := post(shop.URL + "/")
	if status != http.StatusOK || !strings.HasPrefix(out["url"], "https://open.weixin.qq.com/connect/oauth2/authorize?") {
		t.Fatalf("HTTP %d %v", status, out)
	}
	stub.mu.Lock()
	calls := stub.oauth
	stub.mu.Unlock()
	want := map[string]string{"flow": client.FlowWeChatJSAPI, "redirect_uri": shop.URL + "/", "scope": "snsapi_base", "state": "demo"}
	if len(calls) != 1 || !reflect.DeepEqual(calls[0], want) {
		t.Errorf("the sidecar was asked %v, want %v", calls, want)
	}
	if status, _ := post("https://elsewhere.example.com/steal"); status != http.StatusBadRequest {
		t.Errorf("a redirect to another host answered HTTP %d, want 400", status)
	}
	stub.mu.Lock()
	n := len(stub.oauth)
	stub.mu.Unlock()
	if n != 1 {
		t.Errorf("the sidecar was asked for a redirect to another host")
	}
}

func TestWebhook(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name       string
		secret     string
		at         time.Time
		tamper     bool
		wantStatus int
		wantOrder  string
	}{
		{"valid signature marks the order paid", testSecret, now, false, http.StatusNoContent, orderPaid},
		{"tampered body is refused", testSecret, now, true, http.StatusUnauthorized, orderUnpaid},
		{"another secret is refused", "whsec_" + base64.StdEncoding.EncodeToString([]byte("some-other-secret-of-32-bytes!!!")), now, false, http.StatusUnauthorized, orderUnpaid},
		{"stale timestamp is refused", testSecret, now.Add(-10 * time.Minute), false, http.StatusUnauthorized, orderUnpaid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, shop := newTestShop(t, alipayStub())
			_, out := createOrder(t, shop, `{"flow":"alipay-native","amount_fen":1234}`)
			var o order
			if err := json.Unmarshal(out["order"], &o); err != nil {
				t.Fatal(err)
			}
			h, body := signedEvent(t, tt.secret, succeeded(o.OutTradeNo), tt.at)
			if tt.tamper {
				body = bytes.Replace(body, []byte(`"amount_fen":1234`), []byte(`"amount_fen":1`), 1)
			}
			if got := postWebhook(t, shop, h, body); got != tt.wantStatus {
				t.Errorf("webhook answered HTTP %d, want %d", got, tt.wantStatus)
			}
			if got := orderStatus(t, shop, o.OutTradeNo); got.Status != tt.wantOrder {
				t.Errorf("order status = %q, want %q", got.Status, tt.wantOrder)
			}
		})
	}
}

func TestWebhookHandlesEachEventOnce(t *testing.T) {
	_, shop := newTestShop(t, alipayStub())
	_, out := createOrder(t, shop, `{"flow":"alipay-native","amount_fen":1234}`)
	var o order
	if err := json.Unmarshal(out["order"], &o); err != nil {
		t.Fatal(err)
	}
	h, body := signedEvent(t, testSecret, succeeded(o.OutTradeNo), time.Now())
	for i := 0; i < 3; i++ {
		if got := postWebhook(t, shop, h, body); got != http.StatusNoContent {
			t.Fatalf("delivery %d answered HTTP %d", i, got)
		}
	}
	got := orderStatus(t, shop, o.OutTradeNo)
	if got.Status != orderPaid || len(got.Events) != 1 {
		t.Errorf("after three deliveries of one event: status %q, events %v; want paid and one event", got.Status, got.Events)
	}
	// An event for an order this shop does not know is still acknowledged.
	h, body = signedEvent(t, testSecret, succeeded("SOMEONE-ELSES-ORDER"), time.Now())
	if got := postWebhook(t, shop, h, body); got != http.StatusNoContent {
		t.Errorf("unknown order answered HTTP %d, want 204", got)
	}
}

func TestPageIsServed(t *testing.T) {
	_, shop := newTestShop(t, alipayStub())
	tests := []struct {
		path, wantType string
		wantStatus     int
		contains       []string
	}{
		{"/", "text/html", http.StatusOK, []string{`id="pay"`, `id="flow"`, `src="/static/app.js"`}},
		{"/static/app.js", "text/javascript", http.StatusOK, []string{
			"getBrandWCPayRequest", "wx.requestPayment", "alipays://platformapi/startapp?saId=10000007&qrcode=", "encodeURIComponent(qr)",
		}},
		{"/static/nope.js", "", http.StatusNotFound, nil},
		{"/api/orders/NO-SUCH-ORDER", "application/json", http.StatusNotFound, []string{`"not_found"`}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := http.Get(shop.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("HTTP %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.wantType) {
				t.Errorf("Content-Type = %q, want %s", ct, tt.wantType)
			}
			for _, want := range tt.contains {
				if !bytes.Contains(body, []byte(want)) {
					t.Errorf("body lacks %q", want)
				}
			}
		})
	}
}

// chromium returns the path of a Chromium to drive, skipping the test when
// there is none (failing instead under CI).
func chromium(t *testing.T) string {
	t.Helper()
	return testenv.LookPath(t, "Debian package chromium; drives the page", "chromium", "chromium-browser", "google-chrome")
}

// newBrowser starts headless Chromium for one test and returns a tab.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	exe := chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-proxy-server", true),
	}
	ctx, cancelTimeout := context.WithTimeout(context.Background(), 20*time.Second)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	// Cancelling the allocator waits for the browser process to exit.
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancelTimeout()
	})
	return tab
}

// pageText returns the text of the element sel selects.
func pageText(t *testing.T, tab context.Context, sel string) string {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("read %s: %v", sel, err)
	}
	return v
}

// pageAttr returns an attribute of the element sel selects.
func pageAttr(t *testing.T, tab context.Context, sel, name string) chromedp.AttributeResult {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.AttributeValue(chromedp.CSS(sel), name))
	if err != nil {
		t.Fatalf("read %s[%s]: %v", sel, name, err)
	}
	return v
}

// payWith loads the page, installs the given stand-in for WeChat's
// JavaScript (none when empty), chooses the flow and amount, presses Pay
// and waits for waitFor to appear.
func payWith(t *testing.T, tab context.Context, shopURL, bridge, flow, openid, waitFor string) {
	t.Helper()
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(shopURL + "/"),
		chromedp.WaitVisible(chromedp.CSS("#pay")),
	}
	if bridge != "" {
		steps = append(steps, chromedp.Evaluate[chromedp.Void](bridge))
	}
	steps = append(steps,
		chromedp.SetValue(chromedp.CSS("#flow"), flow),
		chromedp.SetValue(chromedp.CSS("#amount"), "1234"),
	)
	if openid != "" {
		steps = append(steps, chromedp.SetValue(chromedp.CSS("#openid"), openid))
	}
	steps = append(steps,
		chromedp.Click(chromedp.CSS("#pay")),
		chromedp.WaitVisible(chromedp.CSS(waitFor)),
	)
	if err := chromedp.Do(tab, steps...); err != nil {
		t.Fatalf("pay with %s: %v", flow, err)
	}
}

// sameJSON reports whether two JSON texts hold the same value.
func sameJSON(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatalf("%v: %s", err, a)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

// TestPageInChromium loads the page in headless Chromium against a stub
// sidecar. For Alipay native it presses Pay and checks that the page offers
// the exact deep link and the cashier link, then delivers the
// payment.succeeded webhook and checks that the polling page shows the
// order paid. For the WeChat flows it checks what the page hands to
// WeChat's JavaScript, with stand-ins for WeixinJSBridge and
// wx.requestPayment, and what it shows without them.
func TestPageInChromium(t *testing.T) {
	tab := newBrowser(t)
	_, shop := newTestShop(t, alipayStub())

	t.Run("alipay-native deep link, then paid by webhook", func(t *testing.T) {
		payWith(t, tab, shop.URL, "", client.FlowAlipayNative, "", "#deeplink")
		want := "alipays://platformapi/startapp?saId=10000007&qrcode=" + url.QueryEscape(testQRCode)
		if href := pageAttr(t, tab, "#deeplink", "href"); !href.Exists || href.Value != want {
			t.Errorf("deep link href = %+v, want %q", href, want)
		}
		if shown := pageText(t, tab, "#deeplink-text"); shown != want {
			t.Errorf("deep link shown = %q, want %q", shown, want)
		}
		if cashier := pageAttr(t, tab, "#cashier", "href"); cashier.Value != testQRCode {
			t.Errorf("cashier link = %q, want the qr_code URL %q", cashier.Value, testQRCode)
		}
		if status := pageText(t, tab, "#status"); status != "waiting for payment" {
			t.Errorf("status before the webhook = %q", status)
		}
		h, body := signedEvent(t, testSecret, succeeded(pageText(t, tab, "#order-no")), time.Now())
		if got := postWebhook(t, shop, h, body); got != http.StatusNoContent {
			t.Fatalf("webhook answered HTTP %d", got)
		}
		if err := chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS(`#status[data-status="paid"]`))); err != nil {
			t.Fatalf("wait for the page to show the order paid: %v", err)
		}
		if status := pageText(t, tab, "#status"); status != "paid" {
			t.Errorf("status shown = %q, want paid", status)
		}
	})

	t.Run("wechat-jsapi inside WeChat calls getBrandWCPayRequest", func(t *testing.T) {
		bridge := `window.bridgeCalls = []; window.WeixinJSBridge = {invoke: function (name, params, cb) {
			window.bridgeCalls.push([name, params]); cb({err_msg: 'get_brand_wcpay_request:ok'}); }};`
		payWith(t, tab, shop.URL, bridge, client.FlowWeChatJSAPI, "o_buyer_openid", "#status")
		calls, err := chromedp.Run(tab, chromedp.Evaluate[[][]json.RawMessage](`window.bridgeCalls`))
		if err != nil {
			t.Fatal(err)
		}
		if len(calls) != 1 || len(calls[0]) != 2 || string(calls[0][0]) != `"getBrandWCPayRequest"` || !sameJSON(t, string(calls[0][1]), jsapiParams) {
			t.Errorf("WeixinJSBridge.invoke calls = %s, want one getBrandWCPayRequest with %s", calls, jsapiParams)
		}
		if text := pageText(t, tab, "#action"); !strings.Contains(text, "waiting for confirmation") {
			t.Errorf("after WeChat's ok the page says %q", text)
		}
	})

	t.Run("wechat-jsapi elsewhere shows the parameters", func(t *testing.T) {
		payWith(t, tab, shop.URL, "", client.FlowWeChatJSAPI, "o_buyer_openid", "#pay-params")
		if got := pageText(t, tab, "#pay-params"); !sameJSON(t, got, jsapiParams) {
			t.Errorf("parameters shown = %s, want %s", got, jsapiParams)
		}
	})

	t.Run("wechat-miniapp inside the mini-program calls wx.requestPayment", func(t *testing.T) {
		bridge := `window.payCalls = []; window.wx = {requestPayment: function (o) {
			window.payCalls.push({timeStamp: o.timeStamp, nonceStr: o.nonceStr, package: o['package'], signType: o.signType, paySign: o.paySign});
			o.success({errMsg: 'requestPayment:ok'}); }};`
		payWith(t, tab, shop.URL, bridge, client.FlowWeChatMiniApp, "o_buyer_openid", "#status")
		calls, err := chromedp.Run(tab, chromedp.Evaluate[[]json.RawMessage](`window.payCalls`))
		if err != nil {
			t.Fatal(err)
		}
		var want struct {
			RequestPayment json.RawMessage `json:"request_payment"`
		}
		_ = json.Unmarshal([]byte(miniappParams), &want)
		if len(calls) != 1 || !sameJSON(t, string(calls[0]), string(want.RequestPayment)) {
			t.Errorf("wx.requestPayment calls = %s, want one with %s", calls, want.RequestPayment)
		}
	})

	t.Run("wechat-miniapp elsewhere shows the launch information", func(t *testing.T) {
		payWith(t, tab, shop.URL, "", client.FlowWeChatMiniApp, "o_buyer_openid", "#launch-path")
		if got := pageText(t, tab, "#launch-username"); got != "gh_0sandbox0001" {
			t.Errorf("launch username = %q", got)
		}
		if got := pageText(t, tab, "#launch-path"); got != "pages/pay/index?payment_id=pay_demo1&out_trade_no=DEMO-1" {
			t.Errorf("launch path = %q", got)
		}
	})
}
