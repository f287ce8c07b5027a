// Package upstream holds what a flow plugin needs of the upstream's order
// protocol (the NKP Open API, wire-compatible with Huifu DouGong v2): the
// trade types, the names and contents of the fields a flow adds to an order
// (wx_data, alipay_data, unionpay_data, risk_check_data) or reads from its
// answer (pay_info, qr_code), and the kinds of pay parameters flows hand to
// the front end.
//
// Nested objects travel inside an order's data as JSON strings, so the
// upstream signs and reads them byte for byte as they were written: Encode
// keeps the order of a struct's fields or of an Object's members, writes
// compact JSON and leaves "<", ">" and "&" unescaped. The host signs the
// order; a flow only builds these strings.
//
// The package depends on nothing of the host, and the host takes these
// facts from here.
package upstream

// Trade types (trade_type) of the order endpoint /v2/trade/payment/jspay.
const (
	// TradeWeChatJSAPI pays inside WeChat's browser (WeixinJSBridge).
	TradeWeChatJSAPI = "T_JSAPI"
	// TradeWeChatMiniApp pays inside a WeChat mini-program
	// (wx.requestPayment).
	TradeWeChatMiniApp = "T_MINIAPP"
	// TradeAlipayJSAPI pays inside Alipay's own browser.
	TradeAlipayJSAPI = "A_JSAPI"
	// TradeAlipayNative answers an Alipay cashier URL (qr_code).
	TradeAlipayNative = "A_NATIVE"
	// TradeUnionPayJSAPI pays inside a UnionPay app's browser.
	TradeUnionPayJSAPI = "U_JSAPI"
	// TradeUnionPayNative answers a UnionPay QR code URL (qr_code) that
	// UnionPay QuickPass (云闪付) or a bank's app pays.
	TradeUnionPayNative = "U_NATIVE"
)

// Names of the nested fields a flow adds to an order. Each holds a JSON
// object written as a string (see Encode).
const (
	// FieldWxData carries WeChat's part: sub_appid, openid, sub_openid.
	FieldWxData = "wx_data"
	// FieldAlipayData carries Alipay's part, e.g. buyer_id.
	FieldAlipayData = "alipay_data"
	// FieldUnionPayData carries UnionPay's part, e.g. front_url.
	FieldUnionPayData = "unionpay_data"
	// FieldRiskCheckData tells the upstream where the buyer is (ip_addr).
	FieldRiskCheckData = "risk_check_data"
)

// Names of answer and notification fields a flow reads.
const (
	// FieldPayInfo is the JSON string of WeChat's pay parameters in the
	// answer to a T_JSAPI or T_MINIAPP order (see ParsePayInfo).
	FieldPayInfo = "pay_info"
	// FieldQRCode is the URL a native order answers: Alipay's cashier or
	// UnionPay's QR code.
	FieldQRCode = "qr_code"
	// FieldWxResponse, FieldAlipayResponse and FieldUnionPayResponse are
	// the channel's part of a paid order's query answer or notification.
	FieldWxResponse       = "wx_response"
	FieldAlipayResponse   = "alipay_response"
	FieldUnionPayResponse = "unionpay_response"
	// FieldOutTransID is the channel's own transaction number.
	FieldOutTransID = "out_trans_id"
)

// Kinds of pay parameters (plugin.PayParams.Kind): which front-end API the
// object a flow returns is for. A flow may name its own kind; these are
// the kinds of the flows that ship with paysidecar.
const (
	// KindWeChatJSAPI is the getBrandWCPayRequest object for WeChat's
	// browser.
	KindWeChatJSAPI = "wechat_jsapi"
	// KindWeChatMiniApp is the wx.requestPayment object plus what is
	// needed to launch the mini-program from elsewhere.
	KindWeChatMiniApp = "wechat_miniapp"
	// KindAlipayNative is the Alipay cashier URL and its deep link.
	KindAlipayNative = "alipay_native"
	// KindUnionPayNative is the UnionPay QR code URL.
	KindUnionPayNative = "unionpay_native"
)
