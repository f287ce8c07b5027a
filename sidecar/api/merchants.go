package api

import (
	"net/http"

	"github.com/paysidecar/paysidecar/sidecar/payments"
)

// CodeUnknownMerchant: the request names a merchant the sidecar does not
// trade for; nothing was stored or sent.
const CodeUnknownMerchant = "unknown_merchant"

// fromMerchantCode maps the service-provider codes of package payments;
// nil for any other.
func fromMerchantCode(e *payments.Error) *Error {
	if e.Code == payments.CodeUnknownMerchant {
		return &Error{Status: http.StatusBadRequest, Code: CodeUnknownMerchant, Field: e.Field, Message: e.Message, Err: e.Err}
	}
	return nil
}
