package upstream

import (
	"encoding/json"
	"net/netip"
	"strings"
)

// WxData is the content of wx_data. With OpenID (an openid under the
// upstream's own app) no Sub* member is needed; otherwise SubAppID and
// SubOpenID both are. Members are written in this order.
type WxData struct {
	SubAppID  string `json:"sub_appid,omitempty"`
	OpenID    string `json:"openid,omitempty"`
	SubOpenID string `json:"sub_openid,omitempty"`
}

// AlipayData is the content of alipay_data.
type AlipayData struct {
	// BuyerID is the buyer's Alipay user id (2088…), when known.
	BuyerID string `json:"buyer_id,omitempty"`
}

// RiskCheckData is the content of risk_check_data.
type RiskCheckData struct {
	// IPAddr is the buyer's IP address.
	IPAddr string `json:"ip_addr,omitempty"`
}

// ClientIP returns clientIP as the upstream expects it in ip_addr (an
// IPv4-mapped IPv6 address as IPv4), "" for an empty input, and ok false
// when it is not an IP address without zone.
func ClientIP(clientIP string) (ip string, ok bool) {
	clientIP = strings.TrimSpace(clientIP)
	if clientIP == "" {
		return "", true
	}
	addr, err := netip.ParseAddr(clientIP)
	if err != nil || addr.Zone() != "" {
		return "", false
	}
	return addr.Unmap().String(), true
}

// PayInfo is the content of pay_info for T_JSAPI and T_MINIAPP, members in
// the order WeChat documents them. For T_JSAPI it is exactly the object
// WeixinJSBridge.invoke('getBrandWCPayRequest', …) takes.
type PayInfo struct {
	AppID     string `json:"appId"`
	TimeStamp string `json:"timeStamp"`
	NonceStr  string `json:"nonceStr"`
	Package   string `json:"package"`
	SignType  string `json:"signType"`
	PaySign   string `json:"paySign"`
}

// PayInfoError says which member of pay_info is missing or malformed.
type PayInfoError struct {
	// Member is the missing member, or "" when pay_info is absent or not
	// a JSON object.
	Member string
	// Reason says what is wrong, for people.
	Reason string
}

// Error implements error.
func (e *PayInfoError) Error() string { return e.Reason }

// payInfoKeys are the members of pay_info in WeChat's order.
var payInfoKeys = [...]string{"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}

// ParsePayInfo reads the pay_info JSON string of an order's answer. Every
// member must be a non-empty string (timeStamp may also be a number);
// appId may be missing only when requireAppID is false. A failure is a
// *PayInfoError.
func ParsePayInfo(raw string, requireAppID bool) (PayInfo, error) {
	if strings.TrimSpace(raw) == "" {
		return PayInfo{}, &PayInfoError{Reason: "the upstream answer carries no pay_info"}
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return PayInfo{}, &PayInfoError{Reason: "pay_info is not a JSON object"}
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
			return PayInfo{}, &PayInfoError{Member: k, Reason: "pay_info lacks " + k}
		}
		vals[k] = s
	}
	return PayInfo{
		AppID:     vals["appId"],
		TimeStamp: vals["timeStamp"],
		NonceStr:  vals["nonceStr"],
		Package:   vals["package"],
		SignType:  vals["signType"],
		PaySign:   vals["paySign"],
	}, nil
}
