package ledger

import (
	"encoding/json"
	"fmt"
	"maps"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// The functions of this file are the only place that turns an upstream
// answer into a Result: one function per kind of answer. Each takes the
// verified data object of the answer in either field dialect (NKP's
// nkp_seq_id or DouGong's hf_seq_id) and knows which of its fields names
// which serial.
//
// The rule for the org_ serials: an org_ field names the object the call
// was about. In the answer to a query (of a payment or of a refund) and to
// a close, that is the queried or closed object itself, so its org_nkp_seq_id
// is that object's serial when nkp_seq_id is absent. In the answer to a
// refund and in a refund's notification, it is the payment refunded, never
// the refund: a refund's serial is its own nkp_seq_id only.

// normalized returns a copy of data in NKP field names, whatever the
// dialect it came in.
func normalized(data map[string]any) map[string]any {
	m := maps.Clone(data)
	if m == nil {
		m = map[string]any{}
	}
	nkp.ProfileDouGong.FromWire(m)
	return m
}

// decodeAnswer normalizes data, decodes it into v and returns the
// normalized data as JSON, which becomes Result.Upstream.
func decodeAnswer(kind string, data map[string]any, v any) (json.RawMessage, error) {
	m := normalized(data)
	if err := nkp.FromMap(m, v); err != nil {
		return nil, fmt.Errorf("ledger: read the %s answer: %w", kind, err)
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("ledger: encode the %s answer: %w", kind, err)
	}
	return raw, nil
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// FromOrder builds the result of the answer to an order (jspay): the
// order's own serials (req_date, req_seq_id, nkp_seq_id, party_order_id)
// and its state. The answer's resp_code tells whether the order was
// accepted, refused or a duplicate of one already booked.
func FromOrder(data map[string]any) (Result, error) {
	var a nkp.JSPayResponse
	raw, err := decodeAnswer("order", data, &a)
	if err != nil {
		return Result{}, err
	}
	return Result{
		RespCode: a.RespCode, RespDesc: a.RespDesc,
		ReqDate: a.ReqDate, ReqSeqID: a.ReqSeqID,
		TransStat: a.TransStat, BankCode: a.BankCode, BankMessage: a.BankMessage,
		NkpSeqID: a.NkpSeqID, PartyOrderID: a.PartyOrderID, Amount: a.TransAmt,
		Upstream: raw, Source: SourceAPI,
	}, nil
}

// FromPaymentQuery builds the result of the answer to a payment query. The
// payment is the one named by org_req_date and org_req_seq_id; its serial
// is nkp_seq_id, or org_nkp_seq_id when the answer only echoes the query's
// key.
func FromPaymentQuery(data map[string]any) (Result, error) {
	var a nkp.PaymentQueryResponse
	raw, err := decodeAnswer("payment query", data, &a)
	if err != nil {
		return Result{}, err
	}
	return Result{
		RespCode: a.RespCode, RespDesc: a.RespDesc,
		ReqDate: a.OrgReqDate, ReqSeqID: a.OrgReqSeqID,
		TransStat: a.TransStat, BankCode: a.BankCode, BankMessage: a.BankMessage,
		NkpSeqID: firstOf(a.NkpSeqID, a.OrgNkpSeqID), PartyOrderID: a.PartyOrderID, OutTransID: a.OutTransID,
		Amount: a.TransAmt, Refunded: a.RefundedAmt, TradeType: a.TradeType, Upstream: raw, Source: SourceQuery,
	}, nil
}

// FromClose builds the result of the answer to a close, about the payment
// closed (org_req_date, org_req_seq_id, org_nkp_seq_id). When the close
// took effect (trans_stat S) the payment failed with bank code
// nkp.BankCodeOrderClosed and reason as its bank message; otherwise the
// result carries the payment's own state (org_trans_stat), which says
// whether it was paid or failed meanwhile.
func FromClose(data map[string]any, reason string) (Result, error) {
	var a nkp.CloseResponse
	raw, err := decodeAnswer("close", data, &a)
	if err != nil {
		return Result{}, err
	}
	r := Result{
		RespCode: a.RespCode, RespDesc: a.RespDesc,
		ReqDate: a.OrgReqDate, ReqSeqID: a.OrgReqSeqID, NkpSeqID: a.OrgNkpSeqID,
		TransStat: a.OrgTransStat, Upstream: raw, Source: SourceAPI,
	}
	if a.TransStat == nkp.StatSuccess {
		r.TransStat, r.BankCode, r.BankMessage = nkp.StatFailure, nkp.BankCodeOrderClosed, reason
	}
	return r, nil
}

// FromRefund builds the result of the answer to a refund: the refund's own
// req_date, req_seq_id and nkp_seq_id (its org_ fields name the payment)
// and its state.
func FromRefund(data map[string]any) (Result, error) {
	var a nkp.RefundResponse
	raw, err := decodeAnswer("refund", data, &a)
	if err != nil {
		return Result{}, err
	}
	return Result{
		RespCode: a.RespCode, RespDesc: a.RespDesc,
		ReqDate: a.ReqDate, ReqSeqID: a.ReqSeqID,
		TransStat: a.TransStat, BankCode: a.BankCode, BankMessage: a.BankMessage,
		NkpSeqID: a.NkpSeqID, Amount: a.OrdAmt, Upstream: raw, Source: SourceAPI,
	}, nil
}

// FromRefundQuery builds the result of the answer to a refund query. The
// query names the refund by its own serials sent as org_*, so the refund's
// serial is nkp_seq_id, or org_nkp_seq_id when the answer only echoes the
// key.
func FromRefundQuery(data map[string]any) (Result, error) {
	var a nkp.RefundResponse
	raw, err := decodeAnswer("refund query", data, &a)
	if err != nil {
		return Result{}, err
	}
	return Result{
		RespCode: a.RespCode, RespDesc: a.RespDesc,
		ReqDate: firstOf(a.OrgReqDate, a.ReqDate), ReqSeqID: firstOf(a.OrgReqSeqID, a.ReqSeqID),
		TransStat: a.TransStat, BankCode: a.BankCode, BankMessage: a.BankMessage,
		NkpSeqID: firstOf(a.NkpSeqID, a.OrgNkpSeqID), Amount: a.OrdAmt, Upstream: raw, Source: SourceQuery,
	}, nil
}

// Notice is what a verified notification says, read once by FromNotification.
type Notice struct {
	// HuifuID, ReqDate and ReqSeqID name the payment or refund the
	// notification is about.
	HuifuID, ReqDate, ReqSeqID string
	// TransType is nkp.TransRefund for a refund, the trade type for a
	// payment, or empty.
	TransType string
	// NotifyType is nkp.NotifyTypeChannel for a channel result.
	NotifyType string

	result           Result
	transAmt, ordAmt nkp.Fen
}

// Refund reports whether the notification says it is about a refund.
func (n Notice) Refund() bool { return n.TransType == nkp.TransRefund }

// PaymentResult is the notification's result for a payment: trans_amt is
// its amount and nkp_seq_id, party_order_id and out_trans_id its serials.
func (n Notice) PaymentResult() Result {
	r := n.result
	r.Amount = n.transAmt
	return r
}

// RefundResult is the notification's result for a refund: ord_amt is its
// amount and nkp_seq_id its own serial (org_nkp_seq_id is the payment's).
func (n Notice) RefundResult() Result {
	r := n.result
	r.Amount = n.ordAmt
	r.PartyOrderID, r.OutTransID = "", ""
	return r
}

// FromNotification reads a notification that has been verified (Verify
// passed): its resp_data, in either dialect, becomes the Notice and the
// raw resp_data, as signed, the result's Upstream.
func FromNotification(n nkp.Notification) (Notice, error) {
	obj, err := nkp.DecodeObject([]byte(n.RespData))
	if err != nil {
		return Notice{}, fmt.Errorf("ledger: resp_data is not a JSON object: %w", err)
	}
	var d nkp.NotifyData
	if err := nkp.FromMap(normalized(obj), &d); err != nil {
		return Notice{}, fmt.Errorf("ledger: resp_data has malformed fields: %w", err)
	}
	return Notice{
		HuifuID: d.HuifuID, ReqDate: d.ReqDate, ReqSeqID: d.ReqSeqID,
		TransType: d.TransType, NotifyType: d.NotifyType,
		transAmt: d.TransAmt, ordAmt: d.OrdAmt,
		result: Result{
			RespCode: d.RespCode, RespDesc: d.RespDesc,
			ReqDate: d.ReqDate, ReqSeqID: d.ReqSeqID,
			TransStat: d.TransStat, BankCode: d.BankCode, BankMessage: d.BankMessage,
			NkpSeqID: d.NkpSeqID, PartyOrderID: d.PartyOrderID, OutTransID: d.OutTransID,
			Upstream:     json.RawMessage(n.RespData),
			Notification: &client.UpstreamNotification{RespCode: n.RespCode, RespDesc: n.RespDesc, RespData: n.RespData, Sign: n.Sign},
			Source:       SourceNotification,
		},
	}, nil
}
