package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/payments"
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

// fromService maps an error of package payments to the API's answer; any
// other error is returned as it is and answered as an internal error.
func fromService(err error) error {
	var e *payments.Error
	if !errors.As(err, &e) {
		return err
	}
	if ae := fromMerchantCode(e); ae != nil {
		return ae
	}
	switch e.Code {
	case payments.CodeInvalidField:
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidField, Field: e.Field, Message: e.Message, Err: e.Err}
	case payments.CodeMissingField:
		return &Error{Status: http.StatusBadRequest, Code: CodeMissingField, Field: e.Field, Message: e.Message, Err: e.Err}
	case payments.CodeAmountInvalid:
		return &Error{Status: http.StatusBadRequest, Code: CodeAmountInvalid, Field: e.Field, Message: e.Message, Err: e.Err}
	case payments.CodeAmountTooLarge:
		return &Error{Status: http.StatusBadRequest, Code: CodeAmountTooLarge, Field: e.Field, Message: e.Message, Err: e.Err}
	case payments.CodeUnknownFlow:
		return &Error{Status: http.StatusBadRequest, Code: CodeUnknownFlow, Field: e.Field, Message: e.Message, Err: e.Err}
	case payments.CodeMissingBuyer:
		return &Error{Status: http.StatusBadRequest, Code: CodeMissingBuyer, Field: e.Field, Message: e.Message, Err: e.Err}
	case payments.CodeUnsupported:
		return &Error{Status: http.StatusBadRequest, Code: CodeUnsupported, Field: e.Field, Message: e.Message, Err: e.Err}
	case payments.CodeCodeInvalid:
		return &Error{Status: http.StatusBadRequest, Code: CodeCodeInvalid, Field: e.Field, Message: e.Message, Err: e.Err}
	case payments.CodeNotFound:
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Field: e.Field, Message: e.Message, Err: e.Err}
	case payments.CodeOutTradeNoConflict:
		return &Error{Status: http.StatusConflict, Code: CodeOutTradeNoConflict, Field: e.Field, Message: e.Message, Err: e.Err}
	case payments.CodeOutRefundNoConflict:
		return &Error{Status: http.StatusConflict, Code: CodeOutRefundNoConflict, Field: e.Field, Message: e.Message, Err: e.Err}
	case payments.CodePaymentNotRefundable:
		return &Error{Status: http.StatusConflict, Code: CodePaymentNotRefundable, Field: e.Field, Message: e.Message, Err: e.Err}
	case payments.CodeRefundExceedsPayment:
		return &Error{Status: http.StatusUnprocessableEntity, Code: CodeRefundExceedsPayment, Field: e.Field, Message: e.Message, Err: e.Err}
	case payments.CodePaymentFinal:
		return &Error{Status: http.StatusConflict, Code: CodePaymentFinal, Field: e.Field, Message: e.Message, Err: e.Err}
	case payments.CodePaymentPending:
		return &Error{Status: http.StatusConflict, Code: CodePaymentPending, Field: e.Field, Message: e.Message, Err: e.Err}
	case payments.CodeUpstreamRejected:
		return &Error{Status: http.StatusUnprocessableEntity, Code: CodeUpstreamRejected, Field: e.Field, Message: e.Message, Err: e.Err}
	case payments.CodeCloseRejected:
		return &Error{Status: http.StatusConflict, Code: CodeUpstreamRejected, Field: e.Field, Message: e.Message, Err: e.Err}
	case payments.CodeUpstreamBadSignature:
		return &Error{Status: http.StatusBadGateway, Code: CodeUpstreamBadSignature, Field: e.Field, Message: e.Message, Err: e.Err}
	case payments.CodeUpstreamUnavailable:
		return &Error{Status: http.StatusBadGateway, Code: CodeUpstreamUnavailable, Field: e.Field, Message: e.Message, Err: e.Err}
	case payments.CodeUpstreamTimeout:
		return &Error{Status: http.StatusGatewayTimeout, Code: CodeUpstreamTimeout, Field: e.Field, Message: e.Message, Err: e.Err}
	case payments.CodePluginUnavailable:
		return &Error{Status: http.StatusServiceUnavailable, Code: CodePluginUnavailable, Field: e.Field, Message: e.Message, Err: e.Err}
	case payments.CodePluginError:
		return &Error{Status: http.StatusBadGateway, Code: CodePluginError, Field: e.Field, Message: e.Message, Err: e.Err}
	case payments.CodeCodeExchangeFailed:
		return &Error{Status: http.StatusBadGateway, Code: CodeCodeExchangeFailed, Field: e.Field, Message: e.Message, Err: e.Err}
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error", Err: e}
}
