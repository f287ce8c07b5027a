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

// benchSidecar starts a sandbox and a sidecar for a benchmark.
func benchSidecar(b *testing.B) (*sandboxtest.Instance, *sidecar) {
	b.Helper()
	sb := sandboxtest.Start(b)
	// Production's reverse query schedule, so that queries of the orders
	// the benchmark makes do not compete with what it measures.
	e, api, notify, admin := sidecarEnv(b, sb.URL, b.TempDir(), "PAYSIDECAR_LOG__LEVEL=warn",
		"PAYSIDECAR_REQUERY__SCHEDULE=15s,30s,1m,2m,5m,10m", "PAYSIDECAR_REQUERY__INTERVAL=1s")
	return sb, startSidecar(b, e, api, notify, admin)
}

var benchSeq atomic.Int64

func benchOrder() client.CreatePaymentRequest {
	return client.CreatePaymentRequest{
		Flow: client.FlowAlipayNative, OutTradeNo: fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), benchSeq.Add(1)),
		AmountFen: 1, Description: "bench",
	}
}

// BenchmarkBaselineDirectJSPay is the baseline of BenchmarkCreatePayment:
// the same A_NATIVE order signed and sent straight to the sandbox with
// nkp.Client, without the sidecar's API, plugin call and store.
func BenchmarkBaselineDirectJSPay(b *testing.B) {
	sb := sandboxtest.Start(b)
	c := sb.NKPClient()
	ctx := context.Background()
	for b.Loop() {
		now := time.Now()
		resp, err := c.JSPay(ctx, nkp.JSPayRequest{
			ReqDate: nkp.ReqDate(now), ReqSeqID: nkp.NewReqSeqID(now), HuifuID: sb.HuifuID, GoodsDesc: "bench",
			TradeType: upstream.TradeAlipayNative, TransAmt: 1, NotifyURL: "http://127.0.0.1:8001/notify",
		})
		if err != nil || !resp.Accepted() {
			b.Fatalf("jspay: %v %+v", err, resp.Result)
		}
	}
}

// BenchmarkCreatePayment creates Alipay payments one at a time through
// the sidecar's API: validation, plugin calls, SQLite writes and the
// signed upstream call. It reports the resident memory of the sidecar and
// of its three plugin processes afterwards.
func BenchmarkCreatePayment(b *testing.B) {
	_, sc := benchSidecar(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := sc.Client.CreatePayment(ctx, benchOrder()); err != nil {
			b.Fatal(err)
		}
	}
	reportRSS(b, sc)
}

// BenchmarkCreatePaymentParallel is BenchmarkCreatePayment from several
// application threads at once.
func BenchmarkCreatePaymentParallel(b *testing.B) {
	_, sc := benchSidecar(b)
	b.SetParallelism(4)
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
// acknowledge.
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
	forms := func(n int) []url.Values {
		out := make([]url.Values, 0, n)
		for i := range n {
			sn, err := nkp.SignNotification(sb.Keys.Upstream.Private, nkp.CodeAccepted, "ok", map[string]any{
				"req_seq_id": strconv.Itoa(i), "trans_stat": nkp.StatSuccess, "trans_amt": "0.01",
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

// postForms posts b.N prepared notification forms to target, timing only
// the posts.
func postForms(b *testing.B, target string, prepare func(n int) []url.Values) {
	b.StopTimer()
	forms := prepare(b.N)
	hc := &http.Client{Timeout: 10 * time.Second}
	b.StartTimer()
	for i := range b.N {
		resp, err := hc.PostForm(target, forms[i])
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
