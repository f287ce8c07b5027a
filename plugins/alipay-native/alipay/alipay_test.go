package alipay_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/paysidecar/paysidecar/plugins/alipay-native/alipay"
	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/plugin/plugintest"
	"github.com/paysidecar/paysidecar/sdk/upstream"
)

func serve(t *testing.T) plugin.Flow {
	t.Helper()
	f := plugintest.Serve(t, alipay.New(nil))
	if _, err := plugintest.Configure(t.Context(), f, nil, plugin.Config{}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return f
}

func wantError(t *testing.T, err error, code, field string) {
	t.Helper()
	var pe *plugin.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error = %v (%T), want *plugin.Error %s", err, err, code)
	}
	if pe.Code != code || pe.Field != field {
		t.Errorf("error = %+v, want code %s field %q", pe, code, field)
	}
}

func TestInfoAndSettings(t *testing.T) {
	f := plugintest.Serve(t, alipay.New(nil))
	info, err := f.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "alipay-native" || info.TradeType != "A_NATIVE" || len(info.Capabilities) != 0 {
		t.Errorf("Info = %+v", info)
	}
	if info.Buyer != plugin.BuyerOptional {
		t.Errorf("buyer rule = %q", info.Buyer)
	}
	if _, err := plugintest.Configure(t.Context(), f, map[string]string{"app_id": "x"}, plugin.Config{}); plugintest.RefusedSetting(err) != "app_id" {
		t.Errorf("Configure with a setting: %v", err)
	}
}

func TestUnsupported(t *testing.T) {
	f := serve(t)
	_, err := f.AuthorizeURL(t.Context(), plugin.AuthorizeInput{RedirectURI: "https://a.example/"})
	wantError(t, err, plugin.CodeUnsupported, "")
	_, err = f.ExchangeCode(t.Context(), plugin.ExchangeInput{Code: "c"})
	wantError(t, err, plugin.CodeUnsupported, "")
}

func TestShapeOrder(t *testing.T) {
	cases := []struct {
		name string
		in   plugin.OrderInput
		want plugin.OrderShape
	}{
		{"no buyer: alipay_data left out", plugin.OrderInput{PaymentID: "p", AmountFen: 1},
			plugin.OrderShape{TradeType: "A_NATIVE", Fields: map[string]string{}}},
		{"buyer hint and client IP", plugin.OrderInput{Buyer: plugin.Buyer{OpenID: "2088102146225135"}, ClientIP: "192.0.2.1"},
			plugin.OrderShape{TradeType: "A_NATIVE",
				Fields: map[string]string{"alipay_data": `{"buyer_id":"2088102146225135"}`, "risk_check_data": `{"ip_addr":"192.0.2.1"}`},
				Buyer:  plugin.Identity{OpenID: "2088102146225135"}}},
	}
	f := serve(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := f.ShapeOrder(t.Context(), c.in)
			if err != nil {
				t.Fatal(err)
			}
			if got.TradeType != c.want.TradeType || got.Buyer != c.want.Buyer || len(got.Fields) != len(c.want.Fields) ||
				(len(c.want.Fields) > 0 && !reflect.DeepEqual(got.Fields, c.want.Fields)) {
				t.Errorf("ShapeOrder = %+v, want %+v", got, c.want)
			}
		})
	}
	_, err := f.ShapeOrder(t.Context(), plugin.OrderInput{Buyer: plugin.Buyer{Code: "auth-code"}})
	wantError(t, err, plugin.CodeInvalidBuyer, "buyer.code")
	_, err = f.ShapeOrder(t.Context(), plugin.OrderInput{ClientIP: "999.1.1.1"})
	wantError(t, err, plugin.CodeInvalidRequest, "client_ip")
}

// TestPayParams builds pay parameters both ways, from the recipe
// ShapeOrder gives and by calling PayParams, which must agree.
func TestPayParams(t *testing.T) {
	f := serve(t)
	shape, err := f.ShapeOrder(t.Context(), plugin.OrderInput{PaymentID: "p", AmountFen: 1})
	if err != nil {
		t.Fatal(err)
	}
	got, err := plugintest.PayParams(t, f, shape, plugin.PayParamsInput{TradeType: "A_NATIVE",
		Upstream: map[string]string{"qr_code": "https://qr.alipay.com/bax03431ljhokirwl38f00a7?x=1&y=2"}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"qr_code":"https://qr.alipay.com/bax03431ljhokirwl38f00a7?x=1&y=2",` +
		`"deep_link":"alipays://platformapi/startapp?saId=10000007&qrcode=https%3A%2F%2Fqr.alipay.com%2Fbax03431ljhokirwl38f00a7%3Fx%3D1%26y%3D2"}`
	if got.Kind != upstream.KindAlipayNative || string(got.JSON) != want {
		t.Errorf("PayParams = %s %s\nwant %s", got.Kind, got.JSON, want)
	}
	for _, qr := range []string{"", "  ", "javascript:alert(1)", "qr.alipay.com/x"} {
		_, err := plugintest.PayParams(t, f, shape, plugin.PayParamsInput{Upstream: map[string]string{"qr_code": qr}})
		wantError(t, err, plugin.CodeInvalidRequest, "qr_code")
	}
}
