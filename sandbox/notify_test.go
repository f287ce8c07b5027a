package sandbox_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// TestNotificationDelivery checks the sender's rules against receivers
// that answer in every way: success only on HTTP 200 with the exact
// acknowledgement, retries on anything else and on timeouts, no redirect
// followed, and four attempts at most.
func TestNotificationDelivery(t *testing.T) {
	wrong := func(body string) func(int, http.ResponseWriter, *http.Request) {
		return func(_ int, w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, body) }
	}
	status := func(code int) func(int, http.ResponseWriter, *http.Request) {
		return func(_ int, w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
			_, _ = io.WriteString(w, nkp.NotifyAck(reqSeqOf(r)))
		}
	}
	tests := []struct {
		name         string
		answer       func(n int, w http.ResponseWriter, r *http.Request)
		wantState    string
		wantAttempts int
		wantErrors   []string // error of each failed attempt, in order
	}{
		{name: "exact acknowledgement", answer: ack, wantState: sandbox.DeliveryDelivered, wantAttempts: 1},
		{name: "trailing white space is fine", answer: func(_ int, w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, nkp.NotifyAck(reqSeqOf(r))+" \r\n")
		}, wantState: sandbox.DeliveryDelivered, wantAttempts: 1},
		{name: "retry after HTTP 500", answer: func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 1 {
				http.Error(w, "busy", http.StatusInternalServerError)
				return
			}
			ack(n, w, r)
		}, wantState: sandbox.DeliveryDelivered, wantAttempts: 2, wantErrors: []string{"HTTP 500"}},
		{name: "retry after a wrong body", answer: func(n int, w http.ResponseWriter, r *http.Request) {
			if n <= 2 {
				_, _ = io.WriteString(w, "OK")
				return
			}
			ack(n, w, r)
		}, wantState: sandbox.DeliveryDelivered, wantAttempts: 3, wantErrors: []string{"body is not", "body is not"}},
		{name: "retry after a timeout", answer: func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 1 {
				<-r.Context().Done() // never answers; the sender gives up
				return
			}
			ack(n, w, r)
		}, wantState: sandbox.DeliveryDelivered, wantAttempts: 2, wantErrors: []string{"timeout"}},
		{name: "acknowledgement for another order", answer: wrong(nkp.NotifyAck("OTHER")), wantState: sandbox.DeliveryFailed, wantAttempts: 4},
		{name: "leading white space is not the acknowledgement", answer: func(_ int, w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, " "+nkp.NotifyAck(reqSeqOf(r)))
		}, wantState: sandbox.DeliveryFailed, wantAttempts: 4},
		{name: "201 is not 200", answer: status(http.StatusCreated), wantState: sandbox.DeliveryFailed, wantAttempts: 4},
		{name: "gives up after four attempts", answer: status(http.StatusServiceUnavailable), wantState: sandbox.DeliveryFailed, wantAttempts: 4,
			wantErrors: []string{"HTTP 503", "HTTP 503", "HTTP 503", "HTTP 503"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inst, _ := start(t, sandboxtest.WithConfig(func(c *sandbox.Config) { c.NotifyTimeout = 400 * time.Millisecond }))
			rcv := newReceiver(t, tc.answer)
			placeOrder(t, inst, with(order("N1"), "notify_url", rcv.srv.URL+"/notify"))
			inst.SettlePayment(t, day0, "N1", sandbox.ResultPaid)
			recs := inst.WaitNotifications(t, sandbox.Filter{ReqSeqID: "N1"}, 5*time.Second, sandboxtest.Finished)
			if len(recs) != 1 {
				t.Fatalf("%d records, want 1", len(recs))
			}
			rec := recs[0]
			if rec.State != tc.wantState || len(rec.Attempts) != tc.wantAttempts || len(rcv.requests()) != tc.wantAttempts {
				t.Fatalf("state %s after %d attempts (%d received), want %s after %d: %+v",
					rec.State, len(rec.Attempts), len(rcv.requests()), tc.wantState, tc.wantAttempts, rec.Attempts)
			}
			for i, want := range tc.wantErrors {
				if !strings.Contains(rec.Attempts[i].Error, want) || rec.Attempts[i].OK {
					t.Errorf("attempt %d error = %q, want %q", i+1, rec.Attempts[i].Error, want)
				}
			}
			if last := rec.Attempts[len(rec.Attempts)-1]; last.OK != (tc.wantState == sandbox.DeliveryDelivered) {
				t.Errorf("last attempt ok = %v", last.OK)
			}
		})
	}
}

// TestNoRedirectFollowed proves a 3xx answer is a failed attempt: the
// target of the redirect, which would acknowledge, is never called.
func TestNoRedirectFollowed(t *testing.T) {
	inst, _ := start(t)
	var followed atomic.Int32
	rcv := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			followed.Add(1)
			ack(n, w, r)
			return
		}
		http.Redirect(w, r, "/moved", http.StatusFound)
	})
	placeOrder(t, inst, with(order("RD1"), "notify_url", rcv.srv.URL+"/notify"))
	inst.SettlePayment(t, day0, "RD1", sandbox.ResultPaid)
	recs := inst.WaitNotifications(t, sandbox.Filter{ReqSeqID: "RD1"}, 5*time.Second, sandboxtest.Finished)
	if recs[0].State != sandbox.DeliveryFailed || len(recs[0].Attempts) != 4 || followed.Load() != 0 {
		t.Fatalf("state %s, %d attempts, redirect followed %d times", recs[0].State, len(recs[0].Attempts), followed.Load())
	}
	for _, a := range recs[0].Attempts {
		if a.Status != http.StatusFound {
			t.Fatalf("attempt = %+v, want HTTP 302", a)
		}
	}
}

// TestNotificationContent checks the form and resp_data of payment
// notifications in both dialects and that the signature is the upstream
// key's over the raw resp_data.
func TestNotificationContent(t *testing.T) {
	tests := []struct {
		name      string
		profile   nkp.Profile
		data      map[string]any
		result    string
		wantStat  string
		seqField  string
		wantExtra string
	}{
		{"jsapi paid", nkp.ProfileNKP, order("NC1"), sandbox.ResultPaid, nkp.StatSuccess, "nkp_seq_id", "wx_response"},
		{"native paid", nkp.ProfileNKP, with(order("NC2"), "trade_type", upstream.TradeAlipayNative, "wx_data", nil), sandbox.ResultPaid, nkp.StatSuccess, "nkp_seq_id", "alipay_response"},
		{"jsapi failed", nkp.ProfileNKP, order("NC3"), sandbox.ResultFailed, nkp.StatFailure, "nkp_seq_id", "bank_code"},
		{"dougong dialect", nkp.ProfileDouGong, order("NC4"), sandbox.ResultPaid, nkp.StatSuccess, "hf_seq_id", "wx_response"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inst, _ := start(t, sandboxtest.WithProfile(tc.profile))
			rcv := newReceiver(t, nil)
			seq := tc.data["req_seq_id"].(string)
			placed := placeOrder(t, inst, with(tc.data, "notify_url", rcv.srv.URL+"/notify"))
			inst.SettlePayment(t, day0, seq, tc.result)
			inst.WaitNotifications(t, sandbox.Filter{ReqSeqID: seq}, 5*time.Second, sandboxtest.Finished)
			got := rcv.requests()
			if len(got) != 1 {
				t.Fatalf("received %d notifications", len(got))
			}
			if got[0].contentType != "application/x-www-form-urlencoded; charset=UTF-8" {
				t.Fatalf("Content-Type = %q", got[0].contentType)
			}
			n, err := nkp.NotificationFromForm(got[0].form)
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Verify(inst.Keys.Upstream.Public); err != nil {
				t.Fatalf("resp_data signature: %v", err)
			}
			if n.Verify(inst.Keys.Merchant.Public) == nil {
				t.Fatal("notification verifies with the merchant key")
			}
			if n.RespCode != nkp.CodeAccepted {
				t.Fatalf("resp_code = %s", n.RespCode)
			}
			raw, err := nkp.DecodeObject([]byte(n.RespData))
			if err != nil {
				t.Fatal(err)
			}
			if raw[tc.seqField] == nil || raw[tc.wantExtra] == nil {
				t.Fatalf("resp_data %s lacks %s or %s", n.RespData, tc.seqField, tc.wantExtra)
			}
			nkp.ProfileDouGong.FromWire(raw)
			b, _ := json.Marshal(raw)
			var nd nkp.NotifyData
			if err := json.Unmarshal(b, &nd); err != nil {
				t.Fatal(err)
			}
			wantType := tc.data["trade_type"].(string)
			if nd.HuifuID != sandbox.DevHuifuID || nd.ReqSeqID != seq || nd.ReqDate != day0 || nd.NkpSeqID != placed["nkp_seq_id"] ||
				nd.TransType != wantType || nd.TransAmt != 100 || nd.TransStat != tc.wantStat || nd.PartyOrderID != placed["party_order_id"] ||
				nd.EndTime != "20250615100000" || nd.NotifyType != nkp.NotifyTypeChannel {
				t.Fatalf("notify data = %+v", nd)
			}
			if tc.wantStat == nkp.StatSuccess && nd.OutTransID == "" {
				t.Fatal("paid notification without out_trans_id")
			}
			if tc.wantStat == nkp.StatFailure && nd.BankCode != sandbox.BankCodePayFailed {
				t.Fatalf("failed notification bank_code = %q", nd.BankCode)
			}
			if tc.wantExtra == "wx_response" {
				var wx map[string]string
				var s string
				if json.Unmarshal(nd.WxResponse, &s) != nil || json.Unmarshal([]byte(s), &wx) != nil || wx["sub_openid"] != "oSubUser0001" {
					t.Fatalf("wx_response = %s", nd.WxResponse)
				}
			}
		})
	}
}

func TestNoNotifyURLNoNotification(t *testing.T) {
	inst, _ := start(t)
	placeOrder(t, inst, order("NN1"))
	inst.SettlePayment(t, day0, "NN1", sandbox.ResultPaid)
	if recs := inst.Notifications(t, sandbox.Filter{}); len(recs) != 0 {
		t.Fatalf("notifications = %+v", recs)
	}
}

// TestCloseStopsDelivery proves Close ends a delivery that is waiting on a
// receiver that never answers, promptly; goleak in TestMain proves no
// goroutine is left.
func TestCloseStopsDelivery(t *testing.T) {
	inst, _ := start(t, sandboxtest.WithConfig(func(c *sandbox.Config) { c.NotifyTimeout = time.Minute }))
	rcv := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	placeOrder(t, inst, with(order("CS1"), "notify_url", rcv.srv.URL+"/notify"))
	inst.SettlePayment(t, day0, "CS1", sandbox.ResultPaid)
	waitFor(t, "the receiver to be called", func() bool { return len(rcv.requests()) == 1 })
	began := time.Now()
	if err := inst.Server.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("Close took %v", d)
	}
	// The controls still answer after Close; the record says stopped.
	recs := inst.Notifications(t, sandbox.Filter{ReqSeqID: "CS1"})
	if len(recs) != 1 || recs[0].State != sandbox.DeliveryStopped {
		t.Fatalf("records = %+v", recs)
	}
}
