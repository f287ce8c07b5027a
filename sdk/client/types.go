// Package client is the Go client for applications that call the
// paysidecar app API, and the home of the JSON shapes that API speaks.
// Applications in other languages use sdk/openapi.yaml, which describes the
// same shapes.
package client

import (
	"encoding/json"
	"time"
)

// Flow names, one per plugin.
const (
	FlowWeChatJSAPI   = "wechat-jsapi"
	FlowWeChatMiniApp = "wechat-miniapp"
	FlowAlipayNative  = "alipay-native"
)

// Payment and refund states as the API reports them.
const (
	StatusPending    = "pending"
	StatusProcessing = "processing"
	StatusSucceeded  = "succeeded"
	StatusFailed     = "failed"
	StatusClosed     = "closed"
)

// Buyer identifies who pays. For the WeChat flows give OpenID (with the
// AppID it belongs to when it is not the configured one), or Code, which the
// sidecar exchanges for an openid through the flow plugin.
type Buyer struct {
	OpenID string `json:"openid,omitempty"`
	AppID  string `json:"app_id,omitempty"`
	Code   string `json:"code,omitempty"`
}

// CreatePaymentRequest is the body of POST /v1/payments.
type CreatePaymentRequest struct {
	Flow        string `json:"flow"`
	OutTradeNo  string `json:"out_trade_no"`
	AmountFen   int64  `json:"amount_fen"`
	Description string `json:"description"`
	Buyer       *Buyer `json:"buyer,omitempty"`
	// ExpiresInSeconds bounds how long the order can be paid; the
	// upstream's default (about two hours) applies when zero.
	ExpiresInSeconds int64             `json:"expires_in_seconds,omitempty"`
	ClientIP         string            `json:"client_ip,omitempty"`
	Metadata         map[string]string `json:"metadata,omitempty"`
	// MerchantID is the huifu_id of the merchant doing the trade, for a
	// service provider acting for many; the configured default otherwise.
	MerchantID string `json:"merchant_id,omitempty"`
}

// Payment is a payment as the API reports it.
type Payment struct {
	Object      string            `json:"object"` // "payment"
	ID          string            `json:"id"`
	Flow        string            `json:"flow"`
	MerchantID  string            `json:"merchant_id"`
	OutTradeNo  string            `json:"out_trade_no"`
	AmountFen   int64             `json:"amount_fen"`
	Description string            `json:"description"`
	Status      string            `json:"status"`
	TradeType   string            `json:"trade_type"`
	ReqDate     string            `json:"req_date"`
	ReqSeqID    string            `json:"req_seq_id"`
	NkpSeqID    string            `json:"nkp_seq_id,omitempty"`
	PartyOrder  string            `json:"party_order_id,omitempty"`
	OutTransID  string            `json:"out_trans_id,omitempty"`
	RefundedFen int64             `json:"refunded_fen"`
	PayParams   json.RawMessage   `json:"pay_params,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	ExpiresAt   *time.Time        `json:"expires_at,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	FinishedAt  *time.Time        `json:"finished_at,omitempty"`

	// FailureCode and FailureMessage say why a failed payment failed:
	// the code and message the bank or channel gave (the upstream's
	// bank_code and bank_message), or, for an order the upstream refused,
	// its resp_code and resp_desc. Absent otherwise.
	FailureCode    string `json:"failure_code,omitempty"`
	FailureMessage string `json:"failure_message,omitempty"`
}

// CreateRefundRequest is the body of POST /v1/payments/{id}/refunds.
type CreateRefundRequest struct {
	OutRefundNo string `json:"out_refund_no"`
	AmountFen   int64  `json:"amount_fen"`
	Reason      string `json:"reason,omitempty"`
}

// RefundByRequest is the body of POST /v1/refunds: a refund of the payment
// named by exactly one of PaymentID, OutTradeNo, NkpSeqID (or HfSeqID, its
// DouGong name) and PartyOrderID. A payment the sidecar did not place is
// looked up upstream (OutTradeNo is then the req_seq_id it was placed
// with) and kept from then on like the sidecar's own.
type RefundByRequest struct {
	PaymentID    string `json:"payment_id,omitempty"`
	OutTradeNo   string `json:"out_trade_no,omitempty"`
	NkpSeqID     string `json:"nkp_seq_id,omitempty"`
	HfSeqID      string `json:"hf_seq_id,omitempty"`
	PartyOrderID string `json:"party_order_id,omitempty"`
	// MerchantID is the merchant's huifu_id; the default merchant when
	// empty.
	MerchantID string `json:"merchant_id,omitempty"`
	// PaymentDate is the day the payment was placed (yyyyMMdd, Beijing
	// time), for a payment looked up upstream; today when empty.
	PaymentDate string `json:"payment_date,omitempty"`
	OutRefundNo string `json:"out_refund_no"`
	AmountFen   int64  `json:"amount_fen"`
	Reason      string `json:"reason,omitempty"`
}

// Refund is a refund as the API reports it.
type Refund struct {
	Object      string     `json:"object"` // "refund"
	ID          string     `json:"id"`
	PaymentID   string     `json:"payment_id"`
	MerchantID  string     `json:"merchant_id"`
	OutRefundNo string     `json:"out_refund_no"`
	AmountFen   int64      `json:"amount_fen"`
	Reason      string     `json:"reason,omitempty"`
	Status      string     `json:"status"`
	ReqDate     string     `json:"req_date"`
	ReqSeqID    string     `json:"req_seq_id"`
	NkpSeqID    string     `json:"nkp_seq_id,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
}

// Event types delivered to the application's webhook.
const (
	EventPaymentSucceeded = "payment.succeeded"
	EventPaymentFailed    = "payment.failed"
	EventPaymentClosed    = "payment.closed"
	EventRefundSucceeded  = "refund.succeeded"
	EventRefundFailed     = "refund.failed"
	// EventRefundRequiresAttention says that a refund is still unfinished
	// when its query window (requery.refund_max_age) has ended. It is not
	// final: the sidecar goes on querying at a slow pace, and
	// refund.succeeded or refund.failed follows when the refund is final.
	EventRefundRequiresAttention = "refund.requires_attention"
)

// Event is the body of a webhook delivery. Its ID equals the webhook-id
// header and stays the same across retries and across the upstream's
// duplicate notifications.
type Event struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"created_at"`
	Data      EventData `json:"data"`
}

// EventData carries the normalized object and the verified upstream fields
// that produced the event (absent when a reverse query produced it without
// a notification, in which case the query answer is given).
type EventData struct {
	Payment  *Payment        `json:"payment,omitempty"`
	Refund   *Refund         `json:"refund,omitempty"`
	Upstream json.RawMessage `json:"upstream,omitempty"`
	// Source is "notification" or "query" (or "api" when the answer to
	// the creating call was already final).
	Source string `json:"source"`
	// Notification is the upstream's notification form exactly as
	// received and verified, present when Source is "notification". An
	// application that holds the upstream's public key can check Sign over
	// RespData itself.
	Notification *UpstreamNotification `json:"notification,omitempty"`
}

// UpstreamNotification is the upstream's asynchronous notification form as
// received: RespData is the raw JSON string that Sign covers.
type UpstreamNotification struct {
	RespCode string `json:"resp_code"`
	RespDesc string `json:"resp_desc"`
	RespData string `json:"resp_data"`
	Sign     string `json:"sign"`
}

// ErrorBody is the shape of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail describes an error with a stable code.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}
