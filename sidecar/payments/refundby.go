package payments

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/store"
)

// origin says how a refund names its original order upstream: the seed
// lets a refund carry one of org_req_seq_id, org_nkp_seq_id (org_hf_seq_id
// in the DouGong dialect) and org_party_order_id, with org_req_date.
type origin int

// The ways of naming the original order.
const (
	byReqSeqID origin = iota
	byNkpSeqID
	byPartyOrderID
)

// name sets the field of req that names p's order: the identifier the
// application named the payment by when the upstream knows it by that
// one, req_seq_id otherwise (and whenever the payment has no such serial
// stored).
func (o origin) name(p store.Payment, req *nkp.RefundRequest) {
	switch {
	case o == byNkpSeqID && p.NkpSeqID != "":
		req.OrgNkpSeqID = p.NkpSeqID
	case o == byPartyOrderID && p.PartyOrderID != "":
		req.OrgPartyOrderID = p.PartyOrderID
	default:
		req.OrgReqSeqID = p.ReqSeqID
	}
}

// PaymentRef names the payment a refund is for, by exactly one of
// PaymentID, OutTradeNo, NkpSeqID and PartyOrderID.
type PaymentRef struct {
	// PaymentID is the sidecar's id of the payment.
	PaymentID string
	// OutTradeNo is the application's order number. A payment the sidecar
	// did not place is known upstream by the req_seq_id it was placed
	// with, which is its out_trade_no here.
	OutTradeNo string
	// NkpSeqID is the upstream's global serial (nkp_seq_id, or hf_seq_id
	// in the DouGong dialect).
	NkpSeqID string
	// PartyOrderID is the channel's order id (WeChat's or Alipay's).
	PartyOrderID string
	// MerchantID is the merchant's huifu_id; the default merchant when
	// empty.
	MerchantID string
	// PaymentDate is the day the payment was placed (yyyyMMdd, Beijing
	// time), sent as org_req_date when the payment must be looked up
	// upstream; today when empty.
	PaymentDate string
}

// RefundByInput is a decoded request to refund a payment named by a
// PaymentRef.
type RefundByInput struct {
	// Ref names the payment.
	Ref PaymentRef
	// Request is the refund itself.
	Request client.CreateRefundRequest
	// AmountGiven reports whether the request named amount_fen at all.
	AmountGiven bool
	// Hash fingerprints the request body.
	Hash string
}

// RefundBy refunds the payment in.Ref names, as Refund does. A payment the
// sidecar does not hold (placed outside it) is looked up upstream first
// with a payment query by the given identifier and kept from then on like
// one of the sidecar's own (see ledger.ImportPayment); one the upstream
// does not know either is CodeNotFound. The refund names the original
// order upstream by the identifier the application gave, when the
// upstream knows it by that one. A request that names the payment in no
// way or in several is refused before anything is looked up or sent.
func (s *Service) RefundBy(ctx context.Context, in RefundByInput) (r client.Refund, created, known bool, err error) {
	ref := in.Ref
	org, err := s.validateRef(&ref)
	if err != nil {
		return client.Refund{}, false, false, err
	}
	req := in.Request
	if err := s.validateRefund(&req, in.AmountGiven); err != nil {
		return client.Refund{}, false, false, err
	}
	p, err := s.findOrImport(ctx, ref)
	if err != nil {
		return client.Refund{}, false, false, err
	}
	return s.refundPayment(ctx, p.ID, req, in.Hash, org)
}

// validateRef checks that ref names the payment exactly once, fills in
// the default merchant and payment date, and returns how the refund names
// the order upstream.
func (s *Service) validateRef(ref *PaymentRef) (origin, error) {
	keys := []struct {
		field, value string
		org          origin
	}{
		{"payment_id", ref.PaymentID, byReqSeqID},
		{"out_trade_no", ref.OutTradeNo, byReqSeqID},
		{"nkp_seq_id", ref.NkpSeqID, byNkpSeqID},
		{"party_order_id", ref.PartyOrderID, byPartyOrderID},
	}
	var named []string
	org := byReqSeqID
	for _, k := range keys {
		if k.value == "" {
			continue
		}
		named = append(named, k.field)
		org = k.org
		if err := CheckText(k.field, k.value); err != nil {
			return 0, err
		}
		if len(k.value) > 64 || strings.TrimSpace(k.value) != k.value {
			return 0, errorf(CodeInvalidField, k.field, "%s must be at most 64 characters without surrounding spaces", k.field)
		}
	}
	switch len(named) {
	case 0:
		return 0, errorf(CodeMissingField, "payment_id", "name the payment by one of payment_id, out_trade_no, nkp_seq_id (hf_seq_id) or party_order_id")
	case 1:
	default:
		return 0, errorf(CodeInvalidField, named[1], "name the payment by exactly one of payment_id, out_trade_no, nkp_seq_id (hf_seq_id) or party_order_id; got %s", strings.Join(named, " and "))
	}
	if ref.OutTradeNo != "" && !outNoPattern.MatchString(ref.OutTradeNo) {
		return 0, errorf(CodeInvalidField, "out_trade_no", "out_trade_no must be 1 to 64 letters, digits or _-.|*")
	}
	if err := s.CheckMerchant(ref.MerchantID); err != nil {
		return 0, err
	}
	if ref.MerchantID == "" {
		ref.MerchantID = s.cfg.MerchantID
	}
	if ref.PaymentDate != "" {
		if _, err := time.Parse(nkp.DateLayout, ref.PaymentDate); err != nil || len(ref.PaymentDate) != len(nkp.DateLayout) {
			return 0, errorf(CodeInvalidField, "payment_date", "payment_date must be the day the payment was placed, yyyyMMdd")
		}
		if ref.PaymentID != "" {
			return 0, errorf(CodeInvalidField, "payment_date", "payment_date only helps find a payment upstream; payment_id names one the sidecar holds")
		}
	}
	return org, nil
}

// findOrImport returns the stored payment ref names or, for one the
// sidecar did not place, imports it from the upstream's answer to a
// payment query by the same identifier.
func (s *Service) findOrImport(ctx context.Context, ref PaymentRef) (store.Payment, error) {
	var p store.Payment
	var err error
	switch {
	case ref.PaymentID != "":
		p, err = s.st.GetPayment(ctx, ref.PaymentID)
		if err != nil {
			return store.Payment{}, notFound(err, "payment")
		}
		return p, nil
	case ref.OutTradeNo != "":
		p, err = s.st.GetPaymentByOutTradeNo(ctx, ref.MerchantID, ref.OutTradeNo)
	case ref.NkpSeqID != "":
		p, err = s.st.GetPaymentByNkpSeqID(ctx, ref.MerchantID, ref.NkpSeqID)
	default:
		p, err = s.st.GetPaymentByPartyOrderID(ctx, ref.MerchantID, ref.PartyOrderID)
	}
	if err == nil {
		return p, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return store.Payment{}, internal("look up payment", err)
	}
	return s.importPayment(ctx, ref)
}

// importPayment looks the payment ref names up upstream and keeps it.
func (s *Service) importPayment(ctx context.Context, ref PaymentRef) (store.Payment, error) {
	date := ref.PaymentDate
	if date == "" {
		date = nkp.ReqDate(s.now())
	}
	q := nkp.PaymentQueryRequest{HuifuID: ref.MerchantID, OrgReqDate: date,
		OrgReqSeqID: ref.OutTradeNo, OrgNkpSeqID: ref.NkpSeqID, OutOrdID: ref.PartyOrderID}
	res, err := s.call(ctx, nkp.PathPaymentQuery, q, ledger.FromPaymentQuery)
	if err != nil {
		return store.Payment{}, UpstreamError(err, "nothing was refunded")
	}
	if res.RespCode == nkp.CodeNotFound {
		return store.Payment{}, errorf(CodeNotFound, "", "no such payment: neither the sidecar nor the upstream knows it (placed on %s; give payment_date for another day)", date)
	}
	if !res.Accepted() {
		return store.Payment{}, errorf(CodeUpstreamRejected, "", "the upstream refused to look the payment up: %s %s", res.RespCode, res.RespDesc)
	}
	if res.ReqDate == "" {
		res.ReqDate = date
	}
	if res.ReqSeqID == "" {
		res.ReqSeqID = ref.OutTradeNo
	}
	if res.ReqSeqID == "" || res.Amount <= 0 {
		return store.Payment{}, errorf(CodeUpstreamRejected, "", "the upstream's answer names no order to refund (org_req_seq_id, trans_amt)")
	}
	// The sidecar may hold it after all, with its serials not yet
	// recorded.
	if p, err := s.st.GetPaymentByReqSeqID(ctx, ref.MerchantID, res.ReqDate, res.ReqSeqID); err == nil {
		return p, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return store.Payment{}, internal("look up payment", err)
	}
	now := s.now()
	res.At = now
	p := store.Payment{
		ID: newID("pay"), MerchantID: ref.MerchantID, OutTradeNo: res.ReqSeqID,
		Flow: s.flowOf(res.TradeType), NextQueryAt: s.firstQueryAt(now),
	}
	np, err := s.led.ImportPayment(context.WithoutCancel(ctx), p, res)
	if errors.Is(err, store.ErrConflict) {
		// Imported meanwhile by a twin request, or its req_seq_id is
		// another payment's out_trade_no.
		if p, gerr := s.st.GetPaymentByReqSeqID(ctx, ref.MerchantID, res.ReqDate, res.ReqSeqID); gerr == nil {
			return p, nil
		}
		return store.Payment{}, errorf(CodeOutTradeNoConflict, "", "the payment's req_seq_id %s is the out_trade_no of another payment of the merchant", res.ReqSeqID)
	}
	if err != nil {
		return store.Payment{}, internal("import payment", err)
	}
	return np, nil
}

// flowOf returns the running flow that places orders of tradeType, or ""
// when none does.
func (s *Service) flowOf(tradeType string) string {
	if tradeType == "" {
		return ""
	}
	for _, info := range s.flows.Infos() {
		if info.TradeType == tradeType {
			return info.Name
		}
	}
	return ""
}
