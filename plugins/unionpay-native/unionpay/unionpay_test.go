package unionpay_test

import (
	"reflect"
	"testing"

	"github.com/paysidecar/paysidecar/plugins/unionpay-native/unionpay"
	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/plugin/plugintest"
	"github.com/paysidecar/paysidecar/sdk/upstream"
)

// serve runs the flow over the contract, configured with settings.
func serve(t *testing.T, settings map[string]string) plugin.Flow {
	t.Helper()
	f := plugintest.Serve(t, unionpay.New())
	if _, err := plugintest.Configure(t.Context(), f, settings, plugin.Config{}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return f
}

func TestInfoAndSettings(t *testing.T) {
	if err := unionpay.Schema.Check(); err != nil {
		t.Fatal(err)
	}
	f := plugintest.Serve(t, unionpay.New())
	info, err := f.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "unionpay-native" || info.TradeType != "U_NATIVE" || info.Buyer != plugin.BuyerNone || len(info.Capabilities) != 0 {
		t.Errorf("Info = %+v", info)
	}
	for key, raw := range map[string]map[string]string{
		"front_url": {"front_url": "shop.example/paid"},
		"merchant":  {"merchant": "x"},
	} {
		if _, err := plugintest.Configure(t.Context(), f, raw, plugin.Config{}); plugintest.RefusedSetting(err) != key {
			t.Errorf("Configure %v: %v, want %s refused", raw, err, key)
		}
	}
	if err := f.Check(t.Context()); err != nil {
		t.Errorf("Check: %v", err)
	}
	if _, err := f.ExchangeCode(t.Context(), plugin.ExchangeInput{Code: "c"}); plugin.ErrorCode(err) != plugin.CodeUnsupported {
		t.Errorf("ExchangeCode: %v", err)
	}
}

func TestShapeOrder(t *testing.T) {
	cases := []struct {
		name     string
		settings map[string]string
		in       plugin.OrderInput
		want     plugin.OrderShape
		code     string
	}{
		{"bare", nil, plugin.OrderInput{PaymentID: "p", AmountFen: 1},
			plugin.OrderShape{TradeType: "U_NATIVE"}, ""},
		{"front_url and client ip", map[string]string{"front_url": "https://shop.example/paid/"}, plugin.OrderInput{ClientIP: "::ffff:198.51.100.2"},
			plugin.OrderShape{TradeType: "U_NATIVE", Fields: map[string]string{
				"unionpay_data":   `{"front_url":"https://shop.example/paid"}`,
				"risk_check_data": `{"ip_addr":"198.51.100.2"}`,
			}}, ""},
		{"a buyer is refused", nil, plugin.OrderInput{Buyer: plugin.Buyer{OpenID: "o"}}, plugin.OrderShape{}, plugin.CodeInvalidBuyer},
		{"a bad client ip is refused", nil, plugin.OrderInput{ClientIP: "somewhere"}, plugin.OrderShape{}, plugin.CodeInvalidRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := serve(t, c.settings).ShapeOrder(t.Context(), c.in)
			if plugin.ErrorCode(err) != c.code {
				t.Fatalf("error = %v, want code %q", err, c.code)
			}
			if c.code == "" && got.PayParams == nil {
				t.Error("ShapeOrder gave no pay recipe")
			}
			got.PayParams = nil
			if c.code == "" && !reflect.DeepEqual(got, c.want) {
				t.Errorf("ShapeOrder = %+v, want %+v", got, c.want)
			}
		})
	}
}

// TestPayParams builds pay parameters both ways, from the recipe
// ShapeOrder gives and by calling PayParams, which must agree.
func TestPayParams(t *testing.T) {
	f := serve(t, nil)
	shape, err := f.ShapeOrder(t.Context(), plugin.OrderInput{PaymentID: "p", AmountFen: 1})
	if err != nil {
		t.Fatal(err)
	}
	got, err := plugintest.PayParams(t, f, shape, plugin.PayParamsInput{Upstream: map[string]string{"qr_code": "https://qr.95516.com/00010000/01a2b3c4&x=1"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"qr_code":"https://qr.95516.com/00010000/01a2b3c4&x=1"}`; got.Kind != upstream.KindUnionPayNative || string(got.JSON) != want {
		t.Errorf("PayParams = %s %s, want %s", got.Kind, got.JSON, want)
	}
	for _, qr := range []string{"", "not a url", "upwallet://pay"} {
		if _, err := plugintest.PayParams(t, f, shape, plugin.PayParamsInput{Upstream: map[string]string{"qr_code": qr}}); plugin.ErrorCode(err) != plugin.CodeInvalidRequest {
			t.Errorf("PayParams(%q): %v", qr, err)
		}
	}
}
