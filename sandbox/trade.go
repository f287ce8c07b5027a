package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// jspay orders a payment: T_JSAPI, T_MINIAPP, A_NATIVE or U_NATIVE.
func (s *Server) jspay(c *apiCall) (map[string]any, error) {
	f := &form{data: c.data}
	reqDate := f.date("req_date", true)
	reqSeq := f.seq("req_seq_id")
	huifu := f.req("huifu_id")
	goods := f.req("goods_desc")
	tradeType := f.req("trade_type")
	amt := f.amount("trans_amt")
	expire, hasExpire := f.timestamp("time_expire")
	notifyURL := f.notifyURL("notify_url", s.cfg.StrictNotifyURL)
	_, wxMap := f.jsonObject("wx_data")
	_, _ = f.jsonObject("alipay_data")
	_, _ = f.jsonObject("unionpay_data")
	if f.err == nil && len([]rune(goods)) > 127 {
		f.err = errParams("goods_desc must be at most 127 characters")
	}
	if f.err != nil {
		return nil, f.err
	}
	var wx upstream.WxData
	switch tradeType {
	case upstream.TradeWeChatJSAPI, upstream.TradeWeChatMiniApp:
		if wxMap == nil {
			return nil, errParams("wx_data is required for trade_type %s", tradeType)
		}
		for _, k := range []string{"sub_appid", "openid", "sub_openid"} {
			if v, ok := wxMap[k]; ok && v != nil {
				if _, isStr := v.(string); !isStr {
					return nil, errParams("wx_data.%s must be a string", k)
				}
			}
		}
		wx.SubAppID, _ = wxMap["sub_appid"].(string)
		wx.OpenID, _ = wxMap["openid"].(string)
		wx.SubOpenID, _ = wxMap["sub_openid"].(string)
		if wx.OpenID == "" && (wx.SubAppID == "" || wx.SubOpenID == "") {
			return nil, errParams("wx_data needs openid, or both sub_appid and sub_openid")
		}
	case upstream.TradeAlipayNative, upstream.TradeUnionPayNative:
	default:
		return nil, errParams("trade_type %q is not supported (want %s, %s, %s or %s)", tradeType,
			upstream.TradeWeChatJSAPI, upstream.TradeWeChatMiniApp, upstream.TradeAlipayNative, upstream.TradeUnionPayNative)
	}
	if !hasExpire {
		expire = c.now.Add(DefaultOrderTTL)
	} else if !expire.After(c.now) {
		return nil, errParams("time_expire %s has already passed", c.data["time_expire"])
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.tradeAllowedLocked(c.sysID, huifu, tradeType, wx.SubAppID, c.now); err != nil {
		return nil, err
	}
	key := serial{huifu, reqDate, reqSeq}
	if s.l.serials[key] {
		return nil, errDuplicate(reqSeq)
	}
	n := s.l.next()
	ns := strconv.FormatUint(n, 10)
	day := c.now.Format(nkp.DateLayout)
	o := &order{
		serial:       key,
		nkpSeqID:     fmt.Sprintf("0030SBX%s%010d", day, n),
		partyOrderID: fmt.Sprintf("03%s%s", c.now.Format("060102"), s.digits(14, "party", ns)),
		tradeType:    tradeType,
		amount:       amt,
		goodsDesc:    goods,
		notifyURL:    notifyURL,
		wx:           wx,
		created:      c.now,
		expire:       expire,
		stat:         nkp.StatProcessing,
	}
	out := map[string]any{
		"resp_code":      nkp.CodeProcessing,
		"resp_desc":      "order accepted, waiting for the payer",
		"trans_stat":     nkp.StatProcessing,
		"huifu_id":       huifu,
		"req_date":       reqDate,
		"req_seq_id":     reqSeq,
		"nkp_seq_id":     o.nkpSeqID,
		"trade_type":     tradeType,
		"trans_amt":      amt.Yuan(),
		"party_order_id": o.partyOrderID,
	}
	if native(tradeType) {
		o.qrToken = s.token(24, "qr", ns)
		out["qr_code"] = qrURL(c.base, o.qrToken)
	} else {
		o.appID = wx.SubAppID
		if o.appID == "" {
			o.appID = s.cfg.DefaultWeChatAppID
		}
		payInfo, prepay, err := s.payInfo(o.appID, c.now, ns)
		if err != nil {
			return nil, err
		}
		out["pay_info"] = payInfo
		o.prepay = prepay
	}
	s.l.serials[key] = true
	s.l.orders[key] = o
	s.l.ordersBySeq[o.nkpSeqID] = o
	s.l.ordersByParty[o.partyOrderID] = o
	if o.qrToken != "" {
		s.l.ordersByQR[o.qrToken] = o
	}
	if o.prepay != "" {
		s.l.ordersByPrepay[o.prepay] = o
	}
	s.l.orderList = append(s.l.orderList, o)
	s.scheduleAutoPayLocked(o)
	return out, nil
}

// payInfo builds the JSON string the front end hands to
// WeixinJSBridge.invoke('getBrandWCPayRequest') or wx.requestPayment, and
// returns its package too: paySign is SHA256withRSA over
// "appId\ntimeStamp\nnonceStr\npackage\n".
func (s *Server) payInfo(appID string, now time.Time, n string) (string, string, error) {
	pi := upstream.PayInfo{
		AppID:     appID,
		TimeStamp: strconv.FormatInt(now.Unix(), 10),
		NonceStr:  s.token(32, "nonce", n),
		Package:   "prepay_id=wx" + now.Format("02150405") + s.token(24, "prepay", n),
		SignType:  "RSA",
	}
	sig, err := nkp.Sign(s.cfg.WeChatKey, []byte(PaySignMessage(pi)))
	if err != nil {
		return "", "", fmt.Errorf("sign pay_info: %w", err)
	}
	pi.PaySign = sig
	b, err := json.Marshal(pi)
	if err != nil {
		return "", "", fmt.Errorf("encode pay_info: %w", err)
	}
	return string(b), pi.Package, nil
}

// PaySignMessage returns the message WeChat's paySign covers:
// appId, timeStamp, nonceStr and package, each followed by a newline.
func PaySignMessage(pi upstream.PayInfo) string {
	return pi.AppID + "\n" + pi.TimeStamp + "\n" + pi.NonceStr + "\n" + pi.Package + "\n"
}

// paymentQuery answers the state of a payment.
func (s *Server) paymentQuery(c *apiCall) (map[string]any, error) {
	f := &form{data: c.data}
	huifu := f.req("huifu_id")
	orgDate := f.date("org_req_date", true)
	f.oneOf("org_req_seq_id", "org_nkp_seq_id", "out_ord_id")
	orgSeq, orgNkp, outOrd := f.opt("org_req_seq_id"), f.opt("org_nkp_seq_id"), f.opt("out_ord_id")
	if f.err != nil {
		return nil, f.err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.findOrderLocked(huifu, orgDate, orgSeq, orgNkp, outOrd, c.now)
	if o == nil {
		return nil, errNotFound("order")
	}
	out := map[string]any{
		"resp_code":      nkp.CodeAccepted,
		"resp_desc":      "query succeeded",
		"huifu_id":       o.huifu,
		"org_req_date":   o.date,
		"org_req_seq_id": o.seq,
		"org_nkp_seq_id": o.nkpSeqID,
		"nkp_seq_id":     o.nkpSeqID,
		"trade_type":     o.tradeType,
		"trans_amt":      o.amount.Yuan(),
		"trans_stat":     o.stat,
		"party_order_id": o.partyOrderID,
		"out_trans_id":   o.outTransID,
		"bank_code":      o.bankCode,
		"bank_message":   o.bankMessage,
	}
	if !o.endTime.IsZero() {
		out["end_time"] = o.endTime.In(cst()).Format(nkp.TimestampLayout)
	}
	if o.refunded > 0 {
		out["refunded_amt"] = o.refunded.Yuan()
	}
	if o.stat == nkp.StatSuccess {
		s.channelResponse(o, out)
	}
	return out, nil
}

// native reports whether tradeType answers a QR code URL, which in the
// sandbox is its cashier page: A_NATIVE (Alipay) and U_NATIVE (UnionPay).
func native(tradeType string) bool {
	return tradeType == upstream.TradeAlipayNative || tradeType == upstream.TradeUnionPayNative
}

// channelResponse adds wx_response, alipay_response or unionpay_response
// for a paid order.
func (s *Server) channelResponse(o *order, out map[string]any) {
	if o.tradeType == upstream.TradeUnionPayNative {
		out["unionpay_response"] = encodeNested(map[string]any{
			"bank_type":   "UNIONPAY",
			"settle_amt":  o.amount.Yuan(),
			"voucher_num": o.outTransID,
		})
		return
	}
	if o.tradeType == upstream.TradeAlipayNative {
		out["alipay_response"] = encodeNested(map[string]any{
			"buyer_id":       o.buyerID,
			"buyer_logon_id": "san***@sandbox.invalid",
			"fund_channel":   "ALIPAYACCOUNT",
		})
		return
	}
	out["wx_response"] = encodeNested(map[string]any{
		"sub_appid":  o.appID,
		"openid":     o.wx.OpenID,
		"sub_openid": o.wx.SubOpenID,
		"bank_type":  "OTHERS",
		"cash_fee":   o.amount.Yuan(),
	})
}

// closeOrder closes an unpaid order at least one minute old.
func (s *Server) closeOrder(c *apiCall) (map[string]any, error) {
	f := &form{data: c.data}
	reqDate := f.date("req_date", true)
	reqSeq := f.seq("req_seq_id")
	huifu := f.req("huifu_id")
	orgDate := f.date("org_req_date", true)
	f.oneOf("org_req_seq_id", "org_nkp_seq_id")
	orgSeq, orgNkp := f.opt("org_req_seq_id"), f.opt("org_nkp_seq_id")
	if f.err != nil {
		return nil, f.err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := serial{huifu, reqDate, reqSeq}
	if s.l.serials[key] {
		return nil, errDuplicate(reqSeq)
	}
	o := s.findOrderLocked(huifu, orgDate, orgSeq, orgNkp, "", c.now)
	if o == nil {
		return nil, errNotFound("order")
	}
	switch {
	case o.closedBy != "":
		// Closing a closed order again succeeds and changes nothing.
	case o.stat == nkp.StatSuccess:
		return nil, errParams("order is paid and cannot be closed; refund it instead")
	case o.stat == nkp.StatFailure:
		return nil, errParams("order failed and cannot be closed")
	case c.now.Sub(o.created) < MinCloseAge:
		return nil, errParams("order is younger than one minute and cannot be closed yet")
	default:
		closeLocked(o, c.now)
	}
	s.l.serials[key] = true
	s.l.closes[key] = o
	return closeAnswer(o, reqDate, reqSeq), nil
}

func closeAnswer(o *order, reqDate, reqSeq string) map[string]any {
	stat, desc := nkp.StatFailure, "order is not closed"
	if o.closedBy != "" {
		stat, desc = nkp.StatSuccess, "order is closed"
	}
	return map[string]any{
		"resp_code":      nkp.CodeAccepted,
		"resp_desc":      desc,
		"huifu_id":       o.huifu,
		"req_date":       reqDate,
		"req_seq_id":     reqSeq,
		"org_req_date":   o.date,
		"org_req_seq_id": o.seq,
		"org_nkp_seq_id": o.nkpSeqID,
		"trans_stat":     stat,
		"org_trans_stat": o.stat,
	}
}

// closeQuery answers whether an order is closed: trans_stat S when it is,
// F otherwise, with the payment's own state in org_trans_stat.
func (s *Server) closeQuery(c *apiCall) (map[string]any, error) {
	f := &form{data: c.data}
	reqDate := f.date("req_date", false)
	reqSeq := f.opt("req_seq_id")
	huifu := f.req("huifu_id")
	orgDate := f.date("org_req_date", true)
	f.oneOf("org_req_seq_id", "org_nkp_seq_id")
	orgSeq, orgNkp := f.opt("org_req_seq_id"), f.opt("org_nkp_seq_id")
	if f.err != nil {
		return nil, f.err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.findOrderLocked(huifu, orgDate, orgSeq, orgNkp, "", c.now)
	if o == nil {
		return nil, errNotFound("order")
	}
	return closeAnswer(o, reqDate, reqSeq), nil
}

// refund refunds all or part of a paid order; the total of refunds that
// succeeded or are processing never exceeds the paid amount.
func (s *Server) refund(c *apiCall) (map[string]any, error) {
	f := &form{data: c.data}
	reqDate := f.date("req_date", true)
	reqSeq := f.seq("req_seq_id")
	huifu := f.req("huifu_id")
	amt := f.amount("ord_amt")
	orgDate := f.date("org_req_date", true)
	f.oneOf("org_req_seq_id", "org_nkp_seq_id", "org_party_order_id")
	orgSeq, orgNkp, orgParty := f.opt("org_req_seq_id"), f.opt("org_nkp_seq_id"), f.opt("org_party_order_id")
	notifyURL := f.notifyURL("notify_url", s.cfg.StrictNotifyURL)
	f.opt("remark")
	if f.err != nil {
		return nil, f.err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := serial{huifu, reqDate, reqSeq}
	if s.l.serials[key] {
		return nil, errDuplicate(reqSeq)
	}
	o := s.findOrderLocked(huifu, orgDate, orgSeq, orgNkp, orgParty, c.now)
	if o == nil {
		return nil, errNotFound("original payment")
	}
	if o.stat != nkp.StatSuccess {
		return nil, errParams("original payment is not paid (trans_stat %s) and cannot be refunded", o.stat)
	}
	if left := o.amount - o.refunded - o.reserved; amt > left {
		return nil, errParams("ord_amt %s exceeds the refundable amount %s (paid %s, refunded or refunding %s)",
			amt.Yuan(), left.Yuan(), o.amount.Yuan(), (o.refunded + o.reserved).Yuan())
	}
	n := s.l.next()
	r := &refund{
		serial:    key,
		nkpSeqID:  fmt.Sprintf("0030SBX%s%010d", c.now.Format(nkp.DateLayout), n),
		order:     o,
		amount:    amt,
		notifyURL: notifyURL,
		stat:      nkp.StatProcessing,
		created:   c.now,
	}
	o.reserved += amt
	s.l.serials[key] = true
	s.l.refunds[key] = r
	s.l.refundsBySeq[r.nkpSeqID] = r
	s.l.refundList = append(s.l.refundList, r)
	s.scheduleAutoRefundLocked(r)
	return map[string]any{
		"resp_code":      nkp.CodeProcessing,
		"resp_desc":      "refund accepted, processing",
		"huifu_id":       huifu,
		"req_date":       reqDate,
		"req_seq_id":     reqSeq,
		"nkp_seq_id":     r.nkpSeqID,
		"org_req_date":   o.date,
		"org_req_seq_id": o.seq,
		"org_nkp_seq_id": o.nkpSeqID,
		"ord_amt":        amt.Yuan(),
		"trans_stat":     nkp.StatProcessing,
	}, nil
}

// refundQuery answers the state of a refund named by its own req_date and
// req_seq_id (sent as org_*) or its global serial.
func (s *Server) refundQuery(c *apiCall) (map[string]any, error) {
	f := &form{data: c.data}
	huifu := f.req("huifu_id")
	orgDate := f.date("org_req_date", true)
	f.oneOf("org_req_seq_id", "org_nkp_seq_id")
	orgSeq, orgNkp := f.opt("org_req_seq_id"), f.opt("org_nkp_seq_id")
	if f.err != nil {
		return nil, f.err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.findRefundLocked(huifu, orgDate, orgSeq, orgNkp)
	if r == nil {
		return nil, errNotFound("refund")
	}
	out := map[string]any{
		"resp_code":      nkp.CodeAccepted,
		"resp_desc":      "query succeeded",
		"huifu_id":       r.huifu,
		"req_date":       r.date,
		"req_seq_id":     r.seq,
		"nkp_seq_id":     r.nkpSeqID,
		"org_req_date":   r.date,
		"org_req_seq_id": r.seq,
		"ord_amt":        r.amount.Yuan(),
		"trans_stat":     r.stat,
		"bank_code":      r.bankCode,
		"bank_message":   r.bankMessage,
	}
	if !r.endTime.IsZero() {
		out["end_time"] = r.endTime.In(cst()).Format(nkp.TimestampLayout)
	}
	return out, nil
}

// scheduleAutoPayLocked settles o after the auto-settle delay when
// auto-settlement of payments is on.
func (s *Server) scheduleAutoPayLocked(o *order) {
	a := s.auto
	if !a.Pay {
		return
	}
	fail := s.hit(a.PayFailRate, "autosettle", "pay", o.nkpSeqID)
	s.settleLaterLocked(a.PayAfterMS, "an order", o.seq, func() error {
		return s.settlePaymentLocked(o, !fail, "", "", s.now())
	})
}

// scheduleAutoRefundLocked settles r after the auto-settle delay when
// auto-settlement of refunds is on.
func (s *Server) scheduleAutoRefundLocked(r *refund) {
	a := s.auto
	if !a.Refund {
		return
	}
	fail := s.hit(a.RefundFailRate, "autosettle", "refund", r.nkpSeqID)
	s.settleLaterLocked(a.RefundAfterMS, "a refund", r.seq, func() error {
		return s.settleRefundLocked(r, !fail, "", "", s.now())
	})
}

// settleLaterLocked runs settle under the lock after afterMS milliseconds,
// unless the server closes first; what names the object in the log.
func (s *Server) settleLaterLocked(afterMS int64, what, seq string, settle func() error) {
	s.spawnLocked(func(ctx context.Context) {
		if !sleep(ctx, time.Duration(afterMS)*time.Millisecond) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := settle(); err != nil {
			s.log.Debug("sandbox auto-settlement skipped "+what, "req_seq_id", seq, "reason", err)
		}
	})
}
