package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/paysidecar/paysidecar/sdk/client"
)

// requestSeeds are request bodies as applications send them (from the
// OpenAPI examples and the clients' tests), and corners of them.
var requestSeeds = []string{
	`{"flow":"alipay-native","out_trade_no":"order-1001","amount_fen":1,"description":"demo"}`,
	`{"flow":"wechat-jsapi","out_trade_no":"o_2","amount_fen":990,"description":"一杯咖啡","buyer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},"client_ip":"203.0.113.9","expires_in_seconds":900,"metadata":{"cart":"42"}}`,
	`{"flow":"wechat-miniapp","out_trade_no":"m-3","amount_fen":100,"description":"d","buyer":{"code":"081Kq"},"merchant_id":"6666000100000002"}`,
	`{"out_refund_no":"r-1","amount_fen":50,"reason":"damaged"}`,
	`{"redirect_uri":"https://shop.example/cb","scope":"snsapi_base","state":"s"}`,
	`{"flow":"alipay-native","out_trade_no":"x","amount_fen":1,"description":"d","expires_in_seconds":18446744134}`,
	`{"amount_fen":1e3}`, `{"buyer":{"union":"x"}}`, `[]`, `{"a":1} {"b":2}`, ``, `{"description":"\u202e"}`,
}

// checkRefusal fails unless err is an API error fit to answer.
func checkRefusal(t *testing.T, body []byte, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Status < 400 || e.Status > 499 || e.Code == "" || e.Message == "" {
		t.Fatalf("%q refused with %#v, want a 4xx API error with a code and a message", body, err)
	}
}

func FuzzDecodeRequests(f *testing.F) {
	for _, s := range requestSeeds {
		for kind := range byte(4) {
			f.Add([]byte(s), kind)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, kind byte) {
		var v any
		switch kind % 4 {
		case 0:
			v = &client.CreateRefundRequest{}
		case 1:
			v = &authorizeRequest{}
		case 2:
			v = &exchangeRequest{}
		default:
			v = &struct{}{}
		}
		err := decodeStrict(body, v)
		if err != nil {
			checkRefusal(t, body, err)
			var e *Error
			if errors.As(err, &e) && e.Status != http.StatusBadRequest {
				t.Fatalf("%q: status %d, want 400", body, e.Status)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
	})
}
