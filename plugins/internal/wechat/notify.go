package wechat

import (
	"strings"

	"github.com/paysidecar/paysidecar/plugins/internal/jsonstr"
	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/upstream"
)

// ChannelWeChat is the channel name of WeChat notifications.
const ChannelWeChat = "wechat"

// FieldWxResponse is the name of the notification field.
const FieldWxResponse = upstream.FieldWxResponse

// DecodeNotification reads the WeChat part of a notification: the buyer's
// openid (sub_openid, else openid) and the scalar members of wx_response,
// and the channel's transaction number from out_trans_id.
func DecodeNotification(in plugin.NotificationInput, tradeType string) (plugin.ChannelDetail, error) {
	if in.TradeType != "" && in.TradeType != tradeType {
		return plugin.ChannelDetail{}, plugin.Errorf(plugin.CodeInvalidRequest, "trade_type", "notification of a %s trade sent to the %s flow", in.TradeType, tradeType)
	}
	d := plugin.ChannelDetail{Channel: ChannelWeChat, ChannelTradeNo: in.Fields["out_trans_id"], Extra: map[string]string{}}
	if v := in.Fields["party_order_id"]; v != "" {
		d.Extra["party_order_id"] = v
	}
	raw := strings.TrimSpace(in.Fields[FieldWxResponse])
	if raw == "" {
		return d, nil
	}
	extra, err := jsonstr.ScalarMembers(raw)
	if err != nil {
		return plugin.ChannelDetail{}, plugin.Errorf(plugin.CodeInvalidRequest, FieldWxResponse, "wx_response is not a JSON object")
	}
	for k, v := range extra {
		d.Extra[k] = v
	}
	d.BuyerID = extra["sub_openid"]
	if d.BuyerID == "" {
		d.BuyerID = extra["openid"]
	}
	return d, nil
}
