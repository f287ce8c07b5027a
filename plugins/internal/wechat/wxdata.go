package wechat

import (
	"strings"

	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/upstream"
)

// FieldWxData is the name of the order field.
const FieldWxData = upstream.FieldWxData

// WxData returns the wx_data JSON string of an order: {"openid": …} when
// useOpenID is set (the openid belongs to the upstream's own app), or
// {"sub_appid": …, "sub_openid": …} otherwise.
func WxData(appID, openID string, useOpenID bool) (string, error) {
	appID, openID = strings.TrimSpace(appID), strings.TrimSpace(openID)
	if openID == "" {
		return "", plugin.Errorf(plugin.CodeInvalidBuyer, "buyer.openid", "the buyer's openid is required")
	}
	d := upstream.WxData{OpenID: openID}
	if !useOpenID {
		if appID == "" {
			return "", plugin.Errorf(plugin.CodeInvalidBuyer, "buyer.app_id", "the app id of the buyer's openid is required")
		}
		d = upstream.WxData{SubAppID: appID, SubOpenID: openID}
	}
	s, err := upstream.Encode(d)
	if err != nil {
		return "", plugin.Errorf(plugin.CodeInternal, "", "encode wx_data: %v", err)
	}
	return s, nil
}
