package plugin

import (
	"errors"
	"fmt"
)

// Stable error codes. The host maps them to its API's answers, so a code
// once published keeps its meaning.
const (
	// CodeInvalidRequest means the input or a setting is malformed;
	// Field names it.
	CodeInvalidRequest = "invalid_request"
	// CodeInvalidBuyer means the buyer's identity is missing or unusable
	// for this flow.
	CodeInvalidBuyer = "invalid_buyer"
	// CodeUnsupported means the flow does not support the call.
	CodeUnsupported = "unsupported"
	// CodeCodeInvalid means the channel refused the code as invalid or
	// already used (WeChat errcode 40029, 40163).
	CodeCodeInvalid = "code_invalid"
	// CodeCodeExchangeFailed means the channel answered a code exchange
	// with any other error.
	CodeCodeExchangeFailed = "code_exchange_failed"
	// CodeChannelUnavailable means the channel could not be reached or
	// answered garbage.
	CodeChannelUnavailable = "channel_unavailable"
	// CodeInternal means anything else went wrong inside the plugin.
	CodeInternal = "internal"
)

// ErrTransport is wrapped by every error that reports a failure of the
// connection to the plugin rather than an answer from it: the process
// died, the transport broke, or the plugin does not speak the contract.
var ErrTransport = errors.New("plugin transport failure")

// Error is a failure a flow reports to the host. It crosses the gRPC
// boundary unchanged. Its Message must never contain a secret.
type Error struct {
	// Code is one of the stable Code constants.
	Code string
	// Message says what went wrong, for people.
	Message string
	// Field names the offending input or setting, when there is one.
	Field string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (field %s)", e.Code, e.Message, e.Field)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, &plugin.Error{Code: plugin.CodeUnsupported}) matches any
// unsupported-call error whatever its message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Errorf returns an *Error with the given code and field and a formatted
// message.
func Errorf(code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Unsupported returns the error of a method the flow does not support.
func Unsupported(flow, method string) *Error {
	return &Error{Code: CodeUnsupported, Message: fmt.Sprintf("flow %s does not support %s", flow, method)}
}

// ErrorCode returns the code of the *Error in err's chain, CodeInternal for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return CodeInternal
}
