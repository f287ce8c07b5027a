package payments

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sdk/plugin"
)

// staticFlows describes three running flows and serves none: validation
// only reads what the flows declare.
type staticFlows struct{}

func (staticFlows) Flow(name string) (plugin.Flow, error) {
	return nil, errors.New("no flow is served in this test")
}

func (staticFlows) Infos() []plugin.Info {
	return []plugin.Info{
		{Name: "alipay-native", TradeType: "A_NATIVE"},
		{Name: "wechat-jsapi", TradeType: "T_JSAPI", Buyer: plugin.BuyerRequired},
		{Name: "wechat-miniapp", TradeType: "T_MINIAPP", Buyer: plugin.BuyerRequired},
	}
}

func validator(maxFen int64) *Service {
	return &Service{cfg: Config{MerchantID: "6666000100000001", MaxAmountFen: maxFen}, flows: staticFlows{}}
}

// requestSeeds are create requests as applications send them (from the
// OpenAPI examples and the clients' tests), and corners of them.
var requestSeeds = []string{
	`{"flow":"alipay-native","out_trade_no":"order-1001","amount_fen":1,"description":"demo"}`,
	`{"flow":"wechat-jsapi","out_trade_no":"o_2","amount_fen":990,"description":"一杯咖啡","buyer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},"client_ip":"203.0.113.9","expires_in_seconds":900,"metadata":{"cart":"42"}}`,
	`{"flow":"wechat-miniapp","out_trade_no":"m-3","amount_fen":100,"description":"d","buyer":{"code":"081Kq"},"merchant_id":"6666000100000002"}`,
	`{"flow":"alipay-native","out_trade_no":"x","amount_fen":1,"description":"d","expires_in_seconds":18446744134}`,
	`{"amount_fen":1e3}`, `{"buyer":{"union":"x"}}`, `{"description":"\u202e"}`,
}

// FuzzCreatePaymentRequest checks that a create request validation
// accepts holds only what the rules allow, and that every refusal carries
// a code.
func FuzzCreatePaymentRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	s := validator(100_000_00)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req client.CreatePaymentRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return
		}
		var given map[string]json.RawMessage
		_ = json.Unmarshal(body, &given)
		_, amountGiven := given["amount_fen"]
		if err := s.validatePayment(&req, amountGiven); err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code == "" || e.Message == "" {
				t.Fatalf("%q refused with %#v, want an error with a code and a message", body, err)
			}
			return
		}
		switch {
		case req.AmountFen < 1 || req.AmountFen > s.cfg.MaxAmountFen:
			t.Fatalf("accepted amount_fen %d", req.AmountFen)
		case req.ExpiresInSeconds != 0 && (req.ExpiresInSeconds < int64(minExpiry.Seconds()) || req.ExpiresInSeconds > int64(maxExpiry.Seconds())):
			t.Fatalf("accepted expires_in_seconds %d", req.ExpiresInSeconds)
		case strings.TrimSpace(req.Description) == "" || !utf8.ValidString(req.Description) || utf8.RuneCountInString(req.Description) > maxDescriptionRunes:
			t.Fatalf("accepted description %q", req.Description)
		case !outNoPattern.MatchString(req.OutTradeNo) || !merchantPattern.MatchString(req.MerchantID):
			t.Fatalf("accepted out_trade_no %q, merchant_id %q", req.OutTradeNo, req.MerchantID)
		case len(req.Metadata) > maxMetadataKeys:
			t.Fatalf("accepted %d metadata keys", len(req.Metadata))
		}
	})
}

// TestExpiresInSecondsDoesNotWrap: 18446744134 seconds, multiplied into a
// time.Duration, wraps around to about 60 s and was accepted (found by
// FuzzCreatePaymentRequest).
func TestExpiresInSecondsDoesNotWrap(t *testing.T) {
	s := validator(100)
	for secs, ok := range map[int64]bool{18446744134: false, 9223372036: false, -60: false, 59: false, 60: true, 604800: true, 604801: false} {
		req := client.CreatePaymentRequest{Flow: "alipay-native", OutTradeNo: "o", AmountFen: 1, Description: "d", ExpiresInSeconds: secs}
		err := s.validatePayment(&req, true)
		var e *Error
		if ok != (err == nil) || (err != nil && (!errors.As(err, &e) || e.Field != "expires_in_seconds")) {
			t.Errorf("expires_in_seconds %d: %v, want accepted %v", secs, err, ok)
		}
	}
}
