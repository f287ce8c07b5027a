package payments

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/store"
)

// notFound maps a failed read: ErrNotFound becomes CodeNotFound.
func notFound(err error, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return errorf(CodeNotFound, "", "no such %s", what)
	}
	return internal("load "+what, err)
}

// Get returns the payment with the id, refreshed from the upstream when it
// is unfinished (at most once per RefreshInterval).
func (s *Service) Get(ctx context.Context, id string) (client.Payment, error) {
	p, err := s.st.GetPayment(ctx, id)
	if err != nil {
		return client.Payment{}, notFound(err, "payment")
	}
	return ledger.PaymentToClient(s.refresh(ctx, p)), nil
}

// Find returns the merchant's payment with the application's order number
// (the default merchant when merchantID is empty), refreshed like Get.
func (s *Service) Find(ctx context.Context, merchantID, outTradeNo string) (client.Payment, error) {
	if outTradeNo == "" {
		return client.Payment{}, errorf(CodeMissingField, "out_trade_no", "give ?out_trade_no= (and merchant_id= for another merchant)")
	}
	if merchantID == "" {
		merchantID = s.cfg.MerchantID
	}
	p, err := s.st.GetPaymentByOutTradeNo(ctx, merchantID, outTradeNo)
	if err != nil {
		return client.Payment{}, notFound(err, "payment")
	}
	return ledger.PaymentToClient(s.refresh(ctx, p)), nil
}

// refresh asks the upstream for the state of an unfinished payment and
// applies the answer. Any trouble leaves the stored state as it is; the
// reverse query keeps trying.
func (s *Service) refresh(ctx context.Context, p store.Payment) store.Payment {
	if p.Status != store.StatusProcessing || !s.refreshes.allow(p.ID, s.now()) {
		return p
	}
	qctx, cancel := context.WithTimeout(ctx, s.cfg.RefreshTimeout)
	defer cancel()
	res, err := s.query(qctx, p)
	if err != nil || !res.Accepted() {
		return p
	}
	np, _, err := s.led.ApplyPayment(context.WithoutCancel(ctx), p.ID, res)
	if err != nil {
		s.tel.Logger.WarnContext(ctx, "apply query answer", "payment", p.ID, "err", err)
		return p
	}
	return np
}

// Close closes an unpaid payment upstream. It reports whether the payment
// is closed now (false: the close is being processed and the reverse query
// reports the outcome). A closed payment is answered as it is.
func (s *Service) Close(ctx context.Context, id string) (client.Payment, bool, error) {
	p, err := s.st.GetPayment(ctx, id)
	if err != nil {
		return client.Payment{}, false, notFound(err, "payment")
	}
	switch {
	case p.Status == store.StatusClosed:
		return ledger.PaymentToClient(p), true, nil
	case p.Status.Final():
		return client.Payment{}, false, errorf(CodePaymentFinal, "", "payment %s is already %s", p.ID, p.Status)
	case p.Status == store.StatusPending:
		return client.Payment{}, false, errorf(CodePaymentPending, "", "payment %s is still being placed; retry shortly", p.ID)
	}
	now := s.now()
	res, err := s.call(ctx, nkp.PathClose, nkp.CloseRequest{
		ReqDate: nkp.ReqDate(now), ReqSeqID: nkp.NewReqSeqID(now), HuifuID: p.MerchantID,
		OrgReqDate: p.ReqDate, OrgReqSeqID: p.ReqSeqID,
	}, func(data map[string]any) (ledger.Result, error) {
		return ledger.FromClose(data, "closed at the merchant's request")
	})
	if err != nil {
		return client.Payment{}, false, UpstreamError(err, "")
	}
	if !res.Accepted() {
		// The order may have been paid meanwhile; learn what it is now.
		_ = s.refresh(ctx, p)
		return client.Payment{}, false, errorf(CodeCloseRejected, "", "upstream refused to close: %s %s", res.RespCode, res.RespDesc)
	}
	res.ReqDate, res.ReqSeqID, res.At = p.ReqDate, p.ReqSeqID, now
	if res.BankCode != nkp.BankCodeOrderClosed && res.TransStat == "" {
		// The close is being processed; the reverse query reports it.
		return ledger.PaymentToClient(p), false, nil
	}
	np, _, err := s.led.ApplyPayment(context.WithoutCancel(ctx), p.ID, res)
	if err != nil {
		return client.Payment{}, false, internal("apply close", err)
	}
	switch {
	case np.Status == store.StatusClosed:
		return ledger.PaymentToClient(np), true, nil
	case np.Status.Final():
		return client.Payment{}, false, errorf(CodePaymentFinal, "", "payment %s is already %s", np.ID, np.Status)
	}
	return ledger.PaymentToClient(np), false, nil
}

// RefundInput is a decoded request to refund a payment.
type RefundInput struct {
	// PaymentID is the payment refunded.
	PaymentID string
	// Request is the request as the application sent it.
	Request client.CreateRefundRequest
	// AmountGiven reports whether the request named amount_fen at all.
	AmountGiven bool
	// Hash fingerprints the request body (the payment id is added here).
	Hash string
}

// Refund refunds all or part of a succeeded payment. It reports whether
// this request created the refund and whether the refund was accepted
// upstream (false: an earlier attempt got through and its state is not
// known yet). A repeated out_refund_no with the same request gets that
// refund as it stands, sent again while it is pending.
func (s *Service) Refund(ctx context.Context, in RefundInput) (r client.Refund, created, known bool, err error) {
	req := in.Request
	if err := s.validateRefund(&req, in.AmountGiven); err != nil {
		return client.Refund{}, false, false, err
	}
	return s.refundPayment(ctx, in.PaymentID, req, in.Hash, byReqSeqID)
}

// refundPayment refunds the stored payment paymentID as Refund does, for a
// request already validated; the refund names the original order
// upstream by org.
func (s *Service) refundPayment(ctx context.Context, paymentID string, req client.CreateRefundRequest, hash string, org origin) (r client.Refund, created, known bool, err error) {
	unlock := s.refunds.lock(paymentID)
	defer unlock()
	p, err := s.st.GetPayment(ctx, paymentID)
	if err != nil {
		return client.Refund{}, false, false, notFound(err, "payment")
	}
	if rf, err := s.st.GetRefundByOutRefundNo(ctx, p.MerchantID, req.OutRefundNo); err == nil {
		if rf.RequestHash != hash {
			return client.Refund{}, false, false, errorf(CodeOutRefundNoConflict, "out_refund_no",
				"out_refund_no %q is already used by refund %s with different parameters", req.OutRefundNo, rf.ID)
		}
		if rf.Status == store.StatusPending {
			r, known, err := s.sendRefund(ctx, p, rf, org)
			return r, false, known, err
		}
		return ledger.RefundToClient(rf), false, true, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return client.Refund{}, false, false, internal("look up out_refund_no", err)
	}
	if p.Status != store.StatusSucceeded {
		return client.Refund{}, false, false, errorf(CodePaymentNotRefundable, "", "payment %s is %s; only succeeded payments can be refunded", p.ID, p.Status)
	}
	refunds, err := s.st.ListRefunds(ctx, p.ID)
	if err != nil {
		return client.Refund{}, false, false, internal("list refunds", err)
	}
	committed := p.RefundedFen
	for _, rf := range refunds {
		if !rf.Status.Final() {
			committed += rf.AmountFen
		}
	}
	if remaining := p.AmountFen - committed; req.AmountFen > remaining {
		return client.Refund{}, false, false, errorf(CodeRefundExceedsPayment, "amount_fen",
			"amount_fen %d exceeds the %d fen left to refund on payment %s", req.AmountFen, remaining, p.ID)
	}
	now := s.now()
	rf := store.Refund{
		ID: newID("re"), PaymentID: p.ID, MerchantID: p.MerchantID, OutRefundNo: req.OutRefundNo, AmountFen: req.AmountFen,
		Reason: strings.TrimSpace(req.Reason), ReqDate: nkp.ReqDate(now), ReqSeqID: nkp.NewReqSeqID(now),
		Status: store.StatusPending, RequestHash: hash, CreatedAt: now, UpdatedAt: now, NextQueryAt: s.firstQueryAt(now),
	}
	if err := s.led.OpenRefund(ctx, &rf); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return client.Refund{}, false, false, errorf(CodeOutRefundNoConflict, "out_refund_no", "out_refund_no %q is already used", req.OutRefundNo)
		}
		return client.Refund{}, false, false, internal("store refund", err)
	}
	r, known, err = s.sendRefund(ctx, p, rf, org)
	return r, err == nil, known, err
}

// sendRefund sends a stored pending refund upstream under its own
// req_seq_id and records the answer. Sending it again after a lost answer
// cannot refund twice: the upstream books a req_seq_id once; its duplicate
// answer sends the sidecar to ask for the refund's state instead. The
// original order is named by org (its org_req_date always).
func (s *Service) sendRefund(ctx context.Context, p store.Payment, rf store.Refund, org origin) (client.Refund, bool, error) {
	bg := context.WithoutCancel(ctx)
	req := nkp.RefundRequest{
		ReqDate: rf.ReqDate, ReqSeqID: rf.ReqSeqID, HuifuID: rf.MerchantID, OrdAmt: nkp.Fen(rf.AmountFen),
		OrgReqDate: p.ReqDate, NotifyURL: s.cfg.NotifyURL, Remark: rf.Reason,
	}
	org.name(p, &req)
	res, err := s.call(ctx, nkp.PathRefund, req, ledger.FromRefund)
	if err != nil {
		return client.Refund{}, false, UpstreamError(err, fmt.Sprintf("refund %s may have been sent; repeat the same request to learn its outcome", rf.ID))
	}
	switch {
	case res.RespCode == nkp.CodeDuplicate:
		// An earlier attempt got through: ask what became of it.
		q, qerr := s.call(ctx, nkp.PathRefundQuery, nkp.RefundQueryRequest{HuifuID: rf.MerchantID, OrgReqDate: rf.ReqDate, OrgReqSeqID: rf.ReqSeqID}, ledger.FromRefundQuery)
		if qerr != nil || !q.Accepted() {
			return ledger.RefundToClient(rf), false, nil
		}
		nr, err := s.led.RefundAccepted(bg, rf, q)
		if err != nil {
			return client.Refund{}, false, internal("record refund state", err)
		}
		return ledger.RefundToClient(nr), true, nil
	case !res.Accepted():
		if _, err := s.led.RefundRefused(bg, rf, res); err != nil {
			return client.Refund{}, false, internal("record refused refund", err)
		}
		return client.Refund{}, false, errorf(CodeUpstreamRejected, "", "upstream refused the refund: %s %s", res.RespCode, res.RespDesc)
	}
	nr, err := s.led.RefundAccepted(bg, rf, res)
	if err != nil {
		return client.Refund{}, false, internal("record accepted refund", err)
	}
	return ledger.RefundToClient(nr), true, nil
}

// GetRefund returns the refund with the id.
func (s *Service) GetRefund(ctx context.Context, id string) (client.Refund, error) {
	rf, err := s.st.GetRefund(ctx, id)
	if err != nil {
		return client.Refund{}, notFound(err, "refund")
	}
	return ledger.RefundToClient(rf), nil
}

// ListRefunds lists the refunds of the payment, oldest first.
func (s *Service) ListRefunds(ctx context.Context, paymentID string) ([]client.Refund, error) {
	p, err := s.st.GetPayment(ctx, paymentID)
	if err != nil {
		return nil, notFound(err, "payment")
	}
	refunds, err := s.st.ListRefunds(ctx, p.ID)
	if err != nil {
		return nil, internal("list refunds", err)
	}
	out := make([]client.Refund, 0, len(refunds))
	for _, rf := range refunds {
		out = append(out, ledger.RefundToClient(rf))
	}
	return out, nil
}
