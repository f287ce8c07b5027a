package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/store"
)

func pendingPayment(id string) *store.Payment {
	return &store.Payment{
		ID: id, MerchantID: "6666000100000001", OutTradeNo: "out-" + id, Flow: client.FlowAlipayNative,
		TradeType: upstream.TradeAlipayNative, AmountFen: 100, Description: "tea", ReqDate: "20260301",
		ReqSeqID: "seq-" + id, ExpiresAt: t0.Add(2 * time.Hour), CreatedAt: t0,
	}
}

func TestOrderRecordIsKeptAndNeverShown(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := pendingPayment("pay_1")
	rec := ledger.OrderRecord{Request: map[string]any{"req_seq_id": "seq-pay_1", "trade_type": "A_NATIVE"}, SentAt: t0}
	if err := f.led.OpenPayment(ctx, p, rec); err != nil {
		t.Fatal(err)
	}
	stored, _ := f.st.GetPayment(ctx, "pay_1")
	if c := ledger.PaymentToClient(stored); c.PayParams != nil {
		t.Fatalf("the order record is shown as pay parameters: %s", c.PayParams)
	}
	got, ok := ledger.OrderRecordOf(stored)
	if !ok || got.Request["req_seq_id"] != "seq-pay_1" || !got.SentAt.Equal(t0) || ledger.HasPayParams(stored) {
		t.Fatalf("record = %+v %v", got, ok)
	}
	if !got.InFlight(t0.Add(time.Second), 10*time.Second) || got.InFlight(t0.Add(11*time.Second), 10*time.Second) {
		t.Error("a send is in flight for at most the bound")
	}
	got.LostAt = t0.Add(time.Second)
	if got.InFlight(t0.Add(2*time.Second), 10*time.Second) {
		t.Error("a send that ended without an answer is still in flight")
	}

	// The accepted answer, with the parameters built, replaces the record.
	res, err := ledger.FromOrder(map[string]any{"resp_code": "00000100", "trans_stat": "P", "nkp_seq_id": "n1", "trans_amt": "1.00"})
	if err != nil {
		t.Fatal(err)
	}
	np, err := f.led.OrderAccepted(ctx, stored, res, json.RawMessage(`{"qr_code":"https://qr"}`), ledger.OrderRecord{})
	if err != nil {
		t.Fatal(err)
	}
	if np.Status != store.StatusProcessing || np.NkpSeqID != "n1" || string(ledger.PaymentToClient(np).PayParams) != `{"qr_code":"https://qr"}` {
		t.Fatalf("after the answer: %+v", np)
	}
	// A later record never replaces built parameters.
	if kept, err := f.led.KeepOrder(ctx, "pay_1", rec); err != nil || !ledger.HasPayParams(kept) {
		t.Fatalf("KeepOrder replaced built parameters: %v %s", err, kept.PayParams)
	}
}

func TestOrderAcceptedWithoutParamsKeepsTheAnswer(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := pendingPayment("pay_1")
	rec := ledger.OrderRecord{Request: map[string]any{"req_seq_id": "seq-pay_1"}, SentAt: t0}
	if err := f.led.OpenPayment(ctx, p, rec); err != nil {
		t.Fatal(err)
	}
	answer := map[string]any{"resp_code": "00000100", "trans_stat": "P", "nkp_seq_id": "n1", "qr_code": "https://qr"}
	res, _ := ledger.FromOrder(answer)
	rec.Answer = answer
	np, err := f.led.OrderAccepted(ctx, *p, res, nil, rec)
	if err != nil {
		t.Fatal(err)
	}
	// A reverse query then sees the order: the kept answer survives it.
	q, _ := ledger.FromPaymentQuery(map[string]any{"resp_code": "00000000", "org_req_date": "20260301", "org_req_seq_id": "seq-pay_1", "trans_stat": "P"})
	if _, _, err := f.led.ApplyPayment(ctx, np.ID, q); err != nil {
		t.Fatal(err)
	}
	stored, _ := f.st.GetPayment(ctx, "pay_1")
	got, ok := ledger.OrderRecordOf(stored)
	if !ok || got.Answer["qr_code"] != "https://qr" || ledger.PaymentToClient(stored).PayParams != nil {
		t.Fatalf("record after a query = %+v %v", got, ok)
	}
	if got.InFlight(t0, time.Hour) {
		t.Error("a send that got its answer is still in flight")
	}
}

func TestOrderRefusedFailsWithoutAnEvent(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := pendingPayment("pay_1")
	if err := f.led.OpenPayment(ctx, p, ledger.OrderRecord{}); err != nil {
		t.Fatal(err)
	}
	res, _ := ledger.FromOrder(map[string]any{"resp_code": "10000000", "resp_desc": "goods_desc is required"})
	np, err := f.led.OrderRefused(ctx, *p, res)
	if err != nil || np.Status != store.StatusFailed {
		t.Fatalf("refused: %+v %v", np, err)
	}
	code, desc, refused := ledger.Refusal(np)
	if !refused || code != "10000000" || desc != "goods_desc is required" {
		t.Fatalf("Refusal = %q %q %v", code, desc, refused)
	}
	if n := len(f.events(t)); n != 0 {
		t.Fatalf("a refusal made %d events", n)
	}
	accepted, _ := ledger.FromOrder(map[string]any{"resp_code": "00000100"})
	if _, err := f.led.OrderRefused(ctx, *p, accepted); err == nil {
		t.Fatal("an accepted answer was recorded as a refusal")
	}
	// A payment that failed upstream was not refused.
	q := f.payment(t, "pay_2", 100)
	if _, _, err := f.led.ApplyPayment(ctx, q.ID, ledger.Result{RespCode: "00000000", TransStat: "F", BankCode: "E", Source: ledger.SourceQuery,
		Upstream: json.RawMessage(`{"resp_code":"00000000","trans_stat":"F","bank_code":"E"}`)}); err != nil {
		t.Fatal(err)
	}
	failed, _ := f.st.GetPayment(ctx, q.ID)
	if _, _, refused := ledger.Refusal(failed); refused || failed.Status != store.StatusFailed {
		t.Fatalf("a failed payment counts as refused: %+v", failed)
	}
}

func TestReplaceOrderMakesOldResultsStale(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.payment(t, "pay_1", 100)
	np, err := f.led.ReplaceOrder(ctx, p, ledger.OrderRef{ReqDate: "20260302", ReqSeqID: "seq-new"},
		ledger.OrderRecord{Request: map[string]any{"req_seq_id": "seq-new"}, Replaces: &ledger.OrderRef{ReqDate: p.ReqDate, ReqSeqID: p.ReqSeqID}})
	if err != nil || np.ReqSeqID != "seq-new" {
		t.Fatalf("replace: %+v %v", np, err)
	}
	old := ledger.Result{ReqDate: p.ReqDate, ReqSeqID: p.ReqSeqID, TransStat: "F", BankCode: nkp.BankCodeOrderClosed, Source: ledger.SourceQuery}
	got, applied, err := f.led.ApplyPayment(ctx, p.ID, old)
	if err != nil || applied || got.Status != store.StatusProcessing {
		t.Fatalf("a result about the replaced order moved the payment: %v %v %s", applied, err, got.Status)
	}
	if c := resultsCount(t, f.reg, "payment", "query", "stale"); c != 1 {
		t.Errorf("stale counter = %v", c)
	}
	cur := ledger.Result{ReqDate: "20260302", ReqSeqID: "seq-new", TransStat: "S", Source: ledger.SourceQuery}
	if got, applied, err := f.led.ApplyPayment(ctx, p.ID, cur); err != nil || !applied || got.Status != store.StatusSucceeded {
		t.Fatalf("a result about the new order: %v %v %s", applied, err, got.Status)
	}
	if _, err := f.led.ReplaceOrder(ctx, p, ledger.OrderRef{ReqDate: "20260302", ReqSeqID: "seq-other"}, ledger.OrderRecord{}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("replacing from an order the payment left: %v", err)
	}
}

func TestFailureIsOnThePaymentAndItsEvent(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.payment(t, "pay_1", 100)
	res, err := ledger.FromPaymentQuery(map[string]any{"resp_code": "00000000", "org_req_date": "20260301",
		"org_req_seq_id": "seq-pay_1", "trans_stat": "F", "bank_code": "NOTENOUGH", "bank_message": "balance too low"})
	if err != nil {
		t.Fatal(err)
	}
	p, applied, err := f.led.ApplyPayment(ctx, "pay_1", res)
	if err != nil || !applied {
		t.Fatal(applied, err)
	}
	if c := ledger.PaymentToClient(p); c.FailureCode != "NOTENOUGH" || c.FailureMessage != "balance too low" {
		t.Fatalf("failed payment = %+v", c)
	}
	evs := f.events(t)
	if len(evs) != 1 {
		t.Fatalf("events = %d", len(evs))
	}
	if ce := decodeEvent(t, evs[0]); ce.Data.Payment.FailureCode != "NOTENOUGH" || ce.Data.Payment.FailureMessage != "balance too low" {
		t.Fatalf("event payment = %+v", ce.Data.Payment)
	}

	tests := []struct {
		name      string
		status    store.Status
		upstream  string
		code, msg string
	}{
		{"refused", store.StatusFailed, `{"resp_code":"10000000","resp_desc":"goods_desc is required"}`, "10000000", "goods_desc is required"},
		{"failed without a reason", store.StatusFailed, `{"resp_code":"00000000","trans_stat":"F"}`, "", ""},
		{"processing", store.StatusProcessing, `{"resp_code":"00000000","bank_code":"X"}`, "", ""},
		{"succeeded", store.StatusSucceeded, `{"resp_code":"00000000","trans_stat":"S"}`, "", ""},
		{"not JSON", store.StatusFailed, `{`, "", ""},
	}
	for _, tt := range tests {
		c := ledger.PaymentToClient(store.Payment{ID: "p", Status: tt.status, UpstreamFields: json.RawMessage(tt.upstream)})
		if c.FailureCode != tt.code || c.FailureMessage != tt.msg {
			t.Errorf("%s: failure = %q %q, want %q %q", tt.name, c.FailureCode, c.FailureMessage, tt.code, tt.msg)
		}
	}
}
