package sandbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// miniBackend is a merchant's back end for the stand-in mini-program: it
// exchanges the wx.login code, places a T_MINIAPP order for the checkout
// named in the launch query and answers wx.requestPayment's parameters.
// Checkout "expired" is refused as an expired checkout would be.
func miniBackend(t *testing.T, inst *sandboxtest.Instance) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Code     string            `json:"code"`
			Checkout string            `json:"checkout"`
			Query    map[string]string `json:"query"`
			Scene    int               `json:"scene"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		checkout := in.Query["checkout"]
		if in.Checkout != checkout || in.Scene == 0 {
			http.Error(w, fmt.Sprintf("the launch query is not at the top level: %+v", in), http.StatusBadRequest)
			return
		}
		if checkout == "expired" {
			w.WriteHeader(http.StatusGone)
			_, _ = fmt.Fprint(w, `{"error":{"code":"checkout_expired","message":"the checkout expired"}}`)
			return
		}
		resp, err := inst.HTTP.Get(inst.URL + "/sns/jscode2session?" + url.Values{"appid": {sandbox.DevMiniAppID},
			"secret": {sandbox.DevMiniAppSecret}, "js_code": {in.Code}, "grant_type": {"authorization_code"}}.Encode())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		var session struct {
			OpenID string `json:"openid"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&session)
		_ = resp.Body.Close()
		out, err := inst.NKPClient().JSPay(r.Context(), nkp.JSPayRequest{ReqDate: day0, ReqSeqID: "MP-" + checkout, HuifuID: sandbox.DevHuifuID,
			GoodsDesc: "mini-program goods", TradeType: upstream.TradeWeChatMiniApp, TransAmt: 321,
			WxData: `{"sub_appid":"` + sandbox.DevMiniAppID + `","sub_openid":"` + session.OpenID + `"}`})
		if err != nil || out.PayInfo == "" {
			http.Error(w, fmt.Sprintf("order: %v %+v", err, out), http.StatusBadGateway)
			return
		}
		var pi upstream.PayInfo
		_ = json.Unmarshal([]byte(out.PayInfo), &pi)
		writeBody, _ := json.Marshal(map[string]any{"request_payment": map[string]string{
			"timeStamp": pi.TimeStamp, "nonceStr": pi.NonceStr, "package": pi.Package, "signType": pi.SignType, "paySign": pi.PaySign}})
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(writeBody)
	})
}

// clickNow clicks the element sel names in the page's own script. A
// chromedp.Click finds the node first and clicks it in a second step; a
// page still loading may replace its document between the two, and the
// click then fails with "Could not find node with given id".
func clickNow(sel string) chromedp.Action[chromedp.Void] {
	click := chromedp.Evaluate[bool](fmt.Sprintf("(document.querySelector(%q).click(), true)", sel))
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := click(ctx, t)
		return chromedp.Void{}, err
	}
}

func text(t *testing.T, tab context.Context, sel string) string {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("read %s: %v", sel, err)
	}
	return v
}

// TestStandInMiniProgramInChromium opens a URL Scheme and a URL Link on the
// sandbox's phone, follows them into the stand-in mini-program, logs in,
// asks the merchant's back end for the payment and pays (or cancels) on
// the pay sheet, all in headless Chromium.
func TestStandInMiniProgramInChromium(t *testing.T) {
	inst, _ := start(t)
	backend := newLoopback(t, miniBackend(t, inst))
	u := backend.URL + "/mp/pay"
	if _, err := inst.Control.SetWeChatApp(testCtx(t), sandbox.WeChatAppRequest{AppID: sandbox.DevMiniAppID, BackendURL: &u}); err != nil {
		t.Fatal(err)
	}
	tok := serverToken(t, inst, sandbox.DevMiniAppID, sandbox.DevMiniAppSecret).AccessToken
	tab := sandboxtest.Browser(t, 60*time.Second)

	launch := func(t *testing.T, link string) {
		t.Helper()
		err := chromedp.Do(tab,
			chromedp.Navigate(inst.URL+sandbox.PathWeChatOpen+"?link="+url.QueryEscape(link)),
			chromedp.WaitVisible(chromedp.CSS("#open-miniprogram")),
			clickNow("#open-miniprogram"),
			chromedp.WaitEnabled(chromedp.CSS("#mp-start")),
			clickNow("#mp-start"),
		)
		if err != nil {
			t.Fatalf("open %s: %v", link, err)
		}
	}
	orderOf := func(checkout string) sandbox.Order {
		os, err := inst.Control.Orders(testCtx(t), sandbox.Filter{ReqSeqID: "MP-" + checkout})
		if err != nil || len(os) != 1 {
			t.Fatalf("orders of %s: %+v, %v", checkout, os, err)
		}
		return os[0]
	}

	t.Run("URL Scheme, paid", func(t *testing.T) {
		s := scheme(t, inst, tok, `{"jump_wxa":{"path":"pages/pay/index","query":"checkout=ck1"}}`)
		launch(t, s.OpenLink)
		if err := chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS("#sandbox-wxpay-pay"))); err != nil {
			t.Fatal(err)
		}
		if q, sc := text(t, tab, "#mp-query"), text(t, tab, "#mp-scene"); q != "checkout=ck1" || sc != "1065" {
			t.Fatalf("the mini-program was launched with query %q, scene %q", q, sc)
		}
		if got := text(t, tab, "#sandbox-wxpay-order"); got != "mini-program goods ¥3.21" {
			t.Fatalf("the pay sheet shows %q", got)
		}
		if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS("#sandbox-wxpay-pay")), chromedp.WaitVisible(chromedp.CSS(`#mp-result[data-result="ok"]`))); err != nil {
			t.Fatalf("pay: %v (result %q)", err, text(t, tab, "#mp-result"))
		}
		if got := text(t, tab, "#mp-result"); !strings.Contains(got, "requestPayment:ok") || !strings.Contains(got, "not final") {
			t.Fatalf("result shown: %q", got)
		}
		o := orderOf("ck1")
		if o.TransStat != nkp.StatSuccess || o.OpenID != sandbox.OpenID(sandbox.DevMiniAppID, sandbox.DefaultWeChatUser) || o.TradeType != upstream.TradeWeChatMiniApp {
			t.Fatalf("order = %+v", o)
		}
	})

	t.Run("URL Link, cancelled", func(t *testing.T) {
		l := wxPost(t, inst, "/wxa/generate_urllink", url.Values{"access_token": {tok}}, `{"path":"pages/pay/index","query":"checkout=ck2"}`)
		launch(t, l.URLLink)
		err := chromedp.Do(tab,
			chromedp.WaitVisible(chromedp.CSS("#sandbox-wxpay-cancel")),
			chromedp.Click(chromedp.CSS("#sandbox-wxpay-cancel")),
			chromedp.WaitVisible(chromedp.CSS(`#mp-result[data-result="cancel"]`)),
		)
		if err != nil {
			t.Fatal(err)
		}
		if got := text(t, tab, "#mp-result"); got != "requestPayment:fail cancel" {
			t.Fatalf("result shown: %q", got)
		}
		if sc := text(t, tab, "#mp-scene"); sc != "1194" {
			t.Fatalf("scene %q, want 1194", sc)
		}
		if o := orderOf("ck2"); o.TransStat != nkp.StatProcessing {
			t.Fatalf("a cancelled payment changed the order: %+v", o)
		}
	})

	t.Run("the back end refuses", func(t *testing.T) {
		launch(t, "weixin://dl/business/?appid="+sandbox.DevMiniAppID+"&path=pages/pay/index&query="+url.QueryEscape("checkout=expired"))
		if err := chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS(`#mp-result[data-result="error"]`))); err != nil {
			t.Fatal(err)
		}
		if got := text(t, tab, "#mp-result"); !strings.Contains(got, "HTTP 410") || !strings.Contains(got, "checkout_expired") {
			t.Fatalf("result shown: %q", got)
		}
	})
}

// TestStandInBridgeInChromium loads a merchant's page from another origin
// in a browser that says it is WeChat's, with the sandbox's stand-in
// WeixinJSBridge, which arrives only after the page has loaded. The page
// waits for WeixinJSBridgeReady and calls getBrandWCPayRequest; the buyer
// pays, cancels, or the parameters are incomplete.
func TestStandInBridgeInChromium(t *testing.T) {
	inst, _ := start(t)
	var pages = map[string]string{}
	for _, seq := range []string{"BR1", "BR2"} {
		pi := placeOrder(t, inst, order(seq))["pay_info"].(string)
		pages[seq] = pi
	}
	pages["BR3"] = `{"appId":"wx1","timeStamp":"1"}`
	shop := newLoopback(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		params := pages[r.URL.Query().Get("order")]
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprintf(w, `<!doctype html><html><body>
<script src="%s?delay_ms=300"></script>
<button id="go">Pay</button><p id="out"></p>
<script>
var params = %s;
document.getElementById('go').addEventListener('click', function () {
  function run() {
    WeixinJSBridge.invoke('getBrandWCPayRequest', params, function (res) {
      var out = document.getElementById('out');
      out.textContent = res.err_msg;
      out.dataset.done = '1';
    });
  }
  if (typeof WeixinJSBridge === 'undefined') document.addEventListener('WeixinJSBridgeReady', run, false); else run();
});
</script></body></html>`, inst.URL+sandbox.PathWeChatBridge, params)
	}))
	tab := sandboxtest.Browser(t, 60*time.Second, sandboxtest.WithUserAgent(sandboxtest.WeChatUserAgent))
	for _, tc := range []struct {
		order, button, want, state string
	}{
		{"BR1", "#sandbox-wxpay-pay", "get_brand_wcpay_request:ok", nkp.StatSuccess},
		{"BR2", "#sandbox-wxpay-cancel", "get_brand_wcpay_request:cancel", nkp.StatProcessing},
		{"BR3", "", "get_brand_wcpay_request:fail", ""},
	} {
		t.Run(tc.order, func(t *testing.T) {
			steps := []chromedp.Action[chromedp.Void]{
				chromedp.Navigate(shop.URL + "/?order=" + tc.order),
				chromedp.WaitVisible(chromedp.CSS("#go")),
				chromedp.Click(chromedp.CSS("#go")),
			}
			if tc.button != "" {
				steps = append(steps, chromedp.WaitVisible(chromedp.CSS(tc.button)), chromedp.Click(chromedp.CSS(tc.button)))
			}
			steps = append(steps, chromedp.WaitVisible(chromedp.CSS(`#out[data-done="1"]`)))
			if err := chromedp.Do(tab, steps...); err != nil {
				t.Fatal(err)
			}
			if got := text(t, tab, "#out"); got != tc.want {
				t.Fatalf("err_msg = %q, want %q", got, tc.want)
			}
			if tc.state == "" {
				return
			}
			os, err := inst.Control.Orders(testCtx(t), sandbox.Filter{ReqSeqID: tc.order})
			if err != nil || len(os) != 1 || os[0].TransStat != tc.state {
				t.Fatalf("order = %+v, %v; want trans_stat %s", os, err, tc.state)
			}
		})
	}
}
