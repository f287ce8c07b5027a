package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/paysidecar/paysidecar/sdk/client"
)

// Error codes the app API answers with. They are stable: applications
// branch on them.
const (
	CodeInvalidJSON           = "invalid_json"
	CodeUnknownField          = "unknown_field"
	CodeInvalidField          = "invalid_field"
	CodeMissingField          = "missing_field"
	CodeBodyTooLarge          = "body_too_large"
	CodeUnsupportedMediaType  = "unsupported_media_type"
	CodeAmountInvalid         = "amount_invalid"
	CodeAmountTooLarge        = "amount_too_large"
	CodeUnknownFlow           = "unknown_flow"
	CodeMissingBuyer          = "missing_buyer"
	CodeNotFound              = "not_found"
	CodeMethodNotAllowed      = "method_not_allowed"
	CodeUnauthorized          = "unauthorized"
	CodeOutTradeNoConflict    = "out_trade_no_conflict"
	CodeOutRefundNoConflict   = "out_refund_no_conflict"
	CodeIdempotencyMismatch   = "idempotency_key_mismatch"
	CodeIdempotencyInUse      = "idempotency_key_in_use"
	CodeIdempotencyKeyInvalid = "idempotency_key_invalid"
	CodePaymentNotRefundable  = "payment_not_refundable"
	CodeRefundExceedsPayment  = "refund_exceeds_payment"
	CodePaymentFinal          = "payment_final"
	CodePaymentPending        = "payment_pending"
	CodePathNotAllowed        = "path_not_allowed"
	CodeUpstreamRejected      = "upstream_rejected"
	CodeUpstreamBadSignature  = "upstream_bad_signature"
	CodeUpstreamUnavailable   = "upstream_unavailable"
	CodeUpstreamTimeout       = "upstream_timeout"
	CodePluginUnavailable     = "plugin_unavailable"
	CodePluginError           = "plugin_error"
	CodeCodeInvalid           = "code_invalid"
	CodeCodeExchangeFailed    = "code_exchange_failed"
	CodeUnsupported           = "unsupported"
	CodeInternal              = "internal"
)

// Error is an answer the API gives instead of a result. It carries the HTTP
// status, a stable code, a message fit for a developer, and the request
// field at fault when there is one.
type Error struct {
	Status  int
	Code    string
	Message string
	Field   string
	// Err is the cause, logged but never shown to the caller.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func errorf(status int, code, field, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

func badRequest(code, field, format string, args ...any) *Error {
	return errorf(http.StatusBadRequest, code, field, format, args...)
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
	_, _ = w.Write([]byte("\n"))
}

// errorBody renders err as the API's error JSON and returns its status.
func errorBody(err error) (int, []byte) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error", Err: err}
	}
	b, _ := json.Marshal(client.ErrorBody{Error: client.ErrorDetail{Code: e.Code, Message: e.Message, Field: e.Field}})
	return e.Status, b
}
