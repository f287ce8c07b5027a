package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls the paysidecar app API.
type Client struct {
	base  string
	http  *http.Client
	token string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends requests with hc instead of http.DefaultClient.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithToken sends "Authorization: Bearer token" with every request.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// New returns a client for the sidecar at baseURL, e.g.
// "http://127.0.0.1:8080".
func New(baseURL string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), http: http.DefaultClient}
	for _, o := range opts {
		o(c)
	}
	return c
}

// APIError is an error answer of the API.
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	ErrorDetail
}

// Error implements error.
func (e *APIError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("paysidecar: HTTP %d %s (%s): %s", e.StatusCode, e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("paysidecar: HTTP %d %s: %s", e.StatusCode, e.Code, e.Message)
}

// RequestOption adds to one request.
type RequestOption func(*http.Request)

// IdempotencyKey makes a POST safe to retry: the first answer is replayed
// for at least 24 hours.
func IdempotencyKey(key string) RequestOption {
	return func(r *http.Request) { r.Header.Set("Idempotency-Key", key) }
}

// Do sends a request and decodes a 2xx answer into out (when not nil).
// Any other answer is returned as *APIError.
func (c *Client) Do(ctx context.Context, method, path string, in, out any, opts ...RequestOption) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("paysidecar: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("paysidecar: build request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("paysidecar: %s %s: %w", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("paysidecar: read answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return apiError(resp.StatusCode, raw)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("paysidecar: decode answer: %w", err)
	}
	return nil
}

// apiError is the *APIError of an answer that is not 2xx.
func apiError(status int, raw []byte) *APIError {
	var eb ErrorBody
	if json.Unmarshal(raw, &eb) != nil || eb.Error.Code == "" {
		eb.Error = ErrorDetail{Code: "http_" + strconv.Itoa(status), Message: strings.TrimSpace(string(raw))}
	}
	return &APIError{StatusCode: status, ErrorDetail: eb.Error}
}

// CreatePayment places a payment and returns it with the front end's pay
// parameters.
func (c *Client) CreatePayment(ctx context.Context, req CreatePaymentRequest, opts ...RequestOption) (Payment, error) {
	var p Payment
	err := c.Do(ctx, http.MethodPost, "/v1/payments", req, &p, opts...)
	return p, err
}

// GetPayment returns a payment, refreshed from the upstream when it is not
// final.
func (c *Client) GetPayment(ctx context.Context, id string) (Payment, error) {
	var p Payment
	err := c.Do(ctx, http.MethodGet, "/v1/payments/"+url.PathEscape(id), nil, &p)
	return p, err
}

// ClosePayment closes an unpaid payment.
func (c *Client) ClosePayment(ctx context.Context, id string, opts ...RequestOption) (Payment, error) {
	var p Payment
	err := c.Do(ctx, http.MethodPost, "/v1/payments/"+url.PathEscape(id)+"/close", struct{}{}, &p, opts...)
	return p, err
}

// CreateRefund refunds all or part of a succeeded payment.
func (c *Client) CreateRefund(ctx context.Context, paymentID string, req CreateRefundRequest, opts ...RequestOption) (Refund, error) {
	var r Refund
	err := c.Do(ctx, http.MethodPost, "/v1/payments/"+url.PathEscape(paymentID)+"/refunds", req, &r, opts...)
	return r, err
}

// RefundBy refunds all or part of the succeeded payment that req names by
// one of its identifiers, including a payment the sidecar did not place.
func (c *Client) RefundBy(ctx context.Context, req RefundByRequest, opts ...RequestOption) (Refund, error) {
	var r Refund
	err := c.Do(ctx, http.MethodPost, "/v1/refunds", req, &r, opts...)
	return r, err
}

// GetRefund returns a refund.
func (c *Client) GetRefund(ctx context.Context, id string) (Refund, error) {
	var r Refund
	err := c.Do(ctx, http.MethodGet, "/v1/refunds/"+url.PathEscape(id), nil, &r)
	return r, err
}

// EventRecord is an outbox event and its delivery state, as the events
// API reports it.
type EventRecord struct {
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	ObjectID      string          `json:"object_id"`
	OrderKey      string          `json:"order_key"`
	Seq           int64           `json:"seq"`
	Status        string          `json:"status"`
	Attempts      int             `json:"attempts"`
	NextAttemptAt *time.Time      `json:"next_attempt_at,omitempty"`
	LastError     string          `json:"last_error,omitempty"`
	CreatedAt     time.Time       `json:"created_at"`
	DeliveredAt   *time.Time      `json:"delivered_at,omitempty"`
	Payload       json.RawMessage `json:"payload"`
}

// EventPage is one page of events. When HasMore is set, NextAfter is the
// "after" value of the next page.
type EventPage struct {
	Data      []EventRecord `json:"data"`
	HasMore   bool          `json:"has_more"`
	NextAfter int64         `json:"next_after,omitempty"`
}

// ReplayResult is the answer to a bulk replay.
type ReplayResult struct {
	Replayed int `json:"replayed"`
}

// ListEvents returns a page of events in a delivery state ("dead",
// "pending" or "delivered"), oldest first, after the given cursor.
func (c *Client) ListEvents(ctx context.Context, status string, after int64, limit int) (EventPage, error) {
	q := url.Values{"status": {status}}
	if after > 0 {
		q.Set("after", strconv.FormatInt(after, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var p EventPage
	err := c.Do(ctx, http.MethodGet, "/v1/events?"+q.Encode(), nil, &p)
	return p, err
}

// ReplayEvent queues one delivered or dead event for delivery again.
func (c *Client) ReplayEvent(ctx context.Context, id string) (EventRecord, error) {
	var r EventRecord
	err := c.Do(ctx, http.MethodPost, "/v1/events/"+url.PathEscape(id)+"/replay", struct{}{}, &r)
	return r, err
}

// ReplayDead queues every dead letter for delivery again and returns how
// many there were.
func (c *Client) ReplayDead(ctx context.Context) (int, error) {
	var r ReplayResult
	err := c.Do(ctx, http.MethodPost, "/v1/events/replay", map[string]string{"status": "dead"}, &r)
	return r.Replayed, err
}
