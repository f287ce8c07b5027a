package api

import (
	"context"
	"net/http"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/payments"
)

// createRefundBy serves POST /v1/refunds: a refund of the payment named by
// exactly one of payment_id, out_trade_no, nkp_seq_id (hf_seq_id) and
// party_order_id, which may be a payment the sidecar did not place.
func (s *Server) createRefundBy(ctx context.Context, _ *http.Request, body []byte) (int, any, error) {
	var req client.RefundByRequest
	if err := decodeStrict(body, &req); err != nil {
		return 0, nil, err
	}
	seq := req.NkpSeqID
	if req.HfSeqID != "" {
		if seq != "" {
			return 0, nil, badRequest(CodeInvalidField, "hf_seq_id", "nkp_seq_id and hf_seq_id are two names of one serial; give one")
		}
		seq = req.HfSeqID
	}
	hash, names := fingerprint(body)
	rf, created, known, err := s.payments.RefundBy(ctx, payments.RefundByInput{
		Ref: payments.PaymentRef{PaymentID: req.PaymentID, OutTradeNo: req.OutTradeNo, NkpSeqID: seq,
			PartyOrderID: req.PartyOrderID, MerchantID: req.MerchantID, PaymentDate: req.PaymentDate},
		Request:     client.CreateRefundRequest{OutRefundNo: req.OutRefundNo, AmountFen: req.AmountFen, Reason: req.Reason},
		AmountGiven: names["amount_fen"],
		Hash:        hash,
	})
	return refundAnswer(rf, created, known, err)
}
