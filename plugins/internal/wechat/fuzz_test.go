package wechat

import (
	"errors"
	"strings"
	"testing"

	"github.com/paysidecar/paysidecar/sdk/plugin"
)

// payInfoSeeds are pay_info strings as the upstream sends them, and
// corners of them.
var payInfoSeeds = []string{
	`{"appId":"wx0123456789abcdef","timeStamp":"1718416800","nonceStr":"5K8264ILTKCH16CQ2502SI8ZNMTM67VS","package":"prepay_id=wx201410272009395522657a690389285100","signType":"RSA","paySign":"oR9d8PuhnIc+YZ8cBHFCwfgpaK9gd7vaRvkYD7rthRAZ/X+QBhcCYL21N7cHCTUxbQ+EAt6Uy+lwSN22f5YZvI45MLko8Pfso0jm46v5hqcVwrk6uddkGuT+Cdvu4WBqDzaDjnNa5UK3GfE1Wfl2gHxIIY5lLdUgWFts17D4WuolLLkiFZV+JSHMvH7eaLdT9N5GBovBwu5yYKUR7skR8Fu+LozcSqQixnlEZUfyE55feLOQTUYzLmR9pNtPbPsu6WVhbNHMS3Ss2+AehHvz+n64GDmXxbX++IOBvm2olHu3PsOUGRwhudhVf7UcGcunXt8cqNjKNqZLhLw4jq/xDg=="}`,
	`{"appId":"","timeStamp":1718416800,"nonceStr":"n","package":"prepay_id=p","signType":"RSA","paySign":"s"}`,
	`{"timeStamp":"1","nonceStr":" ","package":"p","signType":"RSA","paySign":"s"}`,
	`{"appId":1}`, `[]`, `null`, ``, `{`, `{"appId":"a"} trailing`,
}

func FuzzParsePayInfo(f *testing.F) {
	for _, s := range payInfoSeeds {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, raw string, requireAppID bool) {
		pi, err := ParsePayInfo(raw, requireAppID)
		if err != nil {
			var pe *plugin.Error
			if !errors.As(err, &pe) || pe.Code != plugin.CodeInvalidRequest || pe.Field != FieldPayInfo {
				t.Fatalf("error %v (%T), want an invalid_request error on pay_info", err, err)
			}
			return
		}
		for name, v := range map[string]string{"timeStamp": pi.TimeStamp, "nonceStr": pi.NonceStr, "package": pi.Package, "signType": pi.SignType, "paySign": pi.PaySign} {
			if v == "" || v != strings.TrimSpace(v) {
				t.Fatalf("accepted %q with %s = %q", raw, name, v)
			}
		}
		if requireAppID && pi.AppID == "" {
			t.Fatalf("accepted %q without appId", raw)
		}
	})
}
