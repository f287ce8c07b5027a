package wechat

import (
	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/upstream"
)

// FieldPayInfo is the name of the answer field.
const FieldPayInfo = upstream.FieldPayInfo

// ParsePayInfo reads the pay_info JSON string of an order's answer with
// upstream.ParsePayInfo and reports a malformed one as an *plugin.Error
// naming pay_info.
func ParsePayInfo(raw string, requireAppID bool) (upstream.PayInfo, error) {
	pi, err := upstream.ParsePayInfo(raw, requireAppID)
	if err != nil {
		return upstream.PayInfo{}, plugin.Errorf(plugin.CodeInvalidRequest, FieldPayInfo, "%v", err)
	}
	return pi, nil
}
