package sandboxtest_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestStart places and settles an order through an Instance and reads the
// notification and the statistics back, the way tests of other packages
// use it.
func TestStart(t *testing.T) {
	clock := sandboxtest.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	inst := sandboxtest.Start(t, sandboxtest.WithClock(clock.Now), sandboxtest.WithSeed(9))
	if inst.URL == "" || inst.HuifuID != sandbox.DevHuifuID || inst.Keys.Merchant.Private == nil {
		t.Fatalf("instance = %+v", inst)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := inst.NKPClient().JSPay(ctx, nkp.JSPayRequest{ReqDate: "20250102", ReqSeqID: "S1", HuifuID: inst.HuifuID,
		GoodsDesc: "g", TradeType: upstream.TradeWeChatMiniApp, TransAmt: 1, WxData: `{"openid":"o1"}`})
	if err != nil || !resp.Accepted() {
		t.Fatalf("jspay = %+v, %v", resp, err)
	}
	if o := inst.SettlePayment(t, "20250102", "S1", sandbox.ResultPaid); o.TransStat != nkp.StatSuccess || o.EndTime.IsZero() {
		t.Fatalf("settled order = %+v", o)
	}
	st := inst.Stats(t, inst.HuifuID)
	if st.Orders != 1 || st.Paid != 1 || st.Requests[nkp.PathJSPay] != 1 {
		t.Fatalf("stats = %+v", st)
	}
	if n := inst.Notifications(t, sandbox.Filter{}); len(n) != 0 {
		t.Fatalf("notifications without notify_url: %+v", n)
	}
	clock.Advance(time.Hour)
	if got := clock.Now(); !got.Equal(time.Date(2025, 1, 2, 4, 4, 5, 0, time.UTC)) {
		t.Fatalf("clock = %v", got)
	}
}
