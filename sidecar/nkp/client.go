package nkp

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// ErrorKind classifies why a call did not produce a verified answer.
type ErrorKind string

// The kinds of CallError.
const (
	// KindTransport means the request may or may not have reached the
	// upstream: connection refused, reset, or a timeout.
	KindTransport ErrorKind = "transport"
	// KindTimeout means the call ran out of time; the upstream may have
	// acted on it.
	KindTimeout ErrorKind = "timeout"
	// KindStatus means the upstream answered with a non-2xx HTTP status.
	KindStatus ErrorKind = "status"
	// KindBadSignature means the answer was unsigned or its signature did
	// not verify; its content must not be trusted.
	KindBadSignature ErrorKind = "bad_signature"
	// KindDecode means the answer was not the expected JSON.
	KindDecode ErrorKind = "decode"
	// KindRequest means the request could not be built; nothing was sent.
	KindRequest ErrorKind = "request"
)

// CallError reports a failed call. It never contains key material.
type CallError struct {
	// Path is the upstream path that was called.
	Path string
	// Kind classifies the failure.
	Kind ErrorKind
	// StatusCode is the HTTP status for KindStatus.
	StatusCode int
	// Err is the underlying error.
	Err error
}

// Error implements error.
func (e *CallError) Error() string {
	if e.Kind == KindStatus {
		return fmt.Sprintf("upstream %s: HTTP %d: %v", e.Path, e.StatusCode, e.Err)
	}
	return fmt.Sprintf("upstream %s: %s: %v", e.Path, e.Kind, e.Err)
}

// Unwrap returns the underlying error.
func (e *CallError) Unwrap() error { return e.Err }

// Sent reports whether the request may have reached the upstream, so that
// a retry could repeat an action.
func (e *CallError) Sent() bool { return e.Kind != KindRequest }

// Client signs calls to the upstream and verifies its answers.
type Client struct {
	// BaseURL is the upstream host, e.g. https://api.huifu.com.
	BaseURL string
	// SysID and ProductID go into every envelope.
	SysID     string
	ProductID string
	// Profile selects the field dialect.
	Profile Profile
	// Key is the merchant's RSA private key.
	Key *rsa.PrivateKey
	// UpstreamKey is the upstream's RSA public key, used to verify answers.
	UpstreamKey *rsa.PublicKey
	// UpstreamNextKey, when set, verifies answers as well, while the
	// upstream switches keys (see UpstreamKeys).
	UpstreamNextKey *rsa.PublicKey
	// Verified, when set, is told which key verified each answer:
	// KeyCurrent or KeyNext.
	Verified func(key string)
	// HTTP sends the requests. When nil, a shared client whose transport
	// keeps connections alive (see NewTransport) sends them.
	HTTP *http.Client
	// Timeout, when positive, bounds each call: sending the request and
	// reading the whole answer. It is applied as a deadline of the call's
	// context, which costs the HTTP client nothing; prefer it to
	// http.Client.Timeout, which, over a wrapped transport (an
	// instrumented one, say), costs a goroutine and a timer per request.
	Timeout time.Duration
	// MaxResponseBytes bounds the answer size; 1 MiB when zero.
	MaxResponseBytes int64
	// Observe, when set, is told about every call once it ends: its path,
	// its outcome (OutcomeAccepted, OutcomeRejected, or the ErrorKind of a
	// failed call) and how long it took. It must not block.
	Observe func(ctx context.Context, path, outcome string, elapsed time.Duration)
}

// Outcomes of a call that produced a verified answer, as reported to
// Client.Observe; a failed call reports its ErrorKind.
const (
	// OutcomeAccepted: the answer's resp_code accepted the call
	// (00000000 or 00000100).
	OutcomeAccepted = "accepted"
	// OutcomeRejected: the answer's resp_code is any other code.
	OutcomeRejected = "rejected"
)

// Call signs data (NKP field names, translated to the profile's dialect),
// posts it to path and returns the verified answer's data, translated back
// to NKP names. An answer that is unsigned or wrongly signed is refused with
// KindBadSignature.
func (c *Client) Call(ctx context.Context, path string, data map[string]any) (map[string]any, error) {
	start := time.Now()
	req, err := c.Prepare(path, data)
	if err != nil {
		c.observe(ctx, path, nil, err, start)
		return nil, err
	}
	return c.send(ctx, req, start)
}

// Signed is a request signed by Prepare, ready to be sent by Send. Its
// body is final: sending it again sends the very same bytes.
type Signed struct {
	path string
	body []byte
}

// Prepare signs data (NKP field names, translated to the profile's
// dialect) for path without sending it, so that a caller can sign while
// it does something else that must come before the send (a commit, say).
// Prepare only reads data; a failure is a *CallError of KindRequest.
func (c *Client) Prepare(path string, data map[string]any) (*Signed, error) {
	wire := make(map[string]any, len(data))
	for k, v := range data {
		wire[k] = v
	}
	c.Profile.ToWire(wire)
	body, err := EncodeRequest(c.Key, c.SysID, c.ProductID, wire)
	if err != nil {
		return nil, &CallError{Path: path, Kind: KindRequest, Err: err}
	}
	return &Signed{path: path, body: body}, nil
}

// Send posts a request signed by Prepare and returns the verified answer's
// data as Call does.
func (c *Client) Send(ctx context.Context, req *Signed) (map[string]any, error) {
	return c.send(ctx, req, time.Now())
}

// send posts req and tells Observe about the call begun at start.
func (c *Client) send(ctx context.Context, req *Signed, start time.Time) (map[string]any, error) {
	out, err := c.post(ctx, req)
	c.observe(ctx, req.path, out, err, start)
	return out, err
}

// observe tells Observe, when set, about a call begun at start that
// answered out or failed with err.
func (c *Client) observe(ctx context.Context, path string, out map[string]any, err error, start time.Time) {
	if c.Observe == nil {
		return
	}
	outcome := OutcomeAccepted
	var ce *CallError
	switch {
	case errors.As(err, &ce):
		outcome = string(ce.Kind)
	case err != nil:
		outcome = string(KindTransport)
	default:
		code, _ := out["resp_code"].(string)
		if !(Result{RespCode: code}).Accepted() {
			outcome = OutcomeRejected
		}
	}
	c.Observe(ctx, path, outcome, time.Since(start))
}

// post sends a signed request and verifies and decodes its answer.
func (c *Client) post(ctx context.Context, signed *Signed) (map[string]any, error) {
	path := signed.path
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.BaseURL, "/")+path, bytes.NewReader(signed.body))
	if err != nil {
		return nil, &CallError{Path: path, Kind: KindRequest, Err: err}
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, &CallError{Path: path, Kind: transportKind(ctx, err), Err: err}
	}
	defer func() { _ = resp.Body.Close() }()
	limit := c.MaxResponseBytes
	if limit <= 0 {
		limit = 1 << 20
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, &CallError{Path: path, Kind: transportKind(ctx, err), Err: err}
	}
	if int64(len(raw)) > limit {
		return nil, &CallError{Path: path, Kind: KindDecode, Err: fmt.Errorf("answer larger than %d bytes", limit)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &CallError{Path: path, Kind: KindStatus, StatusCode: resp.StatusCode, Err: errors.New(http.StatusText(resp.StatusCode))}
	}
	rawData, keyName, err := UpstreamKeys{Current: c.UpstreamKey, Next: c.UpstreamNextKey}.VerifyResponse(raw)
	if err == nil && c.Verified != nil {
		c.Verified(keyName)
	}
	if err != nil {
		kind := KindDecode
		if errors.Is(err, ErrBadSignature) {
			kind = KindBadSignature
		}
		return nil, &CallError{Path: path, Kind: kind, Err: err}
	}
	out, err := DecodeObject(rawData)
	if err != nil {
		return nil, &CallError{Path: path, Kind: KindDecode, Err: err}
	}
	c.Profile.FromWire(out)
	return out, nil
}

func transportKind(ctx context.Context, err error) ErrorKind {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded || (errors.As(err, &ne) && ne.Timeout()) {
		return KindTimeout
	}
	return KindTransport
}

// Do sends a typed request to path and decodes the verified answer into
// resp.
func (c *Client) Do(ctx context.Context, path string, req, resp any) error {
	data, err := ToMap(req)
	if err != nil {
		return &CallError{Path: path, Kind: KindRequest, Err: err}
	}
	out, err := c.Call(ctx, path, data)
	if err != nil {
		return err
	}
	if err := FromMap(out, resp); err != nil {
		return &CallError{Path: path, Kind: KindDecode, Err: err}
	}
	return nil
}

// ToMap turns a typed request into the data map that is signed; amounts
// become yuan strings through Fen.
func ToMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return DecodeObject(b)
}

// FromMap decodes a data map into a typed answer.
func FromMap(m map[string]any, v any) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode data: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode into %T: %w", v, err)
	}
	return nil
}

// JSPay orders a payment.
func (c *Client) JSPay(ctx context.Context, req JSPayRequest) (JSPayResponse, error) {
	var r JSPayResponse
	err := c.Do(ctx, PathJSPay, req, &r)
	return r, err
}

// QueryPayment asks for the state of a payment.
func (c *Client) QueryPayment(ctx context.Context, req PaymentQueryRequest) (PaymentQueryResponse, error) {
	var r PaymentQueryResponse
	err := c.Do(ctx, PathPaymentQuery, req, &r)
	return r, err
}

// Close closes an unpaid payment.
func (c *Client) Close(ctx context.Context, req CloseRequest) (CloseResponse, error) {
	var r CloseResponse
	err := c.Do(ctx, PathClose, req, &r)
	return r, err
}

// CloseQuery asks for the state of a close.
func (c *Client) CloseQuery(ctx context.Context, req CloseQueryRequest) (CloseResponse, error) {
	var r CloseResponse
	err := c.Do(ctx, PathCloseQuery, req, &r)
	return r, err
}

// Refund refunds all or part of a payment.
func (c *Client) Refund(ctx context.Context, req RefundRequest) (RefundResponse, error) {
	var r RefundResponse
	err := c.Do(ctx, PathRefund, req, &r)
	return r, err
}

// QueryRefund asks for the state of a refund.
func (c *Client) QueryRefund(ctx context.Context, req RefundQueryRequest) (RefundResponse, error) {
	var r RefundResponse
	err := c.Do(ctx, PathRefundQuery, req, &r)
	return r, err
}

// FileQuery asks for reconciliation files.
func (c *Client) FileQuery(ctx context.Context, req FileQueryRequest) (FileQueryResponse, error) {
	var r FileQueryResponse
	err := c.Do(ctx, PathFileQuery, req, &r)
	return r, err
}
