package sandbox_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// notifyFaultRun settles 20 orders under every notification fault at rate
// 0.3 and returns, per event, the faults applied and what the receiver saw.
func notifyFaultRun(t *testing.T, seed int64) map[string]string {
	t.Helper()
	inst, _ := start(t, sandboxtest.WithSeed(seed), sandboxtest.WithFaults(sandbox.Faults{Notify: sandbox.NotifyFaults{
		DropRate: 0.3, DuplicateRate: 0.3, ReorderRate: 0.3, ReorderHoldMS: 20, TamperRate: 0.3, ErrorCodeRate: 0.3,
	}}))
	rcv := newReceiver(t, nil)
	for i := 0; i < 20; i++ {
		seq := fmt.Sprintf("F%02d", i)
		placeOrder(t, inst, with(order(seq), "notify_url", rcv.srv.URL+"/notify"))
		inst.SettlePayment(t, day0, seq, sandbox.ResultPaid)
	}
	recs := inst.WaitNotifications(t, sandbox.Filter{}, 5*time.Second, func(r []sandbox.NotificationRecord) bool {
		return len(r) >= 20 && sandboxtest.Finished(r)
	})
	posts := map[string]int{}
	for _, g := range rcv.requests() {
		n, err := nkp.NotificationFromForm(g.form)
		if err != nil {
			t.Fatal(err)
		}
		var d map[string]any
		_ = json.Unmarshal([]byte(n.RespData), &d)
		posts[d["req_seq_id"].(string)]++
		tampered := n.Verify(inst.Keys.Upstream.Public) != nil
		if tampered != strings.Contains(n.RespData, `"trans_amt":"2.00"`) {
			t.Fatalf("signature failure (%v) does not match the tampered amount: %s", tampered, n.RespData)
		}
	}
	out := map[string]string{}
	for _, r := range recs {
		faults := r.Faults
		if slices.Contains(faults, "drop") && r.State != sandbox.DeliveryDropped {
			t.Fatalf("dropped notification in state %s", r.State)
		}
		if slices.Contains(faults, "error_code") != (r.RespCode == nkp.CodeSystem) {
			t.Fatalf("error_code fault and resp_code %s disagree", r.RespCode)
		}
		if slices.Contains(faults, "tamper") != (nkp.Notification{RespData: r.RespData, Sign: r.Sign}.Verify(inst.Keys.Upstream.Public) != nil) {
			t.Fatalf("tamper fault and signature disagree for %s", r.ReqSeqID)
		}
		out[r.ReqSeqID] = fmt.Sprintf("%v posts=%d", faults, posts[r.ReqSeqID])
	}
	return out
}

// TestNotifyFaultsDeterministic proves the same seed gives the same faults
// on the same notifications, that every fault shows the way it should, and
// that another seed gives another pattern.
func TestNotifyFaultsDeterministic(t *testing.T) {
	a := notifyFaultRun(t, 7)
	b := notifyFaultRun(t, 7)
	c := notifyFaultRun(t, 8)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("same seed, different faults:\n%v\n%v", a, b)
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Fatalf("seeds 7 and 8 gave the same faults: %v", a)
	}
	counts := map[string]int{}
	for seq, s := range a {
		for _, f := range []string{"drop", "duplicate", "reorder", "tamper", "error_code"} {
			if strings.Contains(s, f) {
				counts[f]++
			}
		}
		switch {
		case strings.Contains(s, "drop") && !strings.HasSuffix(s, "posts=0"):
			t.Errorf("%s: dropped but posted: %s", seq, s)
		case !strings.Contains(s, "drop") && strings.Contains(s, "duplicate") && !strings.HasSuffix(s, "posts=2"):
			t.Errorf("%s: duplicated but not posted twice: %s", seq, s)
		case !strings.Contains(s, "drop") && !strings.Contains(s, "duplicate") && !strings.HasSuffix(s, "posts=1"):
			t.Errorf("%s: posted a wrong number of times: %s", seq, s)
		}
	}
	for _, f := range []string{"drop", "duplicate", "reorder", "tamper", "error_code"} {
		if counts[f] == 0 {
			t.Errorf("fault %s never struck in 20 notifications at rate 0.3", f)
		}
	}
}

// TestReorder holds one notification back and proves a later one
// overtakes it.
func TestReorder(t *testing.T) {
	inst, _ := start(t)
	rcv := newReceiver(t, nil)
	placeOrder(t, inst, with(order("RO1"), "notify_url", rcv.srv.URL+"/notify"))
	placeOrder(t, inst, with(order("RO2"), "notify_url", rcv.srv.URL+"/notify"))
	if err := inst.Control.SetFaults(testCtx(t), sandbox.Faults{Notify: sandbox.NotifyFaults{ReorderRate: 1, ReorderHoldMS: 60_000}}); err != nil {
		t.Fatal(err)
	}
	inst.SettlePayment(t, day0, "RO1", sandbox.ResultPaid)
	recs := inst.Notifications(t, sandbox.Filter{ReqSeqID: "RO1"})
	if len(recs) != 1 || recs[0].State != sandbox.DeliveryHeld {
		t.Fatalf("RO1 = %+v, want held", recs)
	}
	if err := inst.Control.SetFaults(testCtx(t), sandbox.Faults{}); err != nil {
		t.Fatal(err)
	}
	inst.SettlePayment(t, day0, "RO2", sandbox.ResultPaid)
	inst.WaitNotifications(t, sandbox.Filter{}, 5*time.Second, func(r []sandbox.NotificationRecord) bool { return len(r) == 2 && sandboxtest.Finished(r) })
	got := rcv.requests()
	if len(got) != 2 || !strings.Contains(got[0].form.Get(nkp.FormRespData), "RO2") || !strings.Contains(got[1].form.Get(nkp.FormRespData), "RO1") {
		t.Fatalf("arrival order is not RO2, RO1: %v", got)
	}
}

func TestNotifyLatency(t *testing.T) {
	inst, _ := start(t, sandboxtest.WithFaults(sandbox.Faults{Notify: sandbox.NotifyFaults{LatencyMS: 150}}))
	var arrived atomic.Int64
	rcv := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		arrived.Store(time.Now().UnixNano())
		ack(n, w, r)
	})
	placeOrder(t, inst, with(order("L1"), "notify_url", rcv.srv.URL+"/notify"))
	settled := time.Now()
	inst.SettlePayment(t, day0, "L1", sandbox.ResultPaid)
	inst.WaitNotifications(t, sandbox.Filter{}, 5*time.Second, sandboxtest.Finished)
	if d := time.Unix(0, arrived.Load()).Sub(settled); d < 150*time.Millisecond {
		t.Fatalf("notification arrived %v after settlement, want at least 150ms", d)
	}
}

// apiOutcome classifies one raw answer: ok, 500, unsigned or bad_sign.
func apiOutcome(t *testing.T, inst *sandboxtest.Instance, body []byte) string {
	t.Helper()
	resp, err := inst.HTTP.Post(inst.URL+nkp.PathPaymentQuery, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusInternalServerError {
		return "500"
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatalf("answer is not JSON: %s", raw)
	}
	if _, ok := env["sign"]; !ok {
		return "unsigned"
	}
	if _, err := nkp.VerifyResponse(inst.Keys.Upstream.Public, raw); err != nil {
		return "bad_sign"
	}
	return "ok"
}

// TestAPIFaultsDeterministic proves the n-th call meets the same fault in
// two sandboxes with the same seed, and that each fault reaches the client
// as the kind of error it should.
func TestAPIFaultsDeterministic(t *testing.T) {
	faults := sandbox.Faults{API: sandbox.APIFaults{Status500Rate: 0.2, BadSignatureRate: 0.2, UnsignedRate: 0.2}}
	run := func(seed int64) []string {
		inst, _ := start(t, sandboxtest.WithSeed(seed), sandboxtest.WithFaults(faults))
		body, _ := nkp.EncodeRequest(inst.Keys.Merchant.Private, sandbox.DevSysID, sandbox.DevProductID,
			map[string]any{"huifu_id": sandbox.DevHuifuID, "org_req_date": day0, "org_req_seq_id": "X"})
		var out []string
		for i := 0; i < 40; i++ {
			out = append(out, apiOutcome(t, inst, body))
		}
		return out
	}
	a, b, c := run(42), run(42), run(43)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different sequences:\n%v\n%v", a, b)
	}
	if slices.Equal(a, c) {
		t.Fatalf("different seeds, same sequence: %v", a)
	}
	for _, k := range []string{"ok", "500", "unsigned", "bad_sign"} {
		if !slices.Contains(a, k) {
			t.Errorf("outcome %s never happened in %v", k, a)
		}
	}

	// Through the client: every fault is an error of the right kind.
	for _, tc := range []struct {
		f    sandbox.APIFaults
		kind nkp.ErrorKind
	}{
		{sandbox.APIFaults{Status500Rate: 1}, nkp.KindStatus},
		{sandbox.APIFaults{BadSignatureRate: 1}, nkp.KindBadSignature},
		{sandbox.APIFaults{UnsignedRate: 1}, nkp.KindBadSignature},
	} {
		inst, _ := start(t, sandboxtest.WithFaults(sandbox.Faults{API: tc.f}))
		if ce := callErr(t, inst.NKPClient(), nkp.PathJSPay, order("AF1")); ce.Kind != tc.kind {
			t.Errorf("fault %+v: error kind %s, want %s", tc.f, ce.Kind, tc.kind)
		}
	}
}

// TestAPIFault500Stage proves a 500 after processing leaves the order
// placed (a retry is a duplicate) while a 500 before processing does not.
func TestAPIFault500Stage(t *testing.T) {
	for _, before := range []bool{false, true} {
		t.Run(fmt.Sprintf("before=%v", before), func(t *testing.T) {
			inst, _ := start(t, sandboxtest.WithFaults(sandbox.Faults{API: sandbox.APIFaults{Status500Rate: 1, BeforeProcessing: before, Paths: []string{nkp.PathJSPay}}}))
			if ce := callErr(t, inst.NKPClient(), nkp.PathJSPay, order("S1")); ce.StatusCode != http.StatusInternalServerError {
				t.Fatalf("error = %v", ce)
			}
			// Other paths are not affected.
			wantCode(t, call(t, inst, nkp.PathPaymentQuery, map[string]any{"huifu_id": sandbox.DevHuifuID, "org_req_date": day0, "org_req_seq_id": "NONE"}), nkp.CodeNotFound, "")
			if err := inst.Control.SetFaults(testCtx(t), sandbox.Faults{}); err != nil {
				t.Fatal(err)
			}
			retry := call(t, inst, nkp.PathJSPay, order("S1"))
			if before {
				wantCode(t, retry, nkp.CodeProcessing, "")
			} else {
				wantCode(t, retry, nkp.CodeDuplicate, "")
			}
			if st := inst.Stats(t, ""); st.Orders != 1 {
				t.Fatalf("orders = %d", st.Orders)
			}
		})
	}
}

func TestAPILatency(t *testing.T) {
	inst, _ := start(t, sandboxtest.WithFaults(sandbox.Faults{API: sandbox.APIFaults{LatencyMS: 120}}))
	began := time.Now()
	placeOrder(t, inst, order("LAT1"))
	if d := time.Since(began); d < 120*time.Millisecond {
		t.Fatalf("answer took %v, want at least 120ms", d)
	}
}
