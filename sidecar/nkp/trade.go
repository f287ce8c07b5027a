package nkp

import "encoding/json"

// Endpoint paths of the upstream. All are POST.
const (
	PathJSPay          = "/v2/trade/payment/jspay"
	PathPaymentQuery   = "/v2/trade/payment/scanpay/query"
	PathClose          = "/v2/trade/payment/scanpay/close"
	PathCloseQuery     = "/v2/trade/payment/scanpay/closequery"
	PathRefund         = "/v2/trade/payment/scanpay/refund"
	PathRefundQuery    = "/v2/trade/payment/scanpay/refundquery"
	PathFileQuery      = "/v2/trade/check/filequery"
	PathMerchantEnt    = "/v2/merchant/basicdata/ent"
	PathMerchantIndv   = "/v2/merchant/basicdata/indv"
	PathMerchantStatus = "/v2/merchant/basicdata/status/query"
	PathMerchantQuery  = "/v2/merchant/basicdata/query"
	PathBusiOpen       = "/v2/merchant/busi/open"
	PathRealname       = "/v2/merchant/busi/realname"
	PathRealnameQuery  = "/v2/merchant/busi/realname/query"
)

// Response codes (resp_code). They say whether a call was accepted, never
// whether money moved: that comes from trans_stat and the notification.
const (
	CodeAccepted   = "00000000"
	CodeProcessing = "00000100"
	CodeBadParams  = "10000000"
	CodeDuplicate  = "20000000"
	CodeNotFound   = "20000004"
	CodeSystem     = "99999999"
)

// Transaction states (trans_stat).
const (
	StatProcessing = "P"
	StatSuccess    = "S"
	StatFailure    = "F"
	StatInitial    = "I"
)

// Layouts of req_date and of timestamps such as time_expire and end_time.
// Trade types and the contents of the nested order fields a flow sets are
// the flow's business and live in the SDK's package upstream.
const (
	DateLayout      = "20060102"
	TimestampLayout = "20060102150405"
)

// Bill types accepted by filequery.
const (
	BillTrade      = "TRADE_BILL"
	BillSettle     = "SETTLE_BILL"
	BillSplit      = "SPLIT_BILL"
	BillWithdrawal = "WITHDRAWAL_BILL"
	BillTradeMonth = "TRADE_BILL_MONTH"
	BillSettleMon  = "SETTLE_BILL_MONTH"
)

// BillTypes lists every bill type filequery accepts.
var BillTypes = []string{BillTrade, BillSettle, BillSplit, BillWithdrawal, BillTradeMonth, BillSettleMon}

// Result carries the two fields every answer has.
type Result struct {
	// RespCode is the upstream's result code for the call.
	RespCode string `json:"resp_code"`
	// RespDesc is the upstream's description of RespCode.
	RespDesc string `json:"resp_desc"`
}

// Accepted reports whether the call was accepted (00000000) or is being
// processed (00000100).
func (r Result) Accepted() bool { return r.RespCode == CodeAccepted || r.RespCode == CodeProcessing }

// JSPayRequest orders a payment of any trade type; a flow plugin supplies
// the trade type and its nested fields.
type JSPayRequest struct {
	ReqDate    string `json:"req_date"`
	ReqSeqID   string `json:"req_seq_id"`
	HuifuID    string `json:"huifu_id"`
	GoodsDesc  string `json:"goods_desc"`
	TradeType  string `json:"trade_type"`
	TransAmt   Fen    `json:"trans_amt"`
	TimeExpire string `json:"time_expire,omitempty"`
	NotifyURL  string `json:"notify_url,omitempty"`
	// WxData is a JSON string with sub_appid, openid, sub_openid.
	WxData string `json:"wx_data,omitempty"`
	// AlipayData is a JSON string with Alipay-specific fields.
	AlipayData string `json:"alipay_data,omitempty"`
	// RiskCheckData is a JSON string with ip_addr and device data.
	RiskCheckData string `json:"risk_check_data,omitempty"`
	Remark        string `json:"remark,omitempty"`
}

// JSPayResponse is the answer to JSPayRequest.
type JSPayResponse struct {
	Result
	TransStat    string `json:"trans_stat"`
	BankCode     string `json:"bank_code,omitempty"`
	BankMessage  string `json:"bank_message,omitempty"`
	HuifuID      string `json:"huifu_id,omitempty"`
	NkpSeqID     string `json:"nkp_seq_id,omitempty"`
	ReqSeqID     string `json:"req_seq_id,omitempty"`
	ReqDate      string `json:"req_date,omitempty"`
	TradeType    string `json:"trade_type,omitempty"`
	TransAmt     Fen    `json:"trans_amt,omitempty"`
	PartyOrderID string `json:"party_order_id,omitempty"`
	// PayInfo is a JSON string with the WeChat pay parameters.
	PayInfo string `json:"pay_info,omitempty"`
	// QRCode is the Alipay cashier URL for A_NATIVE.
	QRCode string `json:"qr_code,omitempty"`
}

// PaymentQueryRequest asks for the state of a payment by one of
// OrgReqSeqID, OrgNkpSeqID or OutOrdID.
type PaymentQueryRequest struct {
	HuifuID     string `json:"huifu_id"`
	OrgReqDate  string `json:"org_req_date"`
	OrgReqSeqID string `json:"org_req_seq_id,omitempty"`
	OrgNkpSeqID string `json:"org_nkp_seq_id,omitempty"`
	OutOrdID    string `json:"out_ord_id,omitempty"`
}

// PaymentQueryResponse is the answer to PaymentQueryRequest.
type PaymentQueryResponse struct {
	Result
	HuifuID      string `json:"huifu_id,omitempty"`
	OrgReqDate   string `json:"org_req_date,omitempty"`
	OrgReqSeqID  string `json:"org_req_seq_id,omitempty"`
	OrgNkpSeqID  string `json:"org_nkp_seq_id,omitempty"`
	NkpSeqID     string `json:"nkp_seq_id,omitempty"`
	TradeType    string `json:"trade_type,omitempty"`
	TransAmt     Fen    `json:"trans_amt,omitempty"`
	TransStat    string `json:"trans_stat,omitempty"`
	EndTime      string `json:"end_time,omitempty"`
	OutTransID   string `json:"out_trans_id,omitempty"`
	PartyOrderID string `json:"party_order_id,omitempty"`
	BankCode     string `json:"bank_code,omitempty"`
	BankMessage  string `json:"bank_message,omitempty"`
	// RefundedAmt is the total of successful refunds so far.
	RefundedAmt Fen `json:"refunded_amt,omitempty"`
}

// CloseRequest closes an unpaid payment; an order younger than one minute
// cannot be closed.
type CloseRequest struct {
	ReqDate     string `json:"req_date"`
	ReqSeqID    string `json:"req_seq_id"`
	HuifuID     string `json:"huifu_id"`
	OrgReqDate  string `json:"org_req_date"`
	OrgReqSeqID string `json:"org_req_seq_id,omitempty"`
	OrgNkpSeqID string `json:"org_nkp_seq_id,omitempty"`
}

// CloseResponse is the answer to CloseRequest and CloseQueryRequest.
type CloseResponse struct {
	Result
	HuifuID     string `json:"huifu_id,omitempty"`
	ReqDate     string `json:"req_date,omitempty"`
	ReqSeqID    string `json:"req_seq_id,omitempty"`
	OrgReqDate  string `json:"org_req_date,omitempty"`
	OrgReqSeqID string `json:"org_req_seq_id,omitempty"`
	OrgNkpSeqID string `json:"org_nkp_seq_id,omitempty"`
	// TransStat is the state of the close itself.
	TransStat string `json:"trans_stat,omitempty"`
	// OrgTransStat is the state of the original payment.
	OrgTransStat string `json:"org_trans_stat,omitempty"`
}

// CloseQueryRequest asks for the state of a close.
type CloseQueryRequest = CloseRequest

// RefundRequest refunds all or part of a payment identified by one of
// OrgReqSeqID, OrgNkpSeqID or OrgPartyOrderID.
type RefundRequest struct {
	ReqDate         string `json:"req_date"`
	ReqSeqID        string `json:"req_seq_id"`
	HuifuID         string `json:"huifu_id"`
	OrdAmt          Fen    `json:"ord_amt"`
	OrgReqDate      string `json:"org_req_date"`
	OrgReqSeqID     string `json:"org_req_seq_id,omitempty"`
	OrgNkpSeqID     string `json:"org_nkp_seq_id,omitempty"`
	OrgPartyOrderID string `json:"org_party_order_id,omitempty"`
	NotifyURL       string `json:"notify_url,omitempty"`
	Remark          string `json:"remark,omitempty"`
}

// RefundResponse is the answer to RefundRequest and RefundQueryRequest.
type RefundResponse struct {
	Result
	HuifuID     string `json:"huifu_id,omitempty"`
	ReqDate     string `json:"req_date,omitempty"`
	ReqSeqID    string `json:"req_seq_id,omitempty"`
	NkpSeqID    string `json:"nkp_seq_id,omitempty"`
	OrgReqDate  string `json:"org_req_date,omitempty"`
	OrgReqSeqID string `json:"org_req_seq_id,omitempty"`
	OrgNkpSeqID string `json:"org_nkp_seq_id,omitempty"`
	OrdAmt      Fen    `json:"ord_amt,omitempty"`
	TransStat   string `json:"trans_stat,omitempty"`
	EndTime     string `json:"end_time,omitempty"`
	BankCode    string `json:"bank_code,omitempty"`
	BankMessage string `json:"bank_message,omitempty"`
}

// RefundQueryRequest asks for the state of a refund by its own
// req_date and req_seq_id (sent as org_*) or its global serial.
type RefundQueryRequest struct {
	HuifuID     string `json:"huifu_id"`
	OrgReqDate  string `json:"org_req_date"`
	OrgReqSeqID string `json:"org_req_seq_id,omitempty"`
	OrgNkpSeqID string `json:"org_nkp_seq_id,omitempty"`
}

// FileQueryRequest asks for reconciliation files.
type FileQueryRequest struct {
	ReqDate  string `json:"req_date"`
	ReqSeqID string `json:"req_seq_id"`
	HuifuID  string `json:"huifu_id"`
	FileDate string `json:"file_date"`
	BillType string `json:"bill_type"`
}

// FileQueryResponse is the answer to FileQueryRequest.
type FileQueryResponse struct {
	Result
	HuifuID     string       `json:"huifu_id,omitempty"`
	FileDetails []FileDetail `json:"file_details,omitempty"`
	TaskDetails []TaskDetail `json:"task_details,omitempty"`
}

// FileDetail names one downloadable reconciliation file.
type FileDetail struct {
	DownloadURL string `json:"download_url"`
	FileName    string `json:"file_name"`
	BillType    string `json:"bill_type,omitempty"`
	FileDate    string `json:"file_date,omitempty"`
}

// TaskDetail reports the state of a file generation task.
type TaskDetail struct {
	TaskStat string `json:"task_stat"`
	BillType string `json:"bill_type,omitempty"`
	FileDate string `json:"file_date,omitempty"`
}

// NotifyData is the content of a notification's resp_data for a payment or
// a refund. Field names are NKP names; use Profile.FromWire on the decoded
// object before unmarshalling into it.
type NotifyData struct {
	Result
	HuifuID      string `json:"huifu_id"`
	ReqSeqID     string `json:"req_seq_id"`
	ReqDate      string `json:"req_date"`
	NkpSeqID     string `json:"nkp_seq_id,omitempty"`
	TransType    string `json:"trans_type,omitempty"`
	TransAmt     Fen    `json:"trans_amt,omitempty"`
	OrdAmt       Fen    `json:"ord_amt,omitempty"`
	TransStat    string `json:"trans_stat"`
	OutTransID   string `json:"out_trans_id,omitempty"`
	PartyOrderID string `json:"party_order_id,omitempty"`
	EndTime      string `json:"end_time,omitempty"`
	NotifyType   string `json:"notify_type,omitempty"`
	OrgReqSeqID  string `json:"org_req_seq_id,omitempty"`
	OrgReqDate   string `json:"org_req_date,omitempty"`
	OrgNkpSeqID  string `json:"org_nkp_seq_id,omitempty"`
	BankCode     string `json:"bank_code,omitempty"`
	BankMessage  string `json:"bank_message,omitempty"`
	// WxResponse and AlipayResponse are channel details, sent either as
	// a JSON string or as an object.
	WxResponse     json.RawMessage `json:"wx_response,omitempty"`
	AlipayResponse json.RawMessage `json:"alipay_response,omitempty"`
}

// TransRefund is the trans_type of a refund notification; a payment
// notification carries its trade type (T_JSAPI, T_MINIAPP, A_NATIVE).
const TransRefund = "TRANS_REFUND"

// BankCodeOrderClosed is the bank_code of a payment that failed because it
// was closed (by a close call or because it expired unpaid).
const BankCodeOrderClosed = "ORDER_CLOSED"

// NotifyTypeChannel is the notify_type of a notification about a channel
// result, the only kind the sidecar acts on.
const NotifyTypeChannel = "1"

// MerchantPaths are the onboarding, business-opening and real-name
// endpoints of a service provider: enterprise and individual onboarding,
// onboarding status and merchant details, business opening, and the
// WeChat and Alipay real-name application and its status.
var MerchantPaths = []string{
	PathMerchantEnt, PathMerchantIndv, PathMerchantStatus, PathMerchantQuery,
	PathBusiOpen, PathRealname, PathRealnameQuery,
}
