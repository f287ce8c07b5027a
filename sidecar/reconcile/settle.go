package reconcile

import (
	"context"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/store"
)

// Querier calls the upstream with signed data and returns the verified
// answer; *nkp.Client implements it.
type Querier interface {
	Call(ctx context.Context, path string, data map[string]any) (map[string]any, error)
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
		res, msg := q.query(cctx, nkp.PathRefundQuery, nkp.RefundQueryRequest{HuifuID: e.MerchantID, OrgReqDate: e.ReqDate, OrgReqSeqID: e.ReqSeqID}, ledger.FromRefundQuery)
		if msg != "" {
			return fail(msg)
		}
		res.At = now()
		r, _, err := q.Ledger.ApplyRefund(ctx, e.ID, res)
		if err != nil {
			return fail(err.Error())
		}
		status = r.Status
	} else {
		res, msg := q.query(cctx, nkp.PathPaymentQuery, nkp.PaymentQueryRequest{HuifuID: e.MerchantID, OrgReqDate: e.ReqDate, OrgReqSeqID: e.ReqSeqID}, ledger.FromPaymentQuery)
		if msg != "" {
			return fail(msg)
		}
		res.At = now()
		p, _, err := q.Ledger.ApplyPayment(ctx, e.ID, res)
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

// query asks the upstream and reads its answer with build, the ledger's
// one builder for that kind of answer. A non-empty message says why there
// is no result to apply.
func (q QuerySettler) query(ctx context.Context, path string, req any, build func(map[string]any) (ledger.Result, error)) (ledger.Result, string) {
	data, err := nkp.ToMap(req)
	if err != nil {
		return ledger.Result{}, "encode query: " + err.Error()
	}
	out, err := q.Upstream.Call(ctx, path, data)
	if err != nil {
		return ledger.Result{}, "query: " + err.Error()
	}
	res, err := build(out)
	if err != nil {
		return ledger.Result{}, err.Error()
	}
	if !res.Accepted() {
		return ledger.Result{}, "upstream: " + res.RespCode + " " + res.RespDesc
	}
	res.Source = ledger.SourceQuery
	return res, ""
}
