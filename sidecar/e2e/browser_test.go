package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// startDemoShop runs the demo shop (examples/demo-app) on addr against the
// sidecar's app API, verifying webhooks with testWebhookSecret and loading
// bridge, the sandbox's stand-in WeixinJSBridge, into its page. It stops
// when the test ends.
func startDemoShop(t *testing.T, addr, sidecarAPI, bridge string) string {
	t.Helper()
	logs := &lockedBuffer{}
	cmd := exec.Command(filepath.Join(binDir, "demo-app"))
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"DEMO_LISTEN=" + addr,
		"DEMO_SIDECAR_URL=" + sidecarAPI,
		"DEMO_WEBHOOK_SECRET=" + testWebhookSecret,
		"DEMO_SANDBOX_WECHAT_BRIDGE=" + bridge,
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("demo shop logs:\n%s", tail(logs.String(), 30))
		}
	})
	url := "http://" + addr
	waitFor(t, 30*time.Second, "the demo shop", func() (bool, string) {
		select {
		case <-exited:
			t.Fatalf("the demo shop exited:\n%s", logs.String())
		default:
		}
		resp, err := http.Get(url + "/")
		if err != nil {
			return false, err.Error()
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return url
}

// TestDemoShopInChromium pays in headless Chromium through the demo shop,
// the real sidecar with its plugins, and the sandbox: a WeChat JSAPI
// payment in a browser that says it is WeChat's (sign-in through the
// sandbox's OAuth page, the front-end helper waiting for the sandbox's
// stand-in WeixinJSBridge, its pay sheet), and an Alipay payment on a
// desktop (the cashier page in another tab). Each page shows the order
// paid only when the sidecar's webhook has reached the shop.
func TestDemoShopInChromium(t *testing.T) {
	sb := sandboxtest.Start(t)
	shopAddr := freePort(t)
	env, api, notify, admin := sidecarEnv(t, sb.URL, t.TempDir(),
		"PAYSIDECAR_WEBHOOK__URL=http://"+shopAddr+"/webhook",
		"PAYSIDECAR_WEBHOOK__SECRET="+testWebhookSecret,
		"PAYSIDECAR_WEBHOOK__SCHEDULE=100ms,200ms,400ms,800ms",
		"PAYSIDECAR_WEBHOOK__TIMEOUT=2s",
	)
	sc := startSidecar(t, env, api, notify, admin)
	shop := startDemoShop(t, shopAddr, sc.API, sb.URL+sandbox.PathWeChatBridge+"?delay_ms=200")

	orderOf := func(t *testing.T, paymentID string) sandbox.Order {
		t.Helper()
		p, err := sc.Client.GetPayment(ctxTimeout(t, 10*time.Second), paymentID)
		if err != nil {
			t.Fatal(err)
		}
		os, err := sb.Control.Orders(ctxTimeout(t, 10*time.Second), sandbox.Filter{ReqDate: p.ReqDate, ReqSeqID: p.ReqSeqID})
		if err != nil || len(os) != 1 {
			t.Fatalf("sandbox orders of %s: %+v, %v", paymentID, os, err)
		}
		return os[0]
	}
	// dump says where the page is, for a failure message.
	dump := func(tab context.Context) string {
		v, err := chromedp.Run(tab, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
		if err != nil {
			return err.Error()
		}
		return v
	}
	// steps runs steps with a deadline of their own, so that the page can
	// still be read when they time out.
	steps := func(tab context.Context, actions ...chromedp.Action[chromedp.Void]) error {
		ctx, cancel := context.WithTimeout(tab, 20*time.Second)
		defer cancel()
		return chromedp.Do(ctx, actions...)
	}
	text := func(t *testing.T, tab context.Context, sel string) string {
		t.Helper()
		v, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return v
	}

	t.Run("wechat-jsapi", func(t *testing.T) {
		tab := sandboxtest.Browser(t, 90*time.Second, sandboxtest.WithUserAgent(sandboxtest.WeChatUserAgent))
		err := steps(tab,
			chromedp.Navigate(shop+"/"),
			chromedp.WaitVisible(chromedp.CSS("#pay")),
			chromedp.SetValue(chromedp.CSS("#flow"), "wechat-jsapi"),
			chromedp.Evaluate[chromedp.Void](`document.getElementById('flow').dispatchEvent(new Event('change'))`),
			chromedp.WaitVisible(chromedp.CSS("#wechat-login")),
			chromedp.Click(chromedp.CSS("#wechat-login")),
			// Back from the sandbox's OAuth page with a code.
			chromedp.WaitVisible(chromedp.CSS("#code-note")),
			chromedp.SetValue(chromedp.CSS("#amount"), "1234"),
			chromedp.Click(chromedp.CSS("#pay")),
			chromedp.WaitVisible(chromedp.CSS("#sandbox-wxpay-pay")),
		)
		if err != nil {
			t.Fatalf("up to the pay sheet: %v; the page:\n%s", err, dump(tab))
		}
		if got := text(t, tab, "#sandbox-wxpay-order"); got != "paysidecar demo order ¥12.34" {
			t.Fatalf("the pay sheet shows %q", got)
		}
		paymentID := text(t, tab, "#payment-id")
		if o := orderOf(t, paymentID); o.TransStat != nkp.StatProcessing || o.TradeType != upstream.TradeWeChatJSAPI ||
			o.OpenID != sandbox.OpenID(sandbox.DevWeChatAppID, sandbox.DefaultWeChatUser) {
			t.Fatalf("before paying, the order is %+v", o)
		}
		err = steps(tab,
			chromedp.Click(chromedp.CSS("#sandbox-wxpay-pay")),
			chromedp.WaitVisible(chromedp.CSS(`#action[data-pay-status="ok"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#status[data-status="paid"]`)),
		)
		if err != nil {
			t.Fatalf("pay: %v; the page:\n%s", err, dump(tab))
		}
		if o := orderOf(t, paymentID); o.TransStat != nkp.StatSuccess {
			t.Fatalf("the page says paid, the sandbox %+v", o)
		}
		recs, err := sb.Control.WeChatAuthorizations(ctxTimeout(t, 10*time.Second))
		if err != nil || len(recs) != 1 || recs[0].AppID != sandbox.DevWeChatAppID || !strings.HasPrefix(recs[0].RedirectURI, shop+"/") {
			t.Fatalf("OAuth visits = %+v, %v", recs, err)
		}
	})

	t.Run("alipay-native", func(t *testing.T) {
		tab := sandboxtest.Browser(t, 90*time.Second)
		err := steps(tab,
			chromedp.Navigate(shop+"/"),
			chromedp.WaitVisible(chromedp.CSS("#pay")),
			chromedp.SetValue(chromedp.CSS("#flow"), "alipay-native"),
			chromedp.SetValue(chromedp.CSS("#amount"), "250"),
			chromedp.Click(chromedp.CSS("#pay")),
			chromedp.WaitVisible(chromedp.CSS("#cashier")),
		)
		if err != nil {
			t.Fatalf("up to the cashier link: %v; the page:\n%s", err, dump(tab))
		}
		cashier, err := chromedp.Run(tab, chromedp.AttributeValue(chromedp.CSS("#cashier"), "href"))
		if err != nil || !strings.HasPrefix(cashier.Value, sb.URL+"/qr/") {
			t.Fatalf("cashier link = %+v, %v", cashier, err)
		}
		if link := text(t, tab, "#deeplink-text"); !strings.HasPrefix(link, "alipays://platformapi/startapp?saId=10000007&qrcode=") {
			t.Fatalf("deep link = %q", link)
		}
		// The buyer pays on the cashier page in another tab.
		other, cancel := chromedp.NewContext(tab)
		defer cancel()
		err = chromedp.Do(other,
			chromedp.Navigate(cashier.Value),
			chromedp.WaitVisible(chromedp.CSS("#pay")),
			chromedp.Click(chromedp.CSS("#pay")),
		)
		if err != nil {
			t.Fatal(err)
		}
		if err := steps(tab, chromedp.WaitVisible(chromedp.CSS(`#status[data-status="paid"]`))); err != nil {
			t.Fatalf("the shop's page never showed paid: %v; the page:\n%s", err, dump(tab))
		}
		if o := orderOf(t, text(t, tab, "#payment-id")); o.TransStat != nkp.StatSuccess || o.TradeType != upstream.TradeAlipayNative {
			t.Fatalf("the page says paid, the sandbox %+v", o)
		}
	})
}
