package wechat

import (
	"context"
	"strings"

	"github.com/paysidecar/paysidecar/plugins/internal/riskcheck"
	"github.com/paysidecar/paysidecar/sdk/plugin"
)

// Exchange turns a code into the buyer's identity under the configured
// app.
type Exchange func(ctx context.Context, code string) (plugin.Identity, error)

// ResolveBuyer returns the buyer of a WeChat order: the given openid (under
// appID when the buyer names no app), or the identity behind a code, which
// exchange turns into one; codes only work for the configured app. missing
// is the error message when neither is given, e.g. "WeChat JSAPI needs the
// buyer's openid or an OAuth code", and app names the configured app in
// errors ("app", "mini-program").
func ResolveBuyer(ctx context.Context, b plugin.Buyer, appID, missing, app string, exchange Exchange) (plugin.Identity, error) {
	openID, buyerApp := strings.TrimSpace(b.OpenID), strings.TrimSpace(b.AppID)
	if openID != "" {
		if buyerApp == "" {
			buyerApp = appID
		}
		return plugin.Identity{OpenID: openID, AppID: buyerApp}, nil
	}
	if strings.TrimSpace(b.Code) == "" {
		return plugin.Identity{}, plugin.Errorf(plugin.CodeInvalidBuyer, "buyer.openid", "%s", missing)
	}
	if buyerApp != "" && buyerApp != appID {
		return plugin.Identity{}, plugin.Errorf(plugin.CodeInvalidBuyer, "buyer.app_id", "codes can only be exchanged for the configured %s", app)
	}
	return exchange(ctx, b.Code)
}

// OrderShape returns the order of a WeChat trade type for buyer: wx_data,
// and risk_check_data when the buyer's IP is known.
func OrderShape(tradeType string, buyer plugin.Identity, useOpenID bool, clientIP string) (plugin.OrderShape, error) {
	wxData, err := WxData(buyer.AppID, buyer.OpenID, useOpenID)
	if err != nil {
		return plugin.OrderShape{}, err
	}
	fields := map[string]string{FieldWxData: wxData}
	risk, err := riskcheck.Data(clientIP)
	if err != nil {
		return plugin.OrderShape{}, err
	}
	if risk != "" {
		fields[riskcheck.Field] = risk
	}
	return plugin.OrderShape{TradeType: tradeType, Fields: fields, Buyer: buyer}, nil
}
