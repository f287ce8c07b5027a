package plugin_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/plugin/mockflow"
	"github.com/paysidecar/paysidecar/sdk/plugin/plugintest"
)

// everyOp is a recipe with every operation, objects nested.
var everyOp = plugin.PayRecipe{Kind: "k", Root: plugin.PayValue{Op: plugin.PayObject, Members: []plugin.PayMember{
	{Name: "qr_code", Value: plugin.PayValue{Op: plugin.PayURL, Field: "qr_code"}},
	{Name: "link", Value: plugin.PayValue{Op: plugin.PayEscapedURL, Field: "qr_code", Prefix: "app://scan?a=1&qr="}},
	{Name: "inner", Value: plugin.PayValue{Op: plugin.PayObject, Members: []plugin.PayMember{
		{Name: "pay", Value: plugin.PayValue{Op: plugin.PayInfo, Field: "pay_info"}},
		{Name: "request", Value: plugin.PayValue{Op: plugin.PayRequestPayment, Field: "pay_info"}},
		{Name: "empty", Value: plugin.PayValue{Op: plugin.PayObject}},
	}}},
	{Name: "launch", Value: plugin.PayValue{Op: plugin.PayLiteral, Literal: []byte(`{"path": "p?x=1&y=<2>"}`)}},
}}}

const payInfo = `{"appId":"wx1","timeStamp":1700000000,"nonceStr":" n ","package":"prepay_id=p&q","signType":"RSA","paySign":"s+/="}`

func TestPayRecipeBuild(t *testing.T) {
	got, err := everyOp.Build(map[string]string{"qr_code": " https://qr.example/a?b=1&c=2 ", "pay_info": payInfo})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"qr_code":"https://qr.example/a?b=1&c=2",` +
		`"link":"app://scan?a=1&qr=https%3A%2F%2Fqr.example%2Fa%3Fb%3D1%26c%3D2",` +
		`"inner":{"pay":{"appId":"wx1","timeStamp":"1700000000","nonceStr":"n","package":"prepay_id=p&q","signType":"RSA","paySign":"s+/="},` +
		`"request":{"timeStamp":"1700000000","nonceStr":"n","package":"prepay_id=p&q","signType":"RSA","paySign":"s+/="},"empty":{}},` +
		`"launch":{"path":"p?x=1&y=<2>"}}`
	if got.Kind != "k" || string(got.JSON) != want {
		t.Errorf("Build = %s %s\nwant %s", got.Kind, got.JSON, want)
	}

	// A field missing or malformed is the flow's invalid_request on it.
	for _, c := range []struct {
		fields map[string]string
		field  string
	}{
		{map[string]string{"pay_info": payInfo}, "qr_code"},
		{map[string]string{"qr_code": "javascript:alert(1)", "pay_info": payInfo}, "qr_code"},
		{map[string]string{"qr_code": "https://h/\xff", "pay_info": payInfo}, "qr_code"},
		{map[string]string{"qr_code": "https://h/"}, "pay_info"},
		{map[string]string{"qr_code": "https://h/", "pay_info": `{"appId":"wx1"}`}, "pay_info"},
	} {
		_, err := everyOp.Build(c.fields)
		var pe *plugin.Error
		if !errors.As(err, &pe) || pe.Code != plugin.CodeInvalidRequest || pe.Field != c.field {
			t.Errorf("Build(%q) = %v, want invalid_request on %s", c.fields, err, c.field)
		}
	}
}

func TestPayRecipeCheck(t *testing.T) {
	deep := plugin.PayValue{Op: plugin.PayLiteral, Literal: []byte("1")}
	for range 9 {
		deep = plugin.PayValue{Op: plugin.PayObject, Members: []plugin.PayMember{{Name: "a", Value: deep}}}
	}
	for name, r := range map[string]plugin.PayRecipe{
		"no kind":          {Root: plugin.PayValue{Op: plugin.PayURL, Field: "qr_code"}},
		"unknown op":       {Kind: "k", Root: plugin.PayValue{Op: "sign_it", Field: "qr_code"}},
		"no op":            {Kind: "k"},
		"no field":         {Kind: "k", Root: plugin.PayValue{Op: plugin.PayURL}},
		"literal not JSON": {Kind: "k", Root: plugin.PayValue{Op: plugin.PayLiteral, Literal: []byte("{")}},
		"member unnamed":   {Kind: "k", Root: plugin.PayValue{Op: plugin.PayObject, Members: []plugin.PayMember{{Value: deep.Members[0].Value}}}},
		"member repeated": {Kind: "k", Root: plugin.PayValue{Op: plugin.PayObject, Members: []plugin.PayMember{
			{Name: "a", Value: plugin.PayValue{Op: plugin.PayURL, Field: "f"}}, {Name: "a", Value: plugin.PayValue{Op: plugin.PayURL, Field: "f"}}}}},
		"nested too deep": {Kind: "k", Root: deep},
	} {
		if err := r.Check(); err == nil {
			t.Errorf("%s: Check passed", name)
		}
		if _, err := r.Build(map[string]string{"qr_code": "https://h/", "f": "https://h/"}); plugin.ErrorCode(err) != plugin.CodeInternal {
			t.Errorf("%s: Build = %v, want an internal error", name, err)
		}
	}
	if err := everyOp.Check(); err != nil {
		t.Errorf("Check(everyOp) = %v", err)
	}
}

// TestPayRecipeCrossesTheContract: the recipe a flow gives reaches the
// host as it was, unknown operations included (the host then calls
// PayParams instead), and builds what the flow's PayParams answers.
func TestPayRecipeCrossesTheContract(t *testing.T) {
	unknown := plugin.PayRecipe{Kind: "k", Root: plugin.PayValue{Op: plugin.PayObject, Members: []plugin.PayMember{
		{Name: "later", Value: plugin.PayValue{Op: "from_the_future", Field: "x", Prefix: "p", Literal: []byte("1")}},
	}}}
	for _, r := range []plugin.PayRecipe{everyOp, unknown} {
		m := mockflow.New(nil)
		m.Override(mockflow.Funcs{
			ShapeOrder: func(context.Context, plugin.OrderInput) (plugin.OrderShape, error) {
				return plugin.OrderShape{TradeType: "T", PayParams: &r}, nil
			},
			PayParams: func(_ context.Context, in plugin.PayParamsInput) (plugin.PayParams, error) {
				return r.Build(in.Upstream)
			},
		})
		f := plugintest.Serve(t, m)
		if _, err := plugintest.Configure(t.Context(), f, nil, plugin.Config{}); err != nil {
			t.Fatal(err)
		}
		shape, err := f.ShapeOrder(t.Context(), plugin.OrderInput{PaymentID: "p"})
		if err != nil {
			t.Fatal(err)
		}
		if shape.PayParams == nil || !reflect.DeepEqual(*shape.PayParams, r) {
			t.Fatalf("recipe arrived as %+v, want %+v", shape.PayParams, r)
		}
		if r.Check() == nil {
			plugintest.PayParams(t, f, shape, plugin.PayParamsInput{Upstream: map[string]string{"qr_code": "https://h/", "pay_info": payInfo}})
		}
	}
}

// FuzzPayRecipeWeChat feeds pay_info as the upstream sends it to both
// WeChat operations: an accepted one has every member the front end needs,
// trimmed and non-empty, and a refused one is invalid_request on pay_info.
func FuzzPayRecipeWeChat(f *testing.F) {
	for _, s := range []string{
		payInfo,
		`{"appId":"","timeStamp":1718416800,"nonceStr":"n","package":"prepay_id=p","signType":"RSA","paySign":"s"}`,
		`{"timeStamp":"1","nonceStr":" ","package":"p","signType":"RSA","paySign":"s"}`,
		`{"appId":1}`, `[]`, `null`, ``, `{`, `{"appId":"a"} trailing`,
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, raw string, withAppID bool) {
		op := plugin.PayRequestPayment
		if withAppID {
			op = plugin.PayInfo
		}
		r := plugin.PayRecipe{Kind: "k", Root: plugin.PayValue{Op: op, Field: "pay_info"}}
		pp, err := r.Build(map[string]string{"pay_info": raw})
		if err != nil {
			var pe *plugin.Error
			if !errors.As(err, &pe) || pe.Code != plugin.CodeInvalidRequest || pe.Field != "pay_info" {
				t.Fatalf("error %v (%T), want an invalid_request error on pay_info", err, err)
			}
			return
		}
		var got map[string]string
		if err := json.Unmarshal(pp.JSON, &got); err != nil {
			t.Fatalf("pay params %s: %v", pp.JSON, err)
		}
		want := []string{"timeStamp", "nonceStr", "package", "signType", "paySign"}
		if withAppID {
			want = append(want, "appId")
		}
		if len(got) != len(want) {
			t.Fatalf("pay params %s, want members %v", pp.JSON, want)
		}
		for _, k := range want {
			if v := got[k]; v == "" || v != strings.TrimSpace(v) {
				t.Fatalf("accepted %q with %s = %q", raw, k, v)
			}
		}
	})
}
