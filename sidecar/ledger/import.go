package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/paysidecar/paysidecar/sidecar/store"
)

// ImportPayment keeps a payment the sidecar did not place, which a payment
// query (r, built by FromPaymentQuery) found upstream, like one of its own:
// p carries the sidecar's id, the merchant, the application's order number
// and the next query; its order (req_date, req_seq_id, serials, amount,
// refunded total, upstream data) comes from r. The payment is stored as
// processing and then moved to the state r reports, with the event that
// announces a final state; the event's data.source is "import". Should the
// process stop between the two, the reverse query finishes the move. It
// returns store.ErrConflict (wrapped) when the merchant already has a
// payment with the order's req_seq_id or p's out_trade_no.
func (l *Ledger) ImportPayment(ctx context.Context, p store.Payment, r Result) (store.Payment, error) {
	if r.ReqDate == "" || r.ReqSeqID == "" || r.Amount <= 0 {
		return store.Payment{}, errors.New("ledger: the payment query answer names no order (org_req_date, org_req_seq_id, trans_amt) to import")
	}
	if err := validUpstream(r.Upstream); err != nil {
		return store.Payment{}, fmt.Errorf("ledger: import payment: %w", err)
	}
	r.Source = SourceImport
	at := l.at(r)
	p.ReqDate, p.ReqSeqID, p.AmountFen, p.RefundedFen = r.ReqDate, r.ReqSeqID, int64(r.Amount), int64(r.Refunded)
	p.NkpSeqID, p.PartyOrderID, p.OutTransID, p.TradeType = r.NkpSeqID, r.PartyOrderID, r.OutTransID, r.TradeType
	p.Status, p.TransStat, p.UpstreamFields = store.StatusProcessing, "", r.Upstream
	p.CreatedAt, p.UpdatedAt = at, at
	if err := l.st.CreatePayment(ctx, &p); err != nil {
		return store.Payment{}, fmt.Errorf("ledger: import payment %s/%s: %w", r.ReqDate, r.ReqSeqID, err)
	}
	l.log.Info("payment placed outside the sidecar imported",
		slog.String("payment", p.ID), slog.String("merchant", p.MerchantID),
		slog.String("req_seq_id", p.ReqSeqID), slog.String("trans_stat", r.TransStat))
	np, _, err := l.ApplyPayment(ctx, p.ID, r)
	if err != nil {
		return p, err
	}
	return np, nil
}
