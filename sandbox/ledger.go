package sandbox

import (
	"fmt"
	"time"

	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// BankCodeOrderClosed is the bank_code a payment query answers, with
// trans_stat F, for an order closed by the close endpoint or by its
// time_expire. It equals nkp.BankCodeOrderClosed.
const BankCodeOrderClosed = nkp.BankCodeOrderClosed

// BankCodePayFailed is the bank_code of a payment settled as failed when
// the settling control names none.
const BankCodePayFailed = "PAY_FAILED"

// BankCodeRefundFailed is the bank_code of a refund settled as failed when
// the settling control names none.
const BankCodeRefundFailed = "REFUND_FAILED"

// FeePerMille is the sandbox's fee on successful payments, in thousandths of
// the amount, rounded half up to the fen. Refunds carry no fee.
const FeePerMille = 6

// Fee returns the sandbox's fee on a payment of amt.
func Fee(amt nkp.Fen) nkp.Fen { return (amt*FeePerMille + 500) / 1000 }

// cst returns China Standard Time, the zone of every date and time on the
// wire.
func cst() *time.Location { return time.FixedZone("CST", 8*3600) }

// serial identifies a request: req_seq_id is unique per huifu_id per
// req_date.
type serial struct {
	huifu, date, seq string
}

// order is one payment.
type order struct {
	serial
	nkpSeqID     string
	partyOrderID string
	qrToken      string
	prepay       string // package of pay_info, prepay_id=…
	tradeType    string
	amount       nkp.Fen
	goodsDesc    string
	notifyURL    string
	wx           upstream.WxData
	appID        string
	buyerID      string
	created      time.Time
	expire       time.Time
	stat         string
	closedBy     string
	bankCode     string
	bankMessage  string
	endTime      time.Time
	outTransID   string
	refunded     nkp.Fen // refunds that succeeded
	reserved     nkp.Fen // refunds still processing
}

// refund is one refund of an order.
type refund struct {
	serial
	nkpSeqID    string
	order       *order
	amount      nkp.Fen
	notifyURL   string
	stat        string
	created     time.Time
	endTime     time.Time
	bankCode    string
	bankMessage string
}

// ledger is the whole state of a Server, guarded by Server.mu.
type ledger struct {
	counter       uint64
	serials       map[serial]bool
	orders        map[serial]*order
	ordersBySeq   map[string]*order
	ordersByParty map[string]*order
	ordersByQR    map[string]*order
	orderList     []*order
	refunds       map[serial]*refund
	refundsBySeq  map[string]*refund
	refundList    []*refund
	closes        map[serial]*order
	notes         []*NotificationRecord
	merchants     map[string]*merchant
	merchantList  []*merchant
	apps          map[string]*application
	codes         map[string]*wxCode
	requests      map[string]map[string]int // huifu_id -> path -> count
	// The WeChat emulation: access tokens, URL Schemes and Links by their
	// id, apps, visits of the OAuth page, and orders by prepay id.
	wxTokens         map[string]*wxToken
	wxLinks          map[string]*wxLink
	wxApps           map[string]*wxApp
	wxAuthorizations []AuthorizeRecord
	ordersByPrepay   map[string]*order
	// billDiffs are the differences injected into the reconciliation
	// files, in the order they were added.
	billDiffs []BillDifference
}

func newLedger() ledger {
	return ledger{
		serials:        map[serial]bool{},
		orders:         map[serial]*order{},
		ordersBySeq:    map[string]*order{},
		ordersByParty:  map[string]*order{},
		ordersByQR:     map[string]*order{},
		refunds:        map[serial]*refund{},
		refundsBySeq:   map[string]*refund{},
		closes:         map[serial]*order{},
		merchants:      map[string]*merchant{},
		apps:           map[string]*application{},
		codes:          map[string]*wxCode{},
		requests:       map[string]map[string]int{},
		wxTokens:       map[string]*wxToken{},
		wxLinks:        map[string]*wxLink{},
		wxApps:         map[string]*wxApp{},
		ordersByPrepay: map[string]*order{},
	}
}

// next returns the next sequence number; callers hold Server.mu.
func (l *ledger) next() uint64 {
	l.counter++
	return l.counter
}

// expireLocked closes o if its time_expire has passed while it was unpaid.
// Expiry is evaluated whenever an order is looked at, so a driven Clock
// closes orders without any timer.
func expireLocked(o *order, now time.Time) {
	if o.stat == nkp.StatProcessing && !now.Before(o.expire) {
		o.stat = nkp.StatFailure
		o.closedBy = "expire"
		o.bankCode = BankCodeOrderClosed
		o.bankMessage = "order closed: time_expire passed unpaid"
		o.endTime = o.expire
	}
}

// closeLocked closes o at now on a close request.
func closeLocked(o *order, now time.Time) {
	o.stat = nkp.StatFailure
	o.closedBy = "close"
	o.bankCode = BankCodeOrderClosed
	o.bankMessage = "order closed by the merchant"
	o.endTime = now
}

// Order is a payment in the sandbox's ledger, as the controls show it.
type Order struct {
	HuifuID      string    `json:"huifu_id"`
	ReqDate      string    `json:"req_date"`
	ReqSeqID     string    `json:"req_seq_id"`
	NkpSeqID     string    `json:"nkp_seq_id"`
	PartyOrderID string    `json:"party_order_id"`
	TradeType    string    `json:"trade_type"`
	TransAmt     nkp.Fen   `json:"trans_amt"`
	GoodsDesc    string    `json:"goods_desc"`
	NotifyURL    string    `json:"notify_url,omitempty"`
	TransStat    string    `json:"trans_stat"`
	ClosedBy     string    `json:"closed_by,omitempty"` // "close" or "expire"
	BankCode     string    `json:"bank_code,omitempty"`
	BankMessage  string    `json:"bank_message,omitempty"`
	OutTransID   string    `json:"out_trans_id,omitempty"`
	AppID        string    `json:"app_id,omitempty"`
	OpenID       string    `json:"openid,omitempty"`
	QRCode       string    `json:"qr_code,omitempty"`
	RefundedAmt  nkp.Fen   `json:"refunded_amt"`
	CreatedAt    time.Time `json:"created_at"`
	ExpireAt     time.Time `json:"expire_at"`
	EndTime      time.Time `json:"end_time,omitzero"`
}

func (o *order) view(base string) Order {
	v := Order{
		HuifuID: o.huifu, ReqDate: o.date, ReqSeqID: o.seq, NkpSeqID: o.nkpSeqID,
		PartyOrderID: o.partyOrderID, TradeType: o.tradeType, TransAmt: o.amount,
		GoodsDesc: o.goodsDesc, NotifyURL: o.notifyURL, TransStat: o.stat, ClosedBy: o.closedBy,
		BankCode: o.bankCode, BankMessage: o.bankMessage, OutTransID: o.outTransID,
		AppID: o.appID, OpenID: o.openID(), RefundedAmt: o.refunded,
		CreatedAt: o.created, ExpireAt: o.expire, EndTime: o.endTime,
	}
	if native(o.tradeType) {
		v.QRCode = qrURL(base, o.qrToken)
	}
	return v
}

// openID is the payer's identity as WeChat knows it.
func (o *order) openID() string {
	if o.wx.OpenID != "" {
		return o.wx.OpenID
	}
	return o.wx.SubOpenID
}

// Refund is a refund in the sandbox's ledger, as the controls show it.
type Refund struct {
	HuifuID     string    `json:"huifu_id"`
	ReqDate     string    `json:"req_date"`
	ReqSeqID    string    `json:"req_seq_id"`
	NkpSeqID    string    `json:"nkp_seq_id"`
	OrgReqDate  string    `json:"org_req_date"`
	OrgReqSeqID string    `json:"org_req_seq_id"`
	OrgNkpSeqID string    `json:"org_nkp_seq_id"`
	OrdAmt      nkp.Fen   `json:"ord_amt"`
	NotifyURL   string    `json:"notify_url,omitempty"`
	TransStat   string    `json:"trans_stat"`
	BankCode    string    `json:"bank_code,omitempty"`
	BankMessage string    `json:"bank_message,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	EndTime     time.Time `json:"end_time,omitzero"`
}

func (r *refund) view() Refund {
	return Refund{
		HuifuID: r.huifu, ReqDate: r.date, ReqSeqID: r.seq, NkpSeqID: r.nkpSeqID,
		OrgReqDate: r.order.date, OrgReqSeqID: r.order.seq, OrgNkpSeqID: r.order.nkpSeqID,
		OrdAmt: r.amount, NotifyURL: r.notifyURL, TransStat: r.stat,
		BankCode: r.bankCode, BankMessage: r.bankMessage, CreatedAt: r.created, EndTime: r.endTime,
	}
}

// Stats counts what the sandbox received and did, for one merchant or for
// all of them.
type Stats struct {
	// Requests counts every request per API path, accepted or not; a
	// request whose huifu_id could not be read counts only in the totals.
	Requests map[string]int `json:"requests"`
	// Orders counts accepted payment orders, OrdersByType per trade type.
	Orders       int            `json:"orders"`
	OrdersByType map[string]int `json:"orders_by_type"`
	// Paid, Failed and Closed count orders by outcome; Failed excludes
	// closed orders.
	Paid   int `json:"paid"`
	Failed int `json:"failed"`
	Closed int `json:"closed"`
	// Refunds counts accepted refunds, RefundsSucceeded those that
	// succeeded.
	Refunds          int `json:"refunds"`
	RefundsSucceeded int `json:"refunds_succeeded"`
	// Notifications counts notification deliveries created (duplicates
	// included, dropped ones too); Delivered those acknowledged.
	Notifications int `json:"notifications"`
	Delivered     int `json:"delivered"`
}

func (s *Server) statsLocked(huifu string, now time.Time) Stats {
	st := Stats{Requests: map[string]int{}, OrdersByType: map[string]int{}}
	for h, paths := range s.l.requests {
		if huifu != "" && h != huifu {
			continue
		}
		for p, n := range paths {
			st.Requests[p] += n
		}
	}
	for _, o := range s.l.orderList {
		if huifu != "" && o.huifu != huifu {
			continue
		}
		expireLocked(o, now)
		st.Orders++
		st.OrdersByType[o.tradeType]++
		switch {
		case o.stat == nkp.StatSuccess:
			st.Paid++
		case o.closedBy != "":
			st.Closed++
		case o.stat == nkp.StatFailure:
			st.Failed++
		}
	}
	for _, r := range s.l.refundList {
		if huifu != "" && r.huifu != huifu {
			continue
		}
		st.Refunds++
		if r.stat == nkp.StatSuccess {
			st.RefundsSucceeded++
		}
	}
	for _, n := range s.l.notes {
		if huifu != "" && n.HuifuID != huifu {
			continue
		}
		st.Notifications++
		if n.State == DeliveryDelivered {
			st.Delivered++
		}
	}
	return st
}

// findOrderLocked finds an order of huifu by its req_date and req_seq_id,
// its global serial or its party_order_id, and applies expiry.
func (s *Server) findOrderLocked(huifu, date, seq, nkpSeq, party string, now time.Time) *order {
	var o *order
	switch {
	case seq != "":
		o = s.l.orders[serial{huifu, date, seq}]
	case nkpSeq != "":
		o = s.l.ordersBySeq[nkpSeq]
	case party != "":
		o = s.l.ordersByParty[party]
	}
	if o == nil || o.huifu != huifu {
		return nil
	}
	expireLocked(o, now)
	return o
}

// findRefundLocked finds a refund of huifu by its req_date and req_seq_id
// or its global serial.
func (s *Server) findRefundLocked(huifu, date, seq, nkpSeq string) *refund {
	var r *refund
	switch {
	case seq != "":
		r = s.l.refunds[serial{huifu, date, seq}]
	case nkpSeq != "":
		r = s.l.refundsBySeq[nkpSeq]
	}
	if r == nil || r.huifu != huifu {
		return nil
	}
	return r
}

// settlePaymentLocked moves a processing payment to paid or failed and
// queues its notification.
func (s *Server) settlePaymentLocked(o *order, paid bool, bankCode, bankMessage string, now time.Time) error {
	expireLocked(o, now)
	if o.stat != nkp.StatProcessing {
		if o.closedBy != "" {
			return fmt.Errorf("order %s is closed", o.seq)
		}
		return fmt.Errorf("order %s is already final (trans_stat %s)", o.seq, o.stat)
	}
	o.endTime = now
	if paid {
		o.stat = nkp.StatSuccess
		n := s.l.next()
		day := now.In(cst()).Format(nkp.DateLayout)
		switch o.tradeType {
		case upstream.TradeUnionPayNative:
			o.outTransID = day + s.digits(12, "unionpay-trade", fmt.Sprint(n))
		case upstream.TradeAlipayNative:
			o.outTransID = day + "22001" + s.digits(15, "alipay-trade", fmt.Sprint(n))
			o.buyerID = "2088" + s.digits(12, "alipay-buyer", o.nkpSeqID)
		default:
			o.outTransID = "42000" + s.digits(5, "wx-trade-a", fmt.Sprint(n)) + day + s.digits(10, "wx-trade-b", fmt.Sprint(n))
		}
	} else {
		o.stat = nkp.StatFailure
		if bankCode == "" {
			bankCode = BankCodePayFailed
		}
		if bankMessage == "" {
			bankMessage = "payment failed in the sandbox"
		}
		o.bankCode, o.bankMessage = bankCode, bankMessage
	}
	s.notifyPaymentLocked(o)
	return nil
}

// settleRefundLocked moves a processing refund to succeeded or failed and
// queues its notification.
func (s *Server) settleRefundLocked(r *refund, ok bool, bankCode, bankMessage string, now time.Time) error {
	if r.stat != nkp.StatProcessing {
		return fmt.Errorf("refund %s is already final (trans_stat %s)", r.seq, r.stat)
	}
	r.endTime = now
	r.order.reserved -= r.amount
	if ok {
		r.stat = nkp.StatSuccess
		r.order.refunded += r.amount
	} else {
		r.stat = nkp.StatFailure
		if bankCode == "" {
			bankCode = BankCodeRefundFailed
		}
		if bankMessage == "" {
			bankMessage = "refund failed in the sandbox"
		}
		r.bankCode, r.bankMessage = bankCode, bankMessage
	}
	s.notifyRefundLocked(r)
	return nil
}
