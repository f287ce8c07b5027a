package alipay_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/paysidecar/paysidecar/plugins/alipay-native/alipay"
	"github.com/paysidecar/paysidecar/sdk/plugin"
)

// FuzzPayParams feeds the upstream's qr_code to the flow as the host does
// after verifying the answer: an accepted one is an http(s) URL and the
// deep link carries exactly it.
func FuzzPayParams(f *testing.F) {
	for _, s := range []string{
		"https://qr.alipay.com/bax08431ufkxyl0ym1fs0026", "http://127.0.0.1:8900/qr/tok_1?x=1&y=%20",
		" https://qr.alipay.com/a b ", "alipays://platformapi/startapp", "https://", "", "::", "https://h/\x00",
	} {
		f.Add(s)
	}
	flow := alipay.New(nil)
	f.Fuzz(func(t *testing.T, qr string) {
		pp, err := flow.PayParams(context.Background(), plugin.PayParamsInput{Upstream: map[string]string{alipay.FieldQRCode: qr}})
		if err != nil {
			var pe *plugin.Error
			if !errors.As(err, &pe) || pe.Code != plugin.CodeInvalidRequest || pe.Field != alipay.FieldQRCode {
				t.Fatalf("error %v (%T), want invalid_request on qr_code", err, err)
			}
			return
		}
		var got struct {
			QRCode   string `json:"qr_code"`
			DeepLink string `json:"deep_link"`
		}
		if err := json.Unmarshal(pp.JSON, &got); err != nil {
			t.Fatalf("pay params %q are not JSON: %v", pp.JSON, err)
		}
		u, err := url.Parse(got.QRCode)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || got.QRCode != strings.TrimSpace(qr) {
			t.Fatalf("accepted qr_code %q as %q", qr, got.QRCode)
		}
		link, err := url.Parse(got.DeepLink)
		if err != nil || link.Scheme != "alipays" || link.Query().Get("qrcode") != got.QRCode {
			t.Fatalf("deep link %q does not carry %q", got.DeepLink, got.QRCode)
		}
	})
}

// TestPayParamsRefusesInvalidUTF8: a qr_code that is not UTF-8 would be
// answered with U+FFFD in qr_code but its raw bytes in deep_link (found by
// FuzzPayParams). gRPC refuses such strings between host and plugin, but
// the flow must not depend on it.
func TestPayParamsRefusesInvalidUTF8(t *testing.T) {
	for _, qr := range []string{"http://\xec", "https://qr.alipay.com/\xff"} {
		_, err := alipay.New(nil).PayParams(context.Background(), plugin.PayParamsInput{Upstream: map[string]string{alipay.FieldQRCode: qr}})
		wantError(t, err, plugin.CodeInvalidRequest, alipay.FieldQRCode)
	}
}
