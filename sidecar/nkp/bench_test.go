package nkp

import (
	"bytes"
	"encoding/json"
	"testing"
)

// benchData is a realistic jspay request with every field a WeChat JSAPI
// order carries.
func benchData() map[string]any {
	d := jspayData()
	d["acct_split_bunch"] = `{"acct_infos":[{"div_amt":"0.10","huifu_id":"6666000123456789"}]}`
	d["remark"] = "订单 2025-0001 / 备注"
	return d
}

func BenchmarkCanonicalize(b *testing.B) {
	data := benchData()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Canonicalize(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCanonicalizeJSON(b *testing.B) {
	raw, err := Canonicalize(benchData())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CanonicalizeJSON(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	key := merchantKey(b)
	canon, err := Canonicalize(benchData())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Sign(key, canon); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	key := merchantKey(b)
	pub := merchantPub(b)
	canon, err := Canonicalize(benchData())
	if err != nil {
		b.Fatal(err)
	}
	sig, err := Sign(key, canon)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(pub, canon, sig); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyResponse(b *testing.B) {
	key := upstreamKey(b)
	pub := upstreamPub(b)
	answer := map[string]any{
		"resp_code": CodeAccepted, "resp_desc": "成功", "trans_stat": StatProcessing,
		"huifu_id": "6666000123456789", "req_date": "20250101", "req_seq_id": "20250101123456789012345",
		"nkp_seq_id": "002900TOP1A250101120000P123ac1364e00000", "trans_amt": "0.10", "trade_type": "T_JSAPI",
		"party_order_id": "03232501015555555555555",
		"pay_info":       `{"appId":"wx1234567890abcdef","timeStamp":"1735704000","nonceStr":"e61463f8efa94090b1f366cccfbbb444","package":"prepay_id=wx01120000123456789","signType":"RSA","paySign":"oR9d8PuhnIc+YZ8cBHFCwfgpaK9gd7vaRvkYD7rthRAZ/X+QBhcCYL21N7cHCTUxbQ+EAt6Uy+lwSN22f5YZvI45MLko8Pfso0jm46v5hqcVwrk6uddkGuT+Cdvu4WBqDzaDjnNa5UK3GfE1Wfl2gHxIIY5lLdUgWFts17D4WuolLLkiFZV+JSHMvH7eaLdT9N5GBovBwu5yYKUR7skR8Fu+LozcSqQixnlEZUfyE55feLOQTUYzLmR9pNtPbPsu6WVhbNHMS3Ss2+AehHvz+n64GDmXxbX++IOBvm81oTkDrf8gh0Q1OW6Zl6R9K4ZqnuiDCbECmsoYLv6AE6UxQ=="}`,
	}
	body, err := EncodeResponse(key, answer)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VerifyResponse(pub, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBaselineJSONMarshal is the baseline for BenchmarkCanonicalize:
// encoding/json writing the same object (sorted keys, no HTML escaping),
// without dropping empties or checking keys.
func BenchmarkBaselineJSONMarshal(b *testing.B) {
	data := benchData()
	b.ReportAllocs()
	for b.Loop() {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(data); err != nil {
			b.Fatal(err)
		}
	}
}
