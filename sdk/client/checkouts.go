package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// CreateCheckoutRequest is the body of POST /v1/checkouts: a payment
// offered before any buyer is known, to be paid from the flow's app (a
// WeChat mini-program) that a page or a native app opens with the
// checkout's links.
type CreateCheckoutRequest struct {
	// Flow is the flow that opens and pays the checkout; it must support
	// launch links. It may be left out when exactly one running flow does.
	Flow        string `json:"flow,omitempty"`
	OutTradeNo  string `json:"out_trade_no"`
	AmountFen   int64  `json:"amount_fen"`
	Description string `json:"description"`
	// ExpiresInSeconds is how long the checkout can be paid, 60 seconds
	// to 7 days; 30 minutes when zero. Its links expire with it.
	ExpiresInSeconds int64 `json:"expires_in_seconds,omitempty"`
	// MerchantID is the huifu_id of the merchant doing the trade, for a
	// service provider acting for many; the configured default otherwise.
	MerchantID string `json:"merchant_id,omitempty"`
}

// Checkout is a checkout as the API reports it.
type Checkout struct {
	Object      string `json:"object"` // "checkout"
	ID          string `json:"id"`
	Flow        string `json:"flow"`
	MerchantID  string `json:"merchant_id"`
	OutTradeNo  string `json:"out_trade_no"`
	AmountFen   int64  `json:"amount_fen"`
	Description string `json:"description"`
	// Status is "open" (it can be paid), "expired" (it was not paid in
	// time) or "used" (a buyer began to pay it; PaymentID names the
	// payment once it is placed, and Payment says how it stands).
	Status string `json:"status"`
	// Query is what the paying page receives in its launch query,
	// "checkout=<id>"; every link carries it.
	Query     string        `json:"query"`
	Links     CheckoutLinks `json:"links"`
	PaymentID string        `json:"payment_id,omitempty"`
	Payment   *Payment      `json:"payment,omitempty"`
	ExpiresAt time.Time     `json:"expires_at"`
	CreatedAt time.Time     `json:"created_at"`
}

// CheckoutLinks are the ways to open the paying page of a checkout from
// outside the flow's app. A flow fills in those it has.
type CheckoutLinks struct {
	// URLScheme is a URL Scheme (weixin://dl/business/?t=…) for a page in
	// a phone's browser, valid until URLSchemeExpiresAt.
	URLScheme          string     `json:"url_scheme,omitempty"`
	URLSchemeExpiresAt *time.Time `json:"url_scheme_expires_at,omitempty"`
	// URLLink is a URL Link (https://wxaurl.cn/…), which also opens from
	// text messages and e-mail, valid until URLLinkExpiresAt.
	URLLink          string     `json:"url_link,omitempty"`
	URLLinkExpiresAt *time.Time `json:"url_link_expires_at,omitempty"`
	// PlainScheme is weixin://dl/business/?appid=…&path=…&query=…&env_version=…,
	// which needs no API call, for mini-programs that enabled it.
	PlainScheme string `json:"plain_scheme,omitempty"`
	// App is what a native app passes to WXLaunchMiniProgram.
	App *AppLaunch `json:"app,omitempty"`
}

// AppLaunch is what a native app needs to open the mini-program.
type AppLaunch struct {
	// UserName is the mini-program's original id, gh_….
	UserName string `json:"user_name"`
	// Path is the page with the checkout's query.
	Path string `json:"path"`
	// MiniProgramType is 0 release, 1 develop (test), 2 trial (preview).
	MiniProgramType int `json:"mini_program_type"`
}

// PayCheckoutRequest is the body of POST /v1/checkouts/{id}/pay, sent by
// the app's back end for the paying page with the buyer's login code.
type PayCheckoutRequest struct {
	// Code is the wx.login code of the buyer in the mini-program.
	Code string `json:"code"`
	// ClientIP is the buyer's IP address as the back end saw it.
	ClientIP string `json:"client_ip,omitempty"`
}

// CreateCheckout creates a checkout and answers it with its links.
func (c *Client) CreateCheckout(ctx context.Context, req CreateCheckoutRequest, opts ...RequestOption) (Checkout, error) {
	var out Checkout
	err := c.Do(ctx, http.MethodPost, "/v1/checkouts", req, &out, opts...)
	return out, err
}

// GetCheckout returns a checkout and, once it was paid, its payment.
func (c *Client) GetCheckout(ctx context.Context, id string) (Checkout, error) {
	var out Checkout
	err := c.Do(ctx, http.MethodGet, "/v1/checkouts/"+url.PathEscape(id), nil, &out)
	return out, err
}

// PayCheckout pays a checkout with the buyer's login code and answers the
// payment, whose pay parameters the paying page needs.
func (c *Client) PayCheckout(ctx context.Context, id string, req PayCheckoutRequest, opts ...RequestOption) (Payment, error) {
	var out Payment
	err := c.Do(ctx, http.MethodPost, "/v1/checkouts/"+url.PathEscape(id)+"/pay", req, &out, opts...)
	return out, err
}
