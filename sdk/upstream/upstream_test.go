package upstream_test

import (
	"errors"
	"math"
	"testing"

	"github.com/paysidecar/paysidecar/sdk/upstream"
)

func TestEncodeKeepsOrderAndBytes(t *testing.T) {
	cases := []struct {
		name string
		in   any
		want string
	}{
		{"wx_data with sub ids", upstream.WxData{SubAppID: "wx1", SubOpenID: "o<&>"}, `{"sub_appid":"wx1","sub_openid":"o<&>"}`},
		{"wx_data with openid only", upstream.WxData{OpenID: "o1"}, `{"openid":"o1"}`},
		{"object keeps insertion order", upstream.Object{}.Set("z", 1).Set("a", "中文/&").Set("m", true), `{"z":1,"a":"中文/&","m":true}`},
		{"nested object", upstream.Object{}.Set("b", upstream.Object{}.Set("y", 2).Set("x", 1)).Set("a", nil), `{"b":{"y":2,"x":1},"a":null}`},
		{"empty object", upstream.Object{}, `{}`},
		{"map keys sorted", map[string]any{"b": 1, "a": 2}, `{"a":2,"b":1}`},
		{"alipay_data", upstream.AlipayData{BuyerID: "2088"}, `{"buyer_id":"2088"}`},
		{"risk_check_data", upstream.RiskCheckData{IPAddr: "203.0.113.7"}, `{"ip_addr":"203.0.113.7"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := upstream.Encode(c.in)
			if err != nil || got != c.want {
				t.Errorf("Encode = %s, %v; want %s", got, err, c.want)
			}
		})
	}
	if _, err := upstream.Encode(math.NaN()); err == nil {
		t.Error("Encode(NaN) succeeded")
	}
	if _, err := upstream.Encode(upstream.Object{}.Set("bad", math.Inf(1))); err == nil {
		t.Error("Encode of an object with an infinite member succeeded")
	}
}

func TestClientIP(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"", "", true},
		{"203.0.113.7", "203.0.113.7", true},
		{" 2001:db8::1 ", "2001:db8::1", true},
		{"::ffff:198.51.100.2", "198.51.100.2", true},
		{"fe80::1%eth0", "", false},
		{"localhost", "", false},
		{"1.2.3.4:80", "", false},
	}
	for _, c := range cases {
		got, ok := upstream.ClientIP(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("ClientIP(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestParsePayInfo(t *testing.T) {
	full := `{"appId":"wx1","timeStamp":1700000000,"nonceStr":"n","package":"prepay_id=wx2","signType":"RSA","paySign":"s"}`
	cases := []struct {
		name         string
		raw          string
		requireAppID bool
		want         upstream.PayInfo
		member       string
		wantErr      bool
	}{
		{"full with numeric timeStamp", full, true, upstream.PayInfo{AppID: "wx1", TimeStamp: "1700000000", NonceStr: "n", Package: "prepay_id=wx2", SignType: "RSA", PaySign: "s"}, "", false},
		{"appId optional", `{"timeStamp":"1","nonceStr":"n","package":"p","signType":"RSA","paySign":"s"}`, false, upstream.PayInfo{TimeStamp: "1", NonceStr: "n", Package: "p", SignType: "RSA", PaySign: "s"}, "", false},
		{"appId required", `{"timeStamp":"1","nonceStr":"n","package":"p","signType":"RSA","paySign":"s"}`, true, upstream.PayInfo{}, "appId", true},
		{"member blank", `{"appId":"wx1","timeStamp":"1","nonceStr":" ","package":"p","signType":"RSA","paySign":"s"}`, true, upstream.PayInfo{}, "nonceStr", true},
		{"numeric package refused", `{"appId":"wx1","timeStamp":"1","nonceStr":"n","package":5,"signType":"RSA","paySign":"s"}`, true, upstream.PayInfo{}, "package", true},
		{"absent", " ", true, upstream.PayInfo{}, "", true},
		{"not an object", `[1]`, true, upstream.PayInfo{}, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := upstream.ParsePayInfo(c.raw, c.requireAppID)
			if (err != nil) != c.wantErr || got != c.want {
				t.Fatalf("ParsePayInfo = %+v, %v", got, err)
			}
			var pe *upstream.PayInfoError
			if err != nil && (!errors.As(err, &pe) || pe.Member != c.member) {
				t.Errorf("error %v does not name member %q", err, c.member)
			}
		})
	}
}
