package wechat

import (
	"encoding/json"
	"strings"

	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// FieldPayInfo is the name of the answer field.
const FieldPayInfo = "pay_info"

// payInfoKeys are the members of pay_info in the order WeChat documents
// them; appId is the first.
var payInfoKeys = [...]string{"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}

// ParsePayInfo reads the pay_info JSON string of an order's answer. Every
// member must be a non-empty string (timeStamp may also be a number);
// appId may be missing only when requireAppID is false.
func ParsePayInfo(raw string, requireAppID bool) (nkp.PayInfo, error) {
	if strings.TrimSpace(raw) == "" {
		return nkp.PayInfo{}, plugin.Errorf(plugin.CodeInvalidRequest, FieldPayInfo, "the upstream answer carries no pay_info")
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nkp.PayInfo{}, plugin.Errorf(plugin.CodeInvalidRequest, FieldPayInfo, "pay_info is not a JSON object")
	}
	vals := make(map[string]string, len(payInfoKeys))
	for i, k := range payInfoKeys {
		var s string
		switch v := m[k].(type) {
		case string:
			s = v
		case json.Number:
			if k == "timeStamp" {
				s = v.String()
			}
		}
		s = strings.TrimSpace(s)
		if s == "" && (i > 0 || requireAppID) {
			return nkp.PayInfo{}, plugin.Errorf(plugin.CodeInvalidRequest, FieldPayInfo, "pay_info lacks %s", k)
		}
		vals[k] = s
	}
	return nkp.PayInfo{
		AppID:     vals["appId"],
		TimeStamp: vals["timeStamp"],
		NonceStr:  vals["nonceStr"],
		Package:   vals["package"],
		SignType:  vals["signType"],
		PaySign:   vals["paySign"],
	}, nil
}
