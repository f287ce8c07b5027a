package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/payments"
)

// Error codes of checkouts.
const (
	// CodeCheckoutPaid: a buyer already began to pay the checkout; a
	// checkout is paid at most once.
	CodeCheckoutPaid = "checkout_paid"
	// CodeCheckoutExpired: the checkout was not paid before it expired.
	CodeCheckoutExpired = "checkout_expired"
)

// registerCheckouts adds the checkout routes to mux.
func (s *Server) registerCheckouts(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/checkouts", s.idempotent(s.createCheckout))
	mux.HandleFunc("GET /v1/checkouts/{id}", s.handle(s.getCheckout))
	mux.HandleFunc("POST /v1/checkouts/{id}/pay", s.idempotent(s.payCheckout))
}

func (s *Server) createCheckout(ctx context.Context, _ *http.Request, body []byte) (int, any, error) {
	var req client.CreateCheckoutRequest
	if err := decodeStrict(body, &req); err != nil {
		return 0, nil, err
	}
	c, err := s.payments.CreateCheckout(ctx, payments.CreateCheckoutInput{Request: req, AmountGiven: given(body)["amount_fen"]})
	if err != nil {
		return 0, nil, fromCheckout(err)
	}
	return http.StatusCreated, c, nil
}

func (s *Server) getCheckout(ctx context.Context, r *http.Request) (int, any, error) {
	c, err := s.payments.GetCheckout(ctx, r.PathValue("id"))
	if err != nil {
		return 0, nil, fromCheckout(err)
	}
	return http.StatusOK, c, nil
}

func (s *Server) payCheckout(ctx context.Context, r *http.Request, body []byte) (int, any, error) {
	var req client.PayCheckoutRequest
	if err := decodeStrict(body, &req); err != nil {
		return 0, nil, err
	}
	out, err := s.payments.PayCheckout(ctx, payments.PayCheckoutInput{CheckoutID: r.PathValue("id"), Request: req})
	if err != nil {
		return 0, nil, fromCheckout(err)
	}
	if out.Pending {
		return http.StatusAccepted, provisional{value: out.Payment, retryAfter: out.RetryAfter}, nil
	}
	return http.StatusCreated, out.Payment, nil
}

// fromCheckout maps the checkout codes of package payments, and the others
// as fromService does.
func fromCheckout(err error) error {
	var e *payments.Error
	if errors.As(err, &e) {
		switch e.Code {
		case payments.CodeCheckoutPaid:
			return &Error{Status: http.StatusConflict, Code: CodeCheckoutPaid, Field: e.Field, Message: e.Message, Err: e.Err}
		case payments.CodeCheckoutExpired:
			return &Error{Status: http.StatusGone, Code: CodeCheckoutExpired, Field: e.Field, Message: e.Message, Err: e.Err}
		}
	}
	return fromService(err)
}
