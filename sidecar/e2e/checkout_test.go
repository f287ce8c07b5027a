package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// miniProgramBackend is the merchant's back end of the paying page in the
// mini-program: it receives what the page sends with wx.request (the
// launch query's checkout and the wx.login code) and pays the checkout
// through the sidecar, answering the payment (pay_params.request_payment
// is what wx.requestPayment takes). It also serves a shop page, as a
// phone's browser shows it, with the checkout's links.
type miniProgramBackend struct {
	srv     *httptest.Server
	sidecar string
	sandbox string

	mu    sync.Mutex
	pays  []int // the sidecar's status of each pay
	links map[string]client.CheckoutLinks
}

var shopPage = template.Must(template.New("shop").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title></head><body>
<p>Order {{.ID}}</p>
<a id="open-scheme" href="{{.Sandbox}}/wechat/open?link={{.Links.URLScheme}}">Pay in WeChat</a>
<a id="open-link" href="{{.Sandbox}}/wechat/open?link={{.Links.URLLink}}">Pay in WeChat (link)</a>
</body></html>`))

func newMiniProgramBackend(t *testing.T, sidecarAPI, sandboxURL string) *miniProgramBackend {
	b := &miniProgramBackend{sidecar: sidecarAPI, sandbox: sandboxURL, links: map[string]client.CheckoutLinks{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /pay", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Checkout string `json:"checkout"`
			Code     string `json:"code"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Checkout == "" {
			http.Error(w, "want checkout and code", http.StatusBadRequest)
			return
		}
		body, _ := json.Marshal(client.PayCheckoutRequest{Code: in.Code})
		resp, err := http.Post(b.sidecar+"/v1/checkouts/"+url.PathEscape(in.Checkout)+"/pay", "application/json", bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer func() { _ = resp.Body.Close() }()
		out, _ := io.ReadAll(resp.Body)
		b.mu.Lock()
		b.pays = append(b.pays, resp.StatusCode)
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		status := resp.StatusCode
		if status == http.StatusCreated {
			status = http.StatusOK // what the paying page expects of its back end
		}
		w.WriteHeader(status)
		_, _ = w.Write(out)
	})
	mux.HandleFunc("GET /shop/{id}", func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		links, ok := b.links[r.PathValue("id")]
		b.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		_ = shopPage.Execute(w, struct {
			ID, Sandbox string
			Links       client.CheckoutLinks
		}{r.PathValue("id"), b.sandbox, links})
	})
	b.srv = httptest.NewServer(mux)
	t.Cleanup(b.srv.Close)
	return b
}

func (b *miniProgramBackend) show(c client.Checkout) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.links[c.ID] = c.Links
	return b.srv.URL + "/shop/" + c.ID
}

// waitEvent waits for an event of type typ about the payment.
func waitEvent(t *testing.T, sink *webhookSink, typ, paymentID string) client.Event {
	t.Helper()
	var ev client.Event
	waitFor(t, 30*time.Second, typ+" of "+paymentID, func() (bool, string) {
		for _, r := range sink.received() {
			if r.Event.Type == typ && r.Event.Data.Payment != nil && r.Event.Data.Payment.ID == paymentID {
				ev = r.Event
				return true, ""
			}
		}
		return false, "not yet"
	})
	return ev
}

func apiCode(err error) string {
	var ae *client.APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// TestCheckoutFromBrowserToMiniProgram is the journey of a buyer in a
// phone's own browser: the shop creates a checkout before it knows the
// buyer, its page opens WeChat with the URL Scheme (and, for a second
// order, the URL Link), the stand-in mini-program logs in and has the
// merchant's back end pay the checkout with the login code, the sidecar
// places a T_MINIAPP order and the buyer pays on the pay sheet; the
// notification makes it payment.succeeded. WeChat's access token expires
// between the two checkouts; a checkout cannot be paid twice, not even by
// concurrent attempts.
func TestCheckoutFromBrowserToMiniProgram(t *testing.T) {
	sb := sandboxtest.Start(t)
	sink := newWebhookSink(t)
	env, api, notify, admin := sidecarEnv(t, sb.URL, t.TempDir(), sink.env()...)
	sc := startSidecar(t, env, api, notify, admin)
	backend := newMiniProgramBackend(t, sc.API, sb.URL)
	backendURL := backend.srv.URL + "/pay"
	if _, err := sb.Control.SetWeChatApp(ctxTimeout(t, 10*time.Second), sandbox.WeChatAppRequest{AppID: sandbox.DevMiniAppID, BackendURL: &backendURL}); err != nil {
		t.Fatal(err)
	}

	create := func(t *testing.T, outTradeNo string, fen int64) client.Checkout {
		t.Helper()
		c, err := sc.Client.CreateCheckout(ctxTimeout(t, 20*time.Second), client.CreateCheckoutRequest{
			Flow: "wechat-miniapp", OutTradeNo: outTradeNo, AmountFen: fen, Description: "tea from the browser", ExpiresInSeconds: 900,
		})
		if err != nil {
			t.Fatalf("CreateCheckout: %v", err)
		}
		if c.Status != "open" || c.Query != "checkout="+c.ID || c.PaymentID != "" ||
			!strings.HasPrefix(c.Links.URLScheme, "weixin://dl/business/?t=") || !strings.HasPrefix(c.Links.URLLink, "https://wxaurl.cn/") ||
			!strings.Contains(c.Links.PlainScheme, "query=checkout%3D"+c.ID) ||
			c.Links.App == nil || c.Links.App.UserName != sandbox.DevMiniAppOriginalID || !strings.HasSuffix(c.Links.App.Path, "?checkout="+c.ID) ||
			c.Links.URLSchemeExpiresAt == nil || !c.Links.URLSchemeExpiresAt.Equal(c.ExpiresAt) {
			t.Fatalf("checkout = %+v", c)
		}
		return c
	}

	// payInBrowser follows the link with the id sel from the shop page to
	// the paid pay sheet and answers the payment the checkout became.
	payInBrowser := func(t *testing.T, c client.Checkout, sel string) client.Payment {
		t.Helper()
		tab := sandboxtest.Browser(t, 90*time.Second)
		steps := func(actions ...chromedp.Action[chromedp.Void]) {
			t.Helper()
			ctx, cancel := context.WithTimeout(tab, 30*time.Second)
			defer cancel()
			if err := chromedp.Do(ctx, actions...); err != nil {
				page, _ := chromedp.Run(tab, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
				t.Fatalf("%v; the page:\n%s", err, page)
			}
		}
		// follow goes where the link sel of the page leads, as a tap on it
		// does, and waits for that page to load (a click would leave the
		// next step racing the navigation).
		follow := func(sel string) {
			t.Helper()
			href, err := chromedp.Run(tab, chromedp.AttributeValue(chromedp.CSS(sel), "href"))
			if err != nil || href.Value == "" {
				t.Fatalf("link %s: %+v, %v", sel, href, err)
			}
			steps(chromedp.Navigate(href.Value))
		}
		steps(chromedp.Navigate(backend.show(c)), chromedp.WaitVisible(chromedp.CSS(sel)))
		follow(sel)
		steps(chromedp.WaitVisible(chromedp.CSS("#open-miniprogram")))
		query, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("#open-query")))
		if err != nil || query != "checkout="+c.ID {
			t.Fatalf("WeChat opens the mini-program with query %q, %v", query, err)
		}
		follow("#open-miniprogram")
		steps(
			chromedp.WaitEnabled(chromedp.CSS("#mp-start")),
			chromedp.Click(chromedp.CSS("#mp-start")),
			chromedp.WaitVisible(chromedp.CSS("#sandbox-wxpay-pay")),
			chromedp.Click(chromedp.CSS("#sandbox-wxpay-pay")),
			chromedp.WaitVisible(chromedp.CSS(`#mp-result[data-result="ok"]`)),
		)
		got, err := sc.Client.GetCheckout(ctxTimeout(t, 10*time.Second), c.ID)
		if err != nil || got.Status != "used" || got.PaymentID == "" || got.Payment == nil {
			t.Fatalf("after paying, the checkout is %+v, %v", got, err)
		}
		return *got.Payment
	}

	orderOf := func(t *testing.T, p client.Payment) sandbox.Order {
		t.Helper()
		os, err := sb.Control.Orders(ctxTimeout(t, 10*time.Second), sandbox.Filter{ReqDate: p.ReqDate, ReqSeqID: p.ReqSeqID})
		if err != nil || len(os) != 1 {
			t.Fatalf("sandbox orders of %s: %+v, %v", p.ID, os, err)
		}
		return os[0]
	}
	buyer := sandbox.OpenID(sandbox.DevMiniAppID, sandbox.DefaultWeChatUser)

	first := create(t, "browser-1", 1888)
	p1 := payInBrowser(t, first, "#open-scheme")
	ev := waitEvent(t, sink, "payment.succeeded", p1.ID)
	if ev.Data.Payment.OutTradeNo != "browser-1" || ev.Data.Payment.AmountFen != 1888 || ev.Data.Payment.TradeType != upstream.TradeWeChatMiniApp ||
		ev.Data.Payment.Metadata["checkout_id"] != first.ID {
		t.Errorf("payment.succeeded carries %+v", ev.Data.Payment)
	}
	if o := orderOf(t, p1); o.TransStat != nkp.StatSuccess || o.TradeType != upstream.TradeWeChatMiniApp || o.AppID != sandbox.DevMiniAppID || o.OpenID != buyer {
		t.Errorf("the sandbox's order: %+v", o)
	}

	// WeChat ends the plugin's access token; the next checkout's links
	// still come, with a new token, and open.
	if n, err := sb.Control.ExpireWeChatTokens(ctxTimeout(t, 10*time.Second), sandbox.ExpireTokensRequest{AppID: sandbox.DevMiniAppID}); err != nil || n == 0 {
		t.Fatalf("ExpireWeChatTokens: %d, %v", n, err)
	}
	second := create(t, "browser-2", 990)
	p2 := payInBrowser(t, second, "#open-link")
	waitEvent(t, sink, "payment.succeeded", p2.ID)
	backend.mu.Lock()
	pays := slices.Clone(backend.pays)
	backend.mu.Unlock()
	if !slices.Equal(pays, []int{http.StatusCreated, http.StatusCreated}) {
		t.Errorf("the sidecar answered the mini-program's pays with %v, want one 201 each", pays)
	}

	// A second payment of a paid checkout is refused, and nothing reaches
	// the upstream.
	before, err := sb.Control.Orders(ctxTimeout(t, 10*time.Second), sandbox.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	code := sb.MintWeChatCode(t, sandbox.DevMiniAppID, "")
	_, err = sc.Client.PayCheckout(ctxTimeout(t, 20*time.Second), first.ID, client.PayCheckoutRequest{Code: code.Code})
	if apiCode(err) != "checkout_paid" {
		t.Errorf("second pay: %v, want checkout_paid", err)
	}

	// Concurrent pays of one checkout: exactly one places an order.
	third := create(t, "browser-3", 300)
	const n = 4
	codes := make([]string, n)
	for i := range codes {
		codes[i] = sb.MintWeChatCode(t, sandbox.DevMiniAppID, "").Code
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = sc.Client.PayCheckout(ctxTimeout(t, 20*time.Second), third.ID, client.PayCheckoutRequest{Code: codes[i]})
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case apiCode(err) != "checkout_paid":
			t.Errorf("concurrent pay: %v", err)
		}
	}
	after, err := sb.Control.Orders(ctxTimeout(t, 10*time.Second), sandbox.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if ok != 1 || len(after) != len(before)+1 {
		t.Errorf("%d of %d concurrent pays succeeded and the upstream got %d orders, want 1 and 1", ok, n, len(after)-len(before))
	}
}

// TestCheckoutRefusals checks the checkout's own refusals through the
// sidecar and its real plugins: an unknown checkout, a bad code (which
// leaves the checkout open for another try), and a flow that cannot be
// opened from outside its app. (Expiry is tested in package payments,
// whose clock a test moves.)
func TestCheckoutRefusals(t *testing.T) {
	sb := sandboxtest.Start(t)
	env, api, notify, admin := sidecarEnv(t, sb.URL, t.TempDir())
	sc := startSidecar(t, env, api, notify, admin)
	ctx := ctxTimeout(t, 60*time.Second)

	_, err := sc.Client.CreateCheckout(ctx, client.CreateCheckoutRequest{Flow: "alipay-native", OutTradeNo: "r-0", AmountFen: 1, Description: "x"})
	if apiCode(err) != "unsupported" {
		t.Errorf("checkout of a flow without links: %v", err)
	}
	c, err := sc.Client.CreateCheckout(ctx, client.CreateCheckoutRequest{OutTradeNo: "r-1", AmountFen: 100, Description: "x", ExpiresInSeconds: 60})
	if err != nil || c.Flow != "wechat-miniapp" {
		t.Fatalf("CreateCheckout without a flow: %+v, %v", c, err)
	}
	_, err = sc.Client.CreateCheckout(ctx, client.CreateCheckoutRequest{OutTradeNo: "r-1", AmountFen: 100, Description: "x"})
	if apiCode(err) != "out_trade_no_conflict" {
		t.Errorf("a second checkout with the same out_trade_no: %v", err)
	}
	_, err = sc.Client.PayCheckout(ctx, c.ID, client.PayCheckoutRequest{Code: "not-a-code"})
	if apiCode(err) != "code_invalid" {
		t.Errorf("pay with a bad code: %v", err)
	}
	_, err = sc.Client.PayCheckout(ctx, c.ID, client.PayCheckoutRequest{})
	if apiCode(err) != "missing_field" {
		t.Errorf("pay without a code: %v", err)
	}
	if got, err := sc.Client.GetCheckout(ctx, c.ID); err != nil || got.Status != "open" {
		t.Errorf("after refused pays the checkout is %+v, %v", got, err)
	}
	_, err = sc.Client.PayCheckout(ctx, "chk_unknown", client.PayCheckoutRequest{Code: "c"})
	if apiCode(err) != "not_found" {
		t.Errorf("pay of an unknown checkout: %v", err)
	}
	orders, err := sb.Control.Orders(ctx, sandbox.Filter{})
	if err != nil || len(orders) != 0 {
		t.Errorf("refused checkouts reached the upstream: %+v, %v", orders, err)
	}
}

// TestServiceProviderMerchants runs a service provider's sidecar for two
// merchants: the default one with the flow's mini-program, and a second
// with a mini-program of its own (app id, secret and original id under
// merchants). Each checkout opens its merchant's mini-program, each order
// reaches the upstream with its merchant's huifu_id and sub_appid (the
// sandbox binds each merchant to its own app only, so a crossed app
// would be refused), both are paid; a merchant the sidecar does not
// list is refused before anything is sent.
func TestServiceProviderMerchants(t *testing.T) {
	const (
		appB, secretB, ghB = "wxsandbox0000000b", "merchant-b-mini-program-secret", "gh_0sandbox000b"
		merchantB          = "6666000100000002"
	)
	sb := sandboxtest.Start(t, sandboxtest.WithConfig(func(c *sandbox.Config) {
		c.WeChatApps = map[string]string{sandbox.DevWeChatAppID: sandbox.DevWeChatSecret, sandbox.DevMiniAppID: sandbox.DevMiniAppSecret, appB: secretB}
		c.WeChatOriginalIDs = map[string]string{sandbox.DevMiniAppOriginalID: sandbox.DevMiniAppID, ghB: appB}
	}))
	ctx := ctxTimeout(t, 90*time.Second)
	for huifu, app := range map[string]string{sb.HuifuID: sandbox.DevMiniAppID, merchantB: appB} {
		if _, err := sb.Control.SetMerchant(ctx, sandbox.MerchantRequest{HuifuID: huifu, SubAppIDs: &[]string{app}}); err != nil {
			t.Fatal(err)
		}
	}
	secretFile := filepath.Join(t.TempDir(), "secret-b")
	if err := os.WriteFile(secretFile, []byte(secretB), 0o600); err != nil {
		t.Fatal(err)
	}
	sink := newWebhookSink(t)
	env, api, notify, admin := sidecarEnv(t, sb.URL, t.TempDir(), append(sink.env(),
		"PAYSIDECAR_MERCHANTS__"+merchantB+"__FLOWS__WECHAT_MINIAPP__SETTINGS__APP_ID="+appB,
		"PAYSIDECAR_MERCHANTS__"+merchantB+"__FLOWS__WECHAT_MINIAPP__SETTINGS__ORIGINAL_ID="+ghB,
		"PAYSIDECAR_MERCHANTS__"+merchantB+"__FLOWS__WECHAT_MINIAPP__SETTINGS_FILES__APP_SECRET="+secretFile,
	)...)
	sc := startSidecar(t, env, api, notify, admin)

	for _, m := range []struct{ huifu, app, gh string }{{sb.HuifuID, sandbox.DevMiniAppID, sandbox.DevMiniAppOriginalID}, {merchantB, appB, ghB}} {
		c, err := sc.Client.CreateCheckout(ctx, client.CreateCheckoutRequest{
			MerchantID: m.huifu, OutTradeNo: "sp-" + m.huifu, AmountFen: 500, Description: "tea for " + m.huifu,
		})
		if err != nil {
			t.Fatalf("merchant %s: CreateCheckout: %v", m.huifu, err)
		}
		if c.MerchantID != m.huifu || c.Links.App == nil || c.Links.App.UserName != m.gh || !strings.Contains(c.Links.PlainScheme, "appid="+m.app) {
			t.Fatalf("merchant %s: checkout %+v", m.huifu, c)
		}
		l, err := sb.Control.OpenWeChatLink(ctx, c.Links.URLLink)
		if err != nil || l.AppID != m.app || l.Query != c.Query {
			t.Fatalf("merchant %s: its URL Link opens %+v, %v", m.huifu, l, err)
		}
		code := sb.MintWeChatCode(t, m.app, "buyer-"+m.huifu)
		p, err := sc.Client.PayCheckout(ctx, c.ID, client.PayCheckoutRequest{Code: code.Code})
		if err != nil {
			t.Fatalf("merchant %s: PayCheckout: %v", m.huifu, err)
		}
		os, err := sb.Control.Orders(ctx, sandbox.Filter{ReqDate: p.ReqDate, ReqSeqID: p.ReqSeqID})
		if err != nil || len(os) != 1 {
			t.Fatalf("merchant %s: sandbox orders %+v, %v", m.huifu, os, err)
		}
		if o := os[0]; o.HuifuID != m.huifu || o.AppID != m.app || o.OpenID != sandbox.OpenID(m.app, "buyer-"+m.huifu) || o.TradeType != upstream.TradeWeChatMiniApp {
			t.Fatalf("merchant %s: the upstream received %+v", m.huifu, o)
		}
		if _, err := sb.Control.SettlePayment(ctx, sandbox.SettleRequest{HuifuID: m.huifu, ReqDate: p.ReqDate, ReqSeqID: p.ReqSeqID, Result: "paid"}); err != nil {
			t.Fatalf("merchant %s: settle: %v", m.huifu, err)
		}
		ev := waitEvent(t, sink, "payment.succeeded", p.ID)
		if ev.Data.Payment.MerchantID != m.huifu {
			t.Errorf("merchant %s: payment.succeeded for merchant %s", m.huifu, ev.Data.Payment.MerchantID)
		}
	}

	before, err := sb.Control.Orders(ctx, sandbox.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = sc.Client.CreateCheckout(ctx, client.CreateCheckoutRequest{MerchantID: "6666000100000009", OutTradeNo: "sp-x", AmountFen: 1, Description: "x"})
	if apiCode(err) != "unknown_merchant" {
		t.Errorf("checkout for an unlisted merchant: %v", err)
	}
	_, err = sc.Client.CreatePayment(ctx, client.CreatePaymentRequest{Flow: "wechat-miniapp", MerchantID: "6666000100000009", OutTradeNo: "sp-y", AmountFen: 1,
		Description: "x", Buyer: &client.Buyer{Code: sb.MintWeChatCode(t, sandbox.DevMiniAppID, "").Code}})
	if apiCode(err) != "unknown_merchant" {
		t.Errorf("payment for an unlisted merchant: %v", err)
	}
	after, err := sb.Control.Orders(ctx, sandbox.Filter{})
	if err != nil || len(after) != len(before) {
		t.Errorf("refused requests reached the upstream: %d orders before, %d after (%v)", len(before), len(after), err)
	}
}
