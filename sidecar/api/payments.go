package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/payments"
)

// given reports which top-level members a JSON object body names, so that
// an absent field can be told from a zero one. The body has already been
// decoded strictly.
func given(body []byte) map[string]bool {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(body, &m)
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

func (s *Server) createPayment(ctx context.Context, _ *http.Request, body []byte) (int, any, error) {
	var req client.CreatePaymentRequest
	if err := decodeStrict(body, &req); err != nil {
		return 0, nil, err
	}
	hash, names := fingerprint(body)
	out, err := s.payments.Create(ctx, payments.CreateInput{Request: req, AmountGiven: names["amount_fen"], Hash: hash})
	if err != nil {
		return 0, nil, fromService(err)
	}
	switch {
	case out.Pending:
		return http.StatusAccepted, provisional{value: out.Payment, retryAfter: out.RetryAfter}, nil
	case out.Created:
		return http.StatusCreated, out.Payment, nil
	}
	return http.StatusOK, out.Payment, nil
}

func (s *Server) getPayment(ctx context.Context, r *http.Request) (int, any, error) {
	p, err := s.payments.Get(ctx, r.PathValue("id"))
	if err != nil {
		return 0, nil, fromService(err)
	}
	return http.StatusOK, p, nil
}

func (s *Server) findPayment(ctx context.Context, r *http.Request) (int, any, error) {
	q := r.URL.Query()
	p, err := s.payments.Find(ctx, q.Get("merchant_id"), q.Get("out_trade_no"))
	if err != nil {
		return 0, nil, fromService(err)
	}
	return http.StatusOK, p, nil
}

func (s *Server) closePayment(ctx context.Context, r *http.Request, body []byte) (int, any, error) {
	if len(bytes.TrimSpace(body)) > 0 {
		var empty struct{}
		if err := decodeStrict(body, &empty); err != nil {
			return 0, nil, err
		}
	}
	p, closed, err := s.payments.Close(ctx, r.PathValue("id"))
	if err != nil {
		return 0, nil, fromService(err)
	}
	if !closed {
		// The close is being processed; the reverse query reports it.
		return http.StatusAccepted, p, nil
	}
	return http.StatusOK, p, nil
}

func (s *Server) createRefund(ctx context.Context, r *http.Request, body []byte) (int, any, error) {
	var req client.CreateRefundRequest
	if err := decodeStrict(body, &req); err != nil {
		return 0, nil, err
	}
	id := r.PathValue("id")
	rf, created, known, err := s.payments.Refund(ctx, payments.RefundInput{
		PaymentID: id, Request: req, AmountGiven: given(body)["amount_fen"],
		Hash: requestHash(append([]byte(id+"\n"), body...)),
	})
	return refundAnswer(rf, created, known, err)
}

// refundAnswer is the status and body of a refund request's answer: 201
// for a new refund, 200 for one requested before, 202 while an earlier
// attempt's state is not known yet.
func refundAnswer(rf client.Refund, created, known bool, err error) (int, any, error) {
	if err != nil {
		return 0, nil, fromService(err)
	}
	switch {
	case !known:
		// An earlier attempt got through; its state is not known yet.
		return http.StatusAccepted, provisional{value: rf}, nil
	case created:
		return http.StatusCreated, rf, nil
	}
	return http.StatusOK, rf, nil
}

func (s *Server) getRefund(ctx context.Context, r *http.Request) (int, any, error) {
	rf, err := s.payments.GetRefund(ctx, r.PathValue("id"))
	if err != nil {
		return 0, nil, fromService(err)
	}
	return http.StatusOK, rf, nil
}

func (s *Server) listRefunds(ctx context.Context, r *http.Request) (int, any, error) {
	refunds, err := s.payments.ListRefunds(ctx, r.PathValue("id"))
	if err != nil {
		return 0, nil, fromService(err)
	}
	return http.StatusOK, map[string]any{"refunds": refunds}, nil
}

// checkText refuses text fields of the helper endpoints like the payment
// fields.
func checkText(fields map[string]string) error {
	for name, v := range fields {
		if err := payments.CheckText(name, v); err != nil {
			return fromService(err)
		}
	}
	return nil
}
