package payments

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/pluginhost"
)

// Code is the stable code of an Error. The app API maps each code to its
// own error code and HTTP status; applications never see these values
// directly, so a code may be finer than the API's.
type Code string

// The codes of Error.
const (
	// The request is wrong; nothing was stored or sent.
	CodeInvalidField   Code = "invalid_field"
	CodeMissingField   Code = "missing_field"
	CodeAmountInvalid  Code = "amount_invalid"
	CodeAmountTooLarge Code = "amount_too_large"
	CodeUnknownFlow    Code = "unknown_flow"
	CodeMissingBuyer   Code = "missing_buyer"
	CodeUnsupported    Code = "unsupported"
	CodeCodeInvalid    Code = "code_invalid"

	// The request does not fit the state of what it names.
	CodeNotFound             Code = "not_found"
	CodeOutTradeNoConflict   Code = "out_trade_no_conflict"
	CodeOutRefundNoConflict  Code = "out_refund_no_conflict"
	CodePaymentNotRefundable Code = "payment_not_refundable"
	CodeRefundExceedsPayment Code = "refund_exceeds_payment"
	CodePaymentFinal         Code = "payment_final"
	// CodePaymentPending: another request is placing the payment's order
	// right now; the same request, repeated shortly, gets the outcome.
	CodePaymentPending Code = "payment_pending"

	// The upstream refused an order or a refund; its code and description
	// are in the message. Definitive: the same request is refused again.
	CodeUpstreamRejected Code = "upstream_rejected"
	// CodeCloseRejected: the upstream refused to close a payment (it may
	// be too young, or paid meanwhile).
	CodeCloseRejected Code = "close_rejected"

	// Transient trouble; the same request may be repeated.
	CodeUpstreamBadSignature Code = "upstream_bad_signature"
	CodeUpstreamUnavailable  Code = "upstream_unavailable"
	CodeUpstreamTimeout      Code = "upstream_timeout"
	CodePluginUnavailable    Code = "plugin_unavailable"
	CodePluginError          Code = "plugin_error"
	CodeCodeExchangeFailed   Code = "code_exchange_failed"
	CodeInternal             Code = "internal"
)

// Error is what the operations of this package return instead of a
// result: a stable code, a message fit for a developer, the request field
// at fault when there is one, and the cause, which is for logs only.
type Error struct {
	Code    Code
	Message string
	Field   string
	Err     error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return string(e.Code) + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func errorf(code Code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// internal wraps an unexpected failure (the store, an encoding) whose
// detail is for the logs only.
func internal(what string, err error) *Error {
	return &Error{Code: CodeInternal, Message: "internal error", Err: fmt.Errorf("%s: %w", what, err)}
}

// UpstreamError maps a failed upstream call: a call that ran out of time
// is CodeUpstreamTimeout, an answer that was unsigned or wrongly signed
// CodeUpstreamBadSignature, and every other trouble
// CodeUpstreamUnavailable. after, when not empty, tells the caller what
// became of its request (e.g. that a retry learns the outcome).
func UpstreamError(err error, after string) *Error {
	msg := func(s string) string {
		if after == "" {
			return s
		}
		return s + "; " + after
	}
	var ce *nkp.CallError
	if !errors.As(err, &ce) {
		if errors.Is(err, context.DeadlineExceeded) {
			return &Error{Code: CodeUpstreamTimeout, Message: msg("the upstream did not answer in time"), Err: err}
		}
		return &Error{Code: CodeUpstreamUnavailable, Message: msg("the upstream call failed"), Err: err}
	}
	switch ce.Kind {
	case nkp.KindTimeout:
		return &Error{Code: CodeUpstreamTimeout, Message: msg("the upstream did not answer in time"), Err: err}
	case nkp.KindBadSignature:
		return &Error{Code: CodeUpstreamBadSignature, Message: msg("the upstream's answer is unsigned or its signature does not verify; it was not trusted"), Err: err}
	case nkp.KindStatus:
		return &Error{Code: CodeUpstreamUnavailable, Message: msg(fmt.Sprintf("the upstream answered HTTP %d", ce.StatusCode)), Err: err}
	case nkp.KindRequest:
		return &Error{Code: CodeInternal, Message: "the upstream request could not be built", Err: err}
	}
	return &Error{Code: CodeUpstreamUnavailable, Message: msg("the upstream could not be reached or answered garbage"), Err: err}
}

// PluginError maps a failed flow plugin call.
func PluginError(err error) *Error {
	switch {
	case errors.Is(err, pluginhost.ErrUnknownFlow):
		return &Error{Code: CodeUnknownFlow, Field: "flow", Message: "this flow is not enabled", Err: err}
	case pluginUnavailable(err):
		return &Error{Code: CodePluginUnavailable, Message: "the flow plugin is restarting; retry shortly", Err: err}
	}
	var pe *plugin.Error
	if !errors.As(err, &pe) {
		return &Error{Code: CodePluginError, Message: "the flow plugin failed", Err: err}
	}
	switch pe.Code {
	case plugin.CodeInvalidBuyer:
		field := prefixField("buyer", pe.Field)
		if field == "" {
			field = "buyer"
		}
		return &Error{Code: CodeMissingBuyer, Field: field, Message: pe.Message}
	case plugin.CodeInvalidRequest:
		return &Error{Code: CodeInvalidField, Field: pe.Field, Message: pe.Message}
	case plugin.CodeUnsupported:
		return &Error{Code: CodeUnsupported, Field: "flow", Message: pe.Message}
	case plugin.CodeCodeInvalid:
		field := pe.Field
		if field == "" {
			field = "code"
		}
		return &Error{Code: CodeCodeInvalid, Field: field, Message: pe.Message}
	case plugin.CodeCodeExchangeFailed:
		return &Error{Code: CodeCodeExchangeFailed, Message: pe.Message}
	case plugin.CodeChannelUnavailable:
		return &Error{Code: CodeUpstreamUnavailable, Message: pe.Message}
	}
	return &Error{Code: CodePluginError, Message: pe.Message, Err: err}
}

// pluginUnavailable reports whether a plugin call failed because the
// plugin is not running (starting, restarting, died during the call):
// nothing was done and the same call succeeds later.
func pluginUnavailable(err error) bool {
	return errors.Is(err, pluginhost.ErrUnavailable) || errors.Is(err, plugin.ErrTransport)
}

func prefixField(prefix, field string) string {
	if field == "" || strings.HasPrefix(field, prefix) {
		return field
	}
	return prefix + "." + field
}
