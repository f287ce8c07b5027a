// Package unionpay is the UnionPay QR flow (U_NATIVE, the seed's 银联云闪付):
// the upstream answers a UnionPay QR code URL (qr_code) that the buyer
// pays with UnionPay QuickPass or a bank's app, scanning it from a page
// or opening it on the phone. It is written only against the plugin SDK.
package unionpay

import (
	"context"
	"sync/atomic"

	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/upstream"
)

// Name is the flow's name.
const Name = "unionpay-native"

// Version is the flow's version.
const Version = "1.0.0"

// SettingFrontURL is the setting of the page UnionPay sends the buyer back
// to after paying (unionpay_data.front_url).
const SettingFrontURL = "front_url"

// Schema is the flow's settings.
var Schema = plugin.Schema{
	{Key: SettingFrontURL, Type: plugin.TypeURL, Description: "Page UnionPay sends the buyer back to after paying; none when empty."},
}

// data is the content of unionpay_data.
type data struct {
	FrontURL string `json:"front_url,omitempty"`
}

// payRecipe is the pay parameters {"qr_code": url}: the UnionPay QR code
// URL of the answer, shown as a QR code or opened on the buyer's phone.
// ShapeOrder hands it to the host, which builds them itself.
var payRecipe = plugin.PayRecipe{Kind: upstream.KindUnionPayNative, Root: plugin.PayValue{Op: plugin.PayObject, Members: []plugin.PayMember{
	{Name: "qr_code", Value: plugin.PayValue{Op: plugin.PayURL, Field: upstream.FieldQRCode}},
}}}

// Flow is the UnionPay QR flow. It is safe for concurrent use; Configure
// replaces its settings atomically.
type Flow struct {
	plugin.UnsupportedFlow
	frontURL atomic.Pointer[string]
}

var _ plugin.Flow = (*Flow)(nil)

// New returns the flow.
func New() *Flow { return &Flow{} }

// Info implements plugin.Flow. A UnionPay QR order takes no buyer: whoever
// scans the code pays.
func (f *Flow) Info(context.Context) (plugin.Info, error) {
	return plugin.Info{
		Name: Name, Version: Version, TradeType: upstream.TradeUnionPayNative,
		Buyer: plugin.BuyerNone, Settings: Schema,
	}, nil
}

// Configure implements plugin.Flow; the SDK has checked the settings.
func (f *Flow) Configure(_ context.Context, c plugin.Config) error {
	front := c.Settings.Get(SettingFrontURL)
	f.frontURL.Store(&front)
	return nil
}

// ShapeOrder implements plugin.Flow: a U_NATIVE order with unionpay_data
// when front_url is set, and risk_check_data when the buyer's IP is known.
func (f *Flow) ShapeOrder(_ context.Context, in plugin.OrderInput) (plugin.OrderShape, error) {
	if in.Buyer != (plugin.Buyer{}) {
		return plugin.OrderShape{}, plugin.Errorf(plugin.CodeInvalidBuyer, "buyer", "a UnionPay QR order takes no buyer: whoever scans the code pays")
	}
	fields := map[string]string{}
	if front := f.frontURL.Load(); front != nil && *front != "" {
		s, err := upstream.Encode(data{FrontURL: *front})
		if err != nil {
			return plugin.OrderShape{}, plugin.Errorf(plugin.CodeInternal, "", "encode unionpay_data: %v", err)
		}
		fields[upstream.FieldUnionPayData] = s
	}
	ip, ok := upstream.ClientIP(in.ClientIP)
	if !ok {
		return plugin.OrderShape{}, plugin.Errorf(plugin.CodeInvalidRequest, "client_ip", "client_ip must be an IPv4 or IPv6 address")
	}
	if ip != "" {
		s, err := upstream.Encode(upstream.RiskCheckData{IPAddr: ip})
		if err != nil {
			return plugin.OrderShape{}, plugin.Errorf(plugin.CodeInternal, "", "encode risk_check_data: %v", err)
		}
		fields[upstream.FieldRiskCheckData] = s
	}
	return plugin.OrderShape{TradeType: upstream.TradeUnionPayNative, Fields: fields, PayParams: new(payRecipe)}, nil
}

// PayParams implements plugin.Flow: payRecipe built from the answer, for
// the paths where the host builds pay parameters from a kept answer.
func (f *Flow) PayParams(_ context.Context, in plugin.PayParamsInput) (plugin.PayParams, error) {
	return payRecipe.Build(in.Upstream)
}
