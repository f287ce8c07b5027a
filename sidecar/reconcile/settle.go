package reconcile

import (
	"context"
	"encoding/json"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/store"
)

// Querier asks the upstream for the state of a payment or a refund;
// *nkp.Client implements it.
type Querier interface {
	QueryPayment(ctx context.Context, req nkp.PaymentQueryRequest) (nkp.PaymentQueryResponse, error)
	QueryRefund(ctx context.Context, req nkp.RefundQueryRequest) (nkp.RefundResponse, error)
}

// Applier applies an upstream result to the ledger; *ledger.Ledger
// implements it. It is the one writer of payment and refund states, and
// it produces the event of a final state.
type Applier interface {
	ApplyPayment(ctx context.Context, paymentID string, r ledger.Result) (store.Payment, bool, error)
	ApplyRefund(ctx context.Context, refundID string, r ledger.Result) (store.Refund, bool, error)
}

// QuerySettler settles a transaction the way the reverse query does: it
// queries the upstream and hands the verified answer to the ledger, so the
// application gets the same event, with the same id, as a notification
// would have produced.
type QuerySettler struct {
	Upstream Querier
	Ledger   Applier
	// Timeout bounds the query; 10 s when zero.
	Timeout time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Settle implements Settler.
func (q QuerySettler) Settle(ctx context.Context, e Entry) Settlement {
	now := time.Now
	if q.Now != nil {
		now = q.Now
	}
	timeout := q.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fail := func(msg string) Settlement { return Settlement{Outcome: "failed", Status: e.Status, Error: msg} }
	var status store.Status
	if e.Kind == "refund" {
		resp, err := q.Upstream.QueryRefund(cctx, nkp.RefundQueryRequest{HuifuID: e.MerchantID, OrgReqDate: e.ReqDate, OrgReqSeqID: e.ReqSeqID})
		if err != nil {
			return fail("query: " + err.Error())
		}
		if !resp.Accepted() {
			return fail("upstream: " + resp.RespCode + " " + resp.RespDesc)
		}
		upstream, _ := json.Marshal(resp)
		r, _, err := q.Ledger.ApplyRefund(ctx, e.ID, ledger.Result{TransStat: resp.TransStat, BankCode: resp.BankCode, BankMessage: resp.BankMessage,
			NkpSeqID: resp.NkpSeqID, Amount: resp.OrdAmt, Upstream: upstream, Source: ledger.SourceQuery, At: now()})
		if err != nil {
			return fail(err.Error())
		}
		status = r.Status
	} else {
		resp, err := q.Upstream.QueryPayment(cctx, nkp.PaymentQueryRequest{HuifuID: e.MerchantID, OrgReqDate: e.ReqDate, OrgReqSeqID: e.ReqSeqID})
		if err != nil {
			return fail("query: " + err.Error())
		}
		if !resp.Accepted() {
			return fail("upstream: " + resp.RespCode + " " + resp.RespDesc)
		}
		seq := resp.NkpSeqID
		if seq == "" {
			seq = resp.OrgNkpSeqID
		}
		upstream, _ := json.Marshal(resp)
		p, _, err := q.Ledger.ApplyPayment(ctx, e.ID, ledger.Result{TransStat: resp.TransStat, BankCode: resp.BankCode, BankMessage: resp.BankMessage,
			NkpSeqID: seq, PartyOrderID: resp.PartyOrderID, OutTransID: resp.OutTransID, Amount: resp.TransAmt,
			Upstream: upstream, Source: ledger.SourceQuery, At: now()})
		if err != nil {
			return fail(err.Error())
		}
		status = p.Status
	}
	if status.Final() {
		return Settlement{Outcome: "settled", Status: status}
	}
	return Settlement{Outcome: "open", Status: status}
}
