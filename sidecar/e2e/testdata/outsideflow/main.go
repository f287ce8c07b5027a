// Command outside-pay is a flow plugin written in a module of its own that
// requires only the paysidecar plugin SDK, as a plugin author outside
// this repository writes one. It orders Alipay native trades and hands
// the front end the cashier URL.
package main

import (
	"context"

	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/upstream"
)

type flow struct {
	plugin.UnsupportedFlow
	note string
}

func (f *flow) Info(context.Context) (plugin.Info, error) {
	return plugin.Info{
		Name: "outside-pay", Version: "0.1.0", TradeType: upstream.TradeAlipayNative, Buyer: plugin.BuyerNone,
		Settings: plugin.Schema{{Key: "note", Default: "from outside", Description: "Echoed in the pay parameters."}},
	}, nil
}

func (f *flow) Configure(_ context.Context, c plugin.Config) error {
	f.note = c.Settings.Get("note")
	return nil
}

func (f *flow) ShapeOrder(context.Context, plugin.OrderInput) (plugin.OrderShape, error) {
	return plugin.OrderShape{TradeType: upstream.TradeAlipayNative}, nil
}

func (f *flow) PayParams(_ context.Context, in plugin.PayParamsInput) (plugin.PayParams, error) {
	b, err := upstream.JSON(upstream.Object{}.Set("cashier_url", in.Upstream[upstream.FieldQRCode]).Set("note", f.note))
	if err != nil {
		return plugin.PayParams{}, err
	}
	return plugin.PayParams{Kind: "outside", JSON: b}, nil
}

func main() { plugin.Serve(&flow{}) }
