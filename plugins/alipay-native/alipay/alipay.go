// Package alipay is the Alipay native flow: the upstream returns an Alipay
// cashier URL (qr_code) that a page shows as a QR code or loads in a web
// view, and that an app opens in Alipay through a deep link.
package alipay

import (
	"context"
	"log/slog"
	"strings"

	"github.com/paysidecar/paysidecar/plugins/internal/riskcheck"
	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/upstream"
)

// Name is the flow's name.
const Name = "alipay-native"

// Version is the flow's version.
const Version = "1.0.0"

// Field names of the order and its answer.
const (
	FieldAlipayData = upstream.FieldAlipayData
	FieldQRCode     = upstream.FieldQRCode
)

// deepLinkPrefix opens a URL in Alipay's scanner (app id 10000007).
const deepLinkPrefix = "alipays://platformapi/startapp?saId=10000007&qrcode="

// Flow is the Alipay native flow. It has no settings and is safe for
// concurrent use. Alipay native needs neither OAuth nor a code, so
// AuthorizeURL and ExchangeCode are the unsupported ones of the base.
type Flow struct {
	plugin.UnsupportedFlow
	logger *slog.Logger
}

var _ plugin.Flow = (*Flow)(nil)

// New returns the flow; it logs to logger (nil discards).
func New(logger *slog.Logger) *Flow {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Flow{logger: logger}
}

// Info implements plugin.Flow.
func (f *Flow) Info(context.Context) (plugin.Info, error) {
	// No settings: the SDK refuses any given before they reach the flow,
	// and the base's Configure accepts the empty configuration.
	return plugin.Info{Name: Name, Version: Version, TradeType: upstream.TradeAlipayNative, Buyer: plugin.BuyerOptional}, nil
}

// ShapeOrder implements plugin.Flow. An A_NATIVE order needs no buyer;
// when the buyer's Alipay user id is known (Buyer.OpenID) it is passed on
// as alipay_data.buyer_id.
func (f *Flow) ShapeOrder(_ context.Context, in plugin.OrderInput) (plugin.OrderShape, error) {
	if strings.TrimSpace(in.Buyer.Code) != "" {
		return plugin.OrderShape{}, plugin.Errorf(plugin.CodeInvalidBuyer, "buyer.code", "Alipay native takes no code; give the buyer's Alipay user id or nothing")
	}
	fields := map[string]string{}
	if buyerID := strings.TrimSpace(in.Buyer.OpenID); buyerID != "" {
		data, err := upstream.Encode(upstream.AlipayData{BuyerID: buyerID})
		if err != nil {
			return plugin.OrderShape{}, plugin.Errorf(plugin.CodeInternal, "", "encode alipay_data: %v", err)
		}
		fields[FieldAlipayData] = data
	}
	risk, err := riskcheck.Data(in.ClientIP)
	if err != nil {
		return plugin.OrderShape{}, err
	}
	if risk != "" {
		fields[riskcheck.Field] = risk
	}
	var buyer plugin.Identity
	if in.Buyer.OpenID != "" {
		buyer = plugin.Identity{OpenID: strings.TrimSpace(in.Buyer.OpenID)}
	}
	return plugin.OrderShape{TradeType: upstream.TradeAlipayNative, Fields: fields, Buyer: buyer, PayParams: new(payRecipe)}, nil
}

// payRecipe is the pay parameters {"qr_code": url, "deep_link":
// "alipays://platformapi/startapp?saId=10000007&qrcode=<url-encoded url>"}
// as a function of the answer's qr_code, which must be an http or https
// URL. ShapeOrder hands it to the host, which builds them itself.
var payRecipe = plugin.PayRecipe{Kind: upstream.KindAlipayNative, Root: plugin.PayValue{Op: plugin.PayObject, Members: []plugin.PayMember{
	{Name: "qr_code", Value: plugin.PayValue{Op: plugin.PayURL, Field: FieldQRCode}},
	{Name: "deep_link", Value: plugin.PayValue{Op: plugin.PayEscapedURL, Field: FieldQRCode, Prefix: deepLinkPrefix}},
}}}

// PayParams implements plugin.Flow: payRecipe built from the answer, for
// the paths where the host builds pay parameters from a kept answer.
func (f *Flow) PayParams(_ context.Context, in plugin.PayParamsInput) (plugin.PayParams, error) {
	return payRecipe.Build(in.Upstream)
}
