package sandbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

func TestSigningKeyControl(t *testing.T) {
	inst, _ := start(t)
	ctx := testCtx(t)
	var keys []string
	c := inst.NKPClient()
	c.UpstreamNextKey = inst.Keys.UpstreamNext.Public
	c.Verified = func(k string) { keys = append(keys, k) }
	query := func() string {
		t.Helper()
		keys = nil
		if _, err := c.Call(ctx, nkp.PathPaymentQuery, map[string]any{"huifu_id": inst.HuifuID, "org_req_date": day0, "org_req_seq_id": "none"}); err != nil {
			t.Fatal(err)
		}
		return keys[0]
	}
	if k := query(); k != nkp.KeyCurrent {
		t.Fatalf("at start the sandbox signs with %s", k)
	}
	if err := inst.Control.SetSigningKey(ctx, sandbox.SigningKeyNext); err != nil {
		t.Fatal(err)
	}
	if k := query(); k != nkp.KeyNext {
		t.Fatalf("after the switch the answer verified with %s", k)
	}
	// Notifications too.
	req := nkp.JSPayRequest{ReqDate: day0, ReqSeqID: "sk-1", HuifuID: inst.HuifuID, GoodsDesc: "k",
		TradeType: upstream.TradeAlipayNative, TransAmt: 1, NotifyURL: "http://127.0.0.1:1/notify"}
	if _, err := c.JSPay(ctx, req); err != nil {
		t.Fatal(err)
	}
	inst.SettlePayment(t, day0, "sk-1", sandbox.ResultPaid)
	recs := inst.WaitNotifications(t, sandbox.Filter{ReqSeqID: "sk-1"}, 5*time.Second, func(r []sandbox.NotificationRecord) bool { return len(r) > 0 })
	n := nkp.Notification{RespData: recs[0].RespData, Sign: recs[0].Sign}
	if k, err := (nkp.UpstreamKeys{Current: inst.Keys.Upstream.Public, Next: inst.Keys.UpstreamNext.Public}).VerifyNotification(n); err != nil || k != nkp.KeyNext {
		t.Errorf("notification verified with %q, %v; want next", k, err)
	}
	if err := inst.Control.SetSigningKey(ctx, "other"); err == nil {
		t.Error("an unknown key name was accepted")
	}
	if err := inst.Control.SetSigningKey(context.Background(), sandbox.SigningKeyCurrent); err != nil || query() != nkp.KeyCurrent {
		t.Errorf("switch back: %v", err)
	}
}
