package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/payments"
	"github.com/paysidecar/paysidecar/sidecar/store/sqlite"
	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

// POST /v1/refunds over HTTP against a sandbox speaking the DouGong
// dialect: a payment placed directly in the sandbox is refunded by its
// hf_seq_id (sent upstream as org_hf_seq_id), and requests naming the
// payment in no way or in two are refused with their codes, sending
// nothing.
func TestRefundByOverHTTP(t *testing.T) {
	sb := sandboxtest.Start(t, sandboxtest.WithProfile(nkp.ProfileDouGong),
		sandboxtest.WithFaults(sandbox.Faults{Notify: sandbox.NotifyFaults{DropRate: 1}}))
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	tel := telemetry.Bundle{Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry()}
	led, err := ledger.New(st, ledger.Options{Telemetry: tel})
	if err != nil {
		t.Fatal(err)
	}
	up := sb.NKPClient()
	pay, err := payments.New(payments.Config{MerchantID: sb.HuifuID, NotifyURL: "http://127.0.0.1:8001/notify"},
		payments.Deps{Store: st, Ledger: led, Upstream: up, Flows: noFlows{}, Telemetry: tel})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{MerchantID: sb.HuifuID}, Deps{Store: st, Payments: pay, Upstream: up, Flows: noFlows{}, Telemetry: tel})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	post := func(body string) (int, []byte) {
		t.Helper()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/refunds", strings.NewReader(body)))
		return w.Code, w.Body.Bytes()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	now := time.Now()
	order := nkp.JSPayRequest{ReqDate: nkp.ReqDate(now), ReqSeqID: nkp.NewReqSeqID(now), HuifuID: sb.HuifuID,
		GoodsDesc: "elsewhere", TradeType: upstream.TradeAlipayNative, TransAmt: nkp.Fen(80), NotifyURL: "http://127.0.0.1:8001/x"}
	placed, err := up.JSPay(ctx, order)
	if err != nil || !placed.Accepted() || placed.NkpSeqID == "" {
		t.Fatalf("jspay: %+v %v", placed, err)
	}
	sb.SettlePayment(t, order.ReqDate, order.ReqSeqID, sandbox.ResultPaid)

	before := sb.Stats(t, "").Requests
	for _, c := range []struct{ body, code, field string }{
		{`{"out_refund_no":"r1","amount_fen":1}`, CodeMissingField, "payment_id"},
		{`{"out_trade_no":"a","party_order_id":"b","out_refund_no":"r1","amount_fen":1}`, CodeInvalidField, "party_order_id"},
		{`{"nkp_seq_id":"a","hf_seq_id":"b","out_refund_no":"r1","amount_fen":1}`, CodeInvalidField, "hf_seq_id"},
		{`{"hf_seq_id":"a","out_refund_no":"r1"}`, CodeMissingField, "amount_fen"},
		{`{"hf_seq_id":"a","out_refund_no":"r1","amount_fen":1,"org_req_seq_id":"x"}`, CodeUnknownField, "org_req_seq_id"},
	} {
		status, body := post(c.body)
		var e struct {
			Error struct{ Code, Field string } `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		if status != http.StatusBadRequest || e.Error.Code != c.code || e.Error.Field != c.field {
			t.Errorf("%s: %d %s, want 400 %s field %s", c.body, status, body, c.code, c.field)
		}
	}
	after := sb.Stats(t, "").Requests
	for _, p := range []string{nkp.PathPaymentQuery, nkp.PathRefund} {
		if after[p] != before[p] {
			t.Errorf("a refused request sent %s upstream", p)
		}
	}

	status, body := post(`{"hf_seq_id":"` + placed.NkpSeqID + `","out_refund_no":"r-hf","amount_fen":30}`)
	var rf client.Refund
	if err := json.Unmarshal(body, &rf); err != nil || status != http.StatusCreated || rf.Status != client.StatusProcessing || rf.AmountFen != 30 {
		t.Fatalf("refund by hf_seq_id: %d %s", status, body)
	}
	refunds, err := sb.Control.Refunds(ctx, sandbox.Filter{HuifuID: sb.HuifuID})
	if err != nil || len(refunds) != 1 || refunds[0].OrgReqSeqID != order.ReqSeqID || refunds[0].ReqSeqID != rf.ReqSeqID {
		t.Fatalf("sandbox refunds %+v %v, want one of %s", refunds, err, order.ReqSeqID)
	}
	p, err := pay.Get(ctx, rf.PaymentID)
	if err != nil || p.OutTradeNo != order.ReqSeqID || p.NkpSeqID != placed.NkpSeqID || p.Status != client.StatusSucceeded {
		t.Fatalf("imported payment %+v %v", p, err)
	}
	// The same request again answers the same refund.
	status, body = post(`{"hf_seq_id":"` + placed.NkpSeqID + `","out_refund_no":"r-hf","amount_fen":30}`)
	var again client.Refund
	if err := json.Unmarshal(body, &again); err != nil || status != http.StatusOK || again.ID != rf.ID {
		t.Fatalf("repeat: %d %s", status, body)
	}
}
