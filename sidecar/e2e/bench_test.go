package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// benchSidecar starts a sandbox and a sidecar for a benchmark and places
// one payment, so that the plugin and the connections are warm. Callers
// start their timer after it (b.Loop does on its first call).
func benchSidecar(b *testing.B) (*sandboxtest.Instance, *sidecar) {
	b.Helper()
	sb := sandboxtest.Start(b)
	// Reverse queries held off (the first would come an hour after an
	// order), so that they do not compete with what the benchmark
	// measures.
	e, api, notify, admin := sidecarEnv(b, sb.URL, b.TempDir(), "PAYSIDECAR_LOG__LEVEL=warn",
		"PAYSIDECAR_REQUERY__SCHEDULE=1h", "PAYSIDECAR_REQUERY__INTERVAL=1s")
	sc := startSidecar(b, e, api, notify, admin)
	if _, err := sc.Client.CreatePayment(context.Background(), benchOrder()); err != nil {
		b.Fatal(err)
	}
	return sb, sc
}

var benchSeq atomic.Int64

func benchOrder() client.CreatePaymentRequest {
	return client.CreatePaymentRequest{
		Flow: client.FlowAlipayNative, OutTradeNo: fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), benchSeq.Add(1)),
		AmountFen: 1, Description: "bench",
	}
}

// directJSPay places the A_NATIVE order of benchOrder straight in the
// sandbox with c, signed and verified by nkp.Client.
func directJSPay(b *testing.B, sb *sandboxtest.Instance, c *nkp.Client) {
	now := time.Now()
	resp, err := c.JSPay(context.Background(), nkp.JSPayRequest{
		ReqDate: nkp.ReqDate(now), ReqSeqID: nkp.NewReqSeqID(now), HuifuID: sb.HuifuID, GoodsDesc: "bench",
		TradeType: upstream.TradeAlipayNative, TransAmt: 1, NotifyURL: "http://127.0.0.1:8001/notify",
	})
	if err != nil || !resp.Accepted() {
		b.Fatalf("jspay: %v %+v", err, resp.Result)
	}
}

// BenchmarkBaselineDirectJSPay is the baseline of BenchmarkCreatePayment:
// the same A_NATIVE order signed and sent straight to the sandbox with
// nkp.Client, without the sidecar's API, plugin call and store.
func BenchmarkBaselineDirectJSPay(b *testing.B) {
	sb := sandboxtest.Start(b)
	c := sb.NKPClient()
	directJSPay(b, sb, c) // the connection, outside the timer
	for b.Loop() {
		directJSPay(b, sb, c)
	}
}

// BenchmarkCreatePayment creates Alipay payments one at a time through
// the sidecar's API: validation, plugin calls, SQLite writes and the
// signed upstream call; the sidecar starts before the timer. After each
// create, with the timer stopped, it places the same order straight in the
// same sandbox (BenchmarkBaselineDirectJSPay's work), so that the
// baseline runs interleaved, under the same load of a shared machine: it
// reports that as direct-ns/op and the ratio as x-direct. It also reports
// the resident memory of the sidecar and of its plugin processes.
func BenchmarkCreatePayment(b *testing.B) {
	sb, sc := benchSidecar(b)
	c := sb.NKPClient()
	directJSPay(b, sb, c)
	ctx := context.Background()
	var direct time.Duration
	for b.Loop() {
		if _, err := sc.Client.CreatePayment(ctx, benchOrder()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		began := time.Now()
		directJSPay(b, sb, c)
		direct += time.Since(began)
		b.StartTimer()
	}
	perOp := float64(direct.Nanoseconds()) / float64(b.N)
	b.ReportMetric(perOp, "direct-ns/op")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/perOp, "x-direct")
	reportRSS(b, sc)
}

// BenchmarkCreatePaymentParallel is BenchmarkCreatePayment from several
// application threads at once (4 × GOMAXPROCS); the sidecar starts, once,
// before the timer.
func BenchmarkCreatePaymentParallel(b *testing.B) {
	_, sc := benchSidecar(b)
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := sc.Client.CreatePayment(context.Background(), benchOrder()); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkNotifyIngress posts signed payment notifications to the
// sidecar's ingress: verify, deduplicate, store the result and its event,
// acknowledge. The sidecar starts once, and the orders notified about are
// placed, with the timer stopped.
func BenchmarkNotifyIngress(b *testing.B) {
	sb, sc := benchSidecar(b)
	ctx := context.Background()
	forms := func(n int) []url.Values {
		out := make([]url.Values, 0, n)
		for range n {
			p, err := sc.Client.CreatePayment(ctx, benchOrder())
			if err != nil {
				b.Fatal(err)
			}
			n, err := nkp.SignNotification(sb.Keys.Upstream.Private, nkp.CodeAccepted, "ok", map[string]any{
				"resp_code": nkp.CodeAccepted, "resp_desc": "ok", "huifu_id": p.MerchantID, "req_seq_id": p.ReqSeqID,
				"req_date": p.ReqDate, "nkp_seq_id": p.NkpSeqID, "trans_type": upstream.TradeAlipayNative, "trans_amt": "0.01",
				"trans_stat": nkp.StatSuccess, "end_time": nkp.Timestamp(time.Now()), "notify_type": nkp.NotifyTypeChannel,
			})
			if err != nil {
				b.Fatal(err)
			}
			out = append(out, n.Form())
		}
		return out
	}
	postForms(b, sc.Notify, forms)
}

// BenchmarkBaselineNotifyVerifyOnly is the baseline of
// BenchmarkNotifyIngress: a receiver that only verifies the signature and
// acknowledges, storing nothing.
func BenchmarkBaselineNotifyVerifyOnly(b *testing.B) {
	sb := sandboxtest.Start(b)
	pub := &sb.Keys.Upstream.Private.PublicKey
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		n, err := nkp.NotificationFromForm(r.PostForm)
		if err == nil {
			err = n.Verify(pub)
		}
		if err != nil {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		_, _ = w.Write([]byte("RECV_ORD_ID_x"))
	}))
	b.Cleanup(srv.Close)
	seq := 0
	forms := func(n int) []url.Values {
		out := make([]url.Values, 0, n)
		for range n {
			seq++
			sn, err := nkp.SignNotification(sb.Keys.Upstream.Private, nkp.CodeAccepted, "ok", map[string]any{
				"req_seq_id": strconv.Itoa(seq), "trans_stat": nkp.StatSuccess, "trans_amt": "0.01",
			})
			if err != nil {
				b.Fatal(err)
			}
			out = append(out, sn.Form())
		}
		return out
	}
	postForms(b, srv.URL, forms)
}

// postForms posts notification forms to target one at a time in b.Loop,
// timing only the posts: prepare makes the next n forms with the timer
// stopped, so that the sidecar starts and the orders are placed once,
// outside the measurement.
func postForms(b *testing.B, target string, prepare func(n int) []url.Values) {
	hc := &http.Client{Timeout: 10 * time.Second}
	var forms []url.Values
	for b.Loop() {
		if len(forms) == 0 {
			b.StopTimer()
			forms = prepare(100)
			b.StartTimer()
		}
		resp, err := hc.PostForm(target, forms[0])
		forms = forms[1:]
		if err != nil {
			b.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("ingress answered %d", resp.StatusCode)
		}
	}
}

// reportRSS reports the resident memory of the sidecar and its plugins.
func reportRSS(b *testing.B, sc *sidecar) {
	host := rssMiB(sc.cmd.Process.Pid)
	plugins := 0.0
	for _, name := range []string{"wechat-jsapi", "wechat-miniapp", "alipay-native"} {
		plugins += rssMiB(sc.pluginPID(name))
	}
	b.ReportMetric(host, "host-RSS-MiB")
	b.ReportMetric(plugins, "plugins-RSS-MiB")
}

func rssMiB(pid int) float64 {
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
