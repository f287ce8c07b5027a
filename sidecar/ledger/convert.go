package ledger

import (
	"encoding/json"
	"time"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/store"
)

// PaymentToClient converts a stored payment into the shape the app API and
// the webhook report. Metadata that is not a JSON object of strings is
// left out rather than reported half-read, and so is an order record kept
// where the pay parameters go (see OrderRecord).
func PaymentToClient(p store.Payment) client.Payment {
	out := client.Payment{
		Object:      "payment",
		ID:          p.ID,
		Flow:        p.Flow,
		MerchantID:  p.MerchantID,
		OutTradeNo:  p.OutTradeNo,
		AmountFen:   p.AmountFen,
		Description: p.Description,
		Status:      string(p.Status),
		TradeType:   p.TradeType,
		ReqDate:     p.ReqDate,
		ReqSeqID:    p.ReqSeqID,
		NkpSeqID:    p.NkpSeqID,
		PartyOrder:  p.PartyOrderID,
		OutTransID:  p.OutTransID,
		RefundedFen: p.RefundedFen,
		CreatedAt:   p.CreatedAt.UTC(),
		ExpiresAt:   timePtr(p.ExpiresAt),
		FinishedAt:  timePtr(p.FinishedAt),
	}
	if p.Status == store.StatusFailed {
		out.FailureCode, out.FailureMessage = failureOf(p.UpstreamFields)
	}
	if HasPayParams(p) && json.Valid(p.PayParams) {
		out.PayParams = append(json.RawMessage(nil), p.PayParams...)
	}
	if len(p.Metadata) > 0 {
		var md map[string]string
		if err := json.Unmarshal(p.Metadata, &md); err == nil && len(md) > 0 {
			out.Metadata = md
		}
	}
	return out
}

// failureOf reads why a payment failed from the verified upstream data that
// made it fail: the bank's code and message, or, when the upstream refused
// the order, the refusal's code and description.
func failureOf(upstream json.RawMessage) (code, message string) {
	if len(upstream) == 0 {
		return "", ""
	}
	var a struct {
		nkp.Result
		BankCode    string `json:"bank_code"`
		BankMessage string `json:"bank_message"`
	}
	if err := json.Unmarshal(upstream, &a); err != nil {
		return "", ""
	}
	if a.BankCode != "" || a.BankMessage != "" {
		return a.BankCode, a.BankMessage
	}
	if a.RespCode != "" && !a.Accepted() {
		return a.RespCode, a.RespDesc
	}
	return "", ""
}

// RefundToClient converts a stored refund into the shape the app API and
// the webhook report.
func RefundToClient(r store.Refund) client.Refund {
	return client.Refund{
		Object:      "refund",
		ID:          r.ID,
		PaymentID:   r.PaymentID,
		MerchantID:  r.MerchantID,
		OutRefundNo: r.OutRefundNo,
		AmountFen:   r.AmountFen,
		Reason:      r.Reason,
		Status:      string(r.Status),
		ReqDate:     r.ReqDate,
		ReqSeqID:    r.ReqSeqID,
		NkpSeqID:    r.NkpSeqID,
		CreatedAt:   r.CreatedAt.UTC(),
		FinishedAt:  timePtr(r.FinishedAt),
	}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
