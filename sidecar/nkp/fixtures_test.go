package nkp

import (
	"crypto/rsa"
	"os"
	"path/filepath"
	"testing"
)

// fixture returns the content of a file in testdata.
func fixture(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatalf("read fixture: %v", err)
	}
	return string(b)
}

// merchantKey returns the fixed merchant test key, read from its console
// form.
func merchantKey(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	k, err := ParsePrivateKey(fixture(tb, "merchant_key.txt"))
	if err != nil {
		tb.Fatalf("merchant key: %v", err)
	}
	return k
}

// merchantPub returns the public half of merchantKey, read from its
// console form.
func merchantPub(tb testing.TB) *rsa.PublicKey {
	tb.Helper()
	k, err := ParsePublicKey(fixture(tb, "merchant_pub.txt"))
	if err != nil {
		tb.Fatalf("merchant public key: %v", err)
	}
	return k
}

// upstreamKey returns the fixed key of the emulated upstream.
func upstreamKey(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	k, err := ParsePrivateKey(fixture(tb, "upstream_key.pem"))
	if err != nil {
		tb.Fatalf("upstream key: %v", err)
	}
	return k
}

// upstreamPub returns the public half of upstreamKey.
func upstreamPub(tb testing.TB) *rsa.PublicKey {
	tb.Helper()
	k, err := ParsePublicKey(fixture(tb, "upstream_pub.pem"))
	if err != nil {
		tb.Fatalf("upstream public key: %v", err)
	}
	return k
}

// jspayData is a realistic jspay request as the sidecar builds it.
func jspayData() map[string]any {
	return map[string]any{
		"req_date":        "20250101",
		"req_seq_id":      "20250101123456789012345",
		"huifu_id":        "6666000123456789",
		"goods_desc":      "会员月卡 VIP monthly",
		"trade_type":      "T_JSAPI",
		"trans_amt":       "0.10",
		"time_expire":     "20250101140000",
		"notify_url":      "https://pay.example.com:8443/notify?x=1&y=<2>",
		"wx_data":         `{"sub_appid":"wx1234567890abcdef","sub_openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}`,
		"risk_check_data": `{"ip_addr":"203.0.113.7"}`,
		"remark":          "",
		"alipay_data":     nil,
	}
}
