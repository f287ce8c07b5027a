package api

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/store"
)

var (
	outNoPattern    = regexp.MustCompile(`^[A-Za-z0-9_\-.|*]{1,64}$`)
	merchantPattern = regexp.MustCompile(`^[0-9]{1,32}$`)
)

// Bounds of a payment request.
const (
	maxDescriptionRunes = 127
	minExpiry           = 60 * time.Second
	maxExpiry           = 7 * 24 * time.Hour
	maxMetadataKeys     = 20
	maxMetadataKeyLen   = 40
	maxMetadataValueLen = 500
)

// flowsNeedingBuyer are the flows whose orders need the buyer's openid.
var flowsNeedingBuyer = map[string]bool{client.FlowWeChatJSAPI: true, client.FlowWeChatMiniApp: true}

func (s *Server) createPayment(ctx context.Context, _ *http.Request, body []byte) (int, any, error) {
	var req client.CreatePaymentRequest
	if err := decodeStrict(body, &req); err != nil {
		return 0, nil, err
	}
	if err := s.validatePayment(&req); err != nil {
		return 0, nil, err
	}
	hash := requestHash(body)
	if p, err := s.store.GetPaymentByOutTradeNo(ctx, req.MerchantID, req.OutTradeNo); err == nil {
		return s.existingPayment(ctx, p, hash)
	} else if !errors.Is(err, store.ErrNotFound) {
		return 0, nil, fmt.Errorf("look up out_trade_no: %w", err)
	}
	flow, err := s.flows.Flow(req.Flow)
	if err != nil {
		return 0, nil, pluginError(err)
	}
	now := s.now()
	id := newID("pay")
	in := plugin.OrderInput{
		MerchantID: req.MerchantID, PaymentID: id, OutTradeNo: req.OutTradeNo, AmountFen: req.AmountFen,
		Description: req.Description, ClientIP: req.ClientIP, Metadata: req.Metadata,
	}
	if req.Buyer != nil {
		in.Buyer = plugin.Buyer{OpenID: req.Buyer.OpenID, AppID: req.Buyer.AppID, Code: req.Buyer.Code}
	}
	shape, err := flow.ShapeOrder(ctx, in)
	if err != nil {
		return 0, nil, pluginError(err)
	}
	p := store.Payment{
		ID: id, MerchantID: req.MerchantID, OutTradeNo: req.OutTradeNo, Flow: req.Flow, TradeType: shape.TradeType,
		AmountFen: req.AmountFen, Description: req.Description, ReqDate: nkp.ReqDate(now), ReqSeqID: nkp.NewReqSeqID(now),
		Status: store.StatusPending, RequestHash: hash, CreatedAt: now, UpdatedAt: now,
		NextQueryAt: now.Add(s.cfg.FirstQueryAfter),
	}
	if req.ExpiresInSeconds > 0 {
		p.ExpiresAt = now.Add(time.Duration(req.ExpiresInSeconds) * time.Second)
	} else {
		p.ExpiresAt = now.Add(2 * time.Hour)
	}
	if len(req.Metadata) > 0 {
		p.Metadata, _ = json.Marshal(req.Metadata)
	}
	buyer := shape.Buyer
	if buyer.IsZero() && req.Buyer != nil {
		buyer = plugin.Identity{OpenID: req.Buyer.OpenID, AppID: req.Buyer.AppID}
	}
	if !buyer.IsZero() {
		p.Buyer, _ = json.Marshal(map[string]string{"openid": buyer.OpenID, "app_id": buyer.AppID})
	}
	data, err := s.orderData(p, shape, req.ExpiresInSeconds > 0)
	if err != nil {
		return 0, nil, err
	}
	// The request is kept with the pending payment, so that a retry after
	// a lost answer re-sends exactly the same order under the same
	// req_seq_id, which the upstream refuses to book twice.
	p.UpstreamFields, err = json.Marshal(data)
	if err != nil {
		return 0, nil, fmt.Errorf("encode order data: %w", err)
	}
	if err := s.store.CreatePayment(ctx, &p); err != nil {
		if errors.Is(err, store.ErrConflict) {
			existing, gerr := s.store.GetPaymentByOutTradeNo(ctx, req.MerchantID, req.OutTradeNo)
			if gerr == nil {
				return s.existingPayment(ctx, existing, hash)
			}
		}
		return 0, nil, fmt.Errorf("store payment: %w", err)
	}
	return s.placeOrder(ctx, p, data, http.StatusCreated)
}

// reservedOrderFields are the order fields only the host sets, even when
// it leaves them empty.
var reservedOrderFields = map[string]bool{
	"req_date": true, "req_seq_id": true, "huifu_id": true, "goods_desc": true, "trade_type": true,
	"trans_amt": true, "time_expire": true, "notify_url": true, "remark": true,
}

// orderData builds the jspay data for p with the flow's fields.
func (s *Server) orderData(p store.Payment, shape plugin.OrderShape, withExpiry bool) (map[string]any, error) {
	req := nkp.JSPayRequest{
		ReqDate: p.ReqDate, ReqSeqID: p.ReqSeqID, HuifuID: p.MerchantID, GoodsDesc: p.Description,
		TradeType: shape.TradeType, TransAmt: nkp.Fen(p.AmountFen), NotifyURL: s.cfg.NotifyURL,
	}
	if withExpiry {
		req.TimeExpire = nkp.Timestamp(p.ExpiresAt)
	}
	data, err := nkp.ToMap(req)
	if err != nil {
		return nil, fmt.Errorf("encode order: %w", err)
	}
	for k, v := range shape.Fields {
		if _, core := data[k]; core || reservedOrderFields[k] {
			return nil, &Error{Status: http.StatusBadGateway, Code: CodePluginError, Message: "the flow plugin tried to override " + k}
		}
		data[k] = v
	}
	return data, nil
}

// placeOrder sends the stored pending payment's order upstream and records
// the answer.
func (s *Server) placeOrder(ctx context.Context, p store.Payment, data map[string]any, okStatus int) (int, any, error) {
	out, err := s.upstream.Call(ctx, nkp.PathJSPay, data)
	if err != nil {
		s.metrics.upstreamCalls.WithLabelValues(nkp.PathJSPay, "error").Inc()
		bg := context.WithoutCancel(ctx)
		if rerr := s.store.RecordPaymentError(bg, p.ID, err.Error(), s.now()); rerr != nil {
			s.log.ErrorContext(ctx, "record payment error", "payment", p.ID, "err", rerr)
		}
		return 0, nil, upstreamError(err)
	}
	var resp nkp.JSPayResponse
	if err := nkp.FromMap(out, &resp); err != nil {
		return 0, nil, &Error{Status: http.StatusBadGateway, Code: CodeUpstreamUnavailable, Message: "the upstream's answer could not be read", Err: err}
	}
	raw, _ := json.Marshal(out)
	bg := context.WithoutCancel(ctx)
	if !resp.Accepted() {
		s.metrics.upstreamCalls.WithLabelValues(nkp.PathJSPay, "rejected").Inc()
		if resp.RespCode == nkp.CodeDuplicate {
			// The upstream already has this req_seq_id: an earlier attempt
			// got through but its answer was lost. The pay parameters are
			// gone with it; the reverse query settles the payment.
			return 0, nil, errorf(http.StatusConflict, CodePaymentPending, "",
				"the order was placed but its answer was lost; its state is being checked, see GET /v1/payments/%s", p.ID)
		}
		msg := fmt.Sprintf("upstream refused the order: %s %s", resp.RespCode, resp.RespDesc)
		_, _, terr := s.store.TransitionPayment(bg, p.ID, store.Transition{To: store.StatusFailed, TransStat: resp.TransStat, UpstreamFields: raw, At: s.now()})
		if terr != nil {
			s.log.ErrorContext(ctx, "record refused order", "payment", p.ID, "err", terr)
		}
		if err := s.store.RecordPaymentError(bg, p.ID, msg, s.now()); err != nil {
			s.log.ErrorContext(ctx, "record payment error", "payment", p.ID, "err", err)
		}
		if err := s.store.ScheduleQuery(bg, ledger.KindPayment, p.ID, noTime, 0, ""); err != nil {
			s.log.ErrorContext(ctx, "stop querying refused order", "payment", p.ID, "err", err)
		}
		return 0, nil, errorf(http.StatusUnprocessableEntity, CodeUpstreamRejected, "", "%s", msg)
	}
	s.metrics.upstreamCalls.WithLabelValues(nkp.PathJSPay, "accepted").Inc()
	params, perr := s.payParams(ctx, p, out)
	p, _, err = s.store.UpdatePaymentAccepted(bg, p.ID, resp.NkpSeqID, resp.PartyOrderID, params,
		store.Transition{To: store.StatusProcessing, TransStat: resp.TransStat, UpstreamFields: raw, At: s.now()})
	if err != nil {
		return 0, nil, fmt.Errorf("record accepted order: %w", err)
	}
	if st := ledger.PaymentStatusFromUpstream(resp.TransStat, resp.BankCode, p.ExpiresAt, s.now()); st.Final() {
		p, _, err = s.ledger.ApplyPayment(bg, p.ID, ledger.Result{
			TransStat: resp.TransStat, BankCode: resp.BankCode, BankMessage: resp.BankMessage,
			NkpSeqID: resp.NkpSeqID, PartyOrderID: resp.PartyOrderID, Amount: resp.TransAmt,
			Upstream: raw, Source: ledger.SourceAPI,
		})
		if err != nil {
			return 0, nil, fmt.Errorf("apply final answer: %w", err)
		}
	}
	if perr != nil {
		return 0, nil, perr
	}
	return okStatus, ledger.PaymentToClient(p), nil
}

// payParams asks the flow plugin for the front end's parameters from the
// verified upstream answer.
func (s *Server) payParams(ctx context.Context, p store.Payment, answer map[string]any) (json.RawMessage, error) {
	flow, err := s.flows.Flow(p.Flow)
	if err != nil {
		return nil, pluginError(err)
	}
	fields := make(map[string]string, len(answer))
	for k, v := range answer {
		switch t := v.(type) {
		case string:
			fields[k] = t
		case json.Number:
			fields[k] = t.String()
		default:
			if b, err := json.Marshal(t); err == nil {
				fields[k] = string(b)
			}
		}
	}
	pp, err := flow.PayParams(ctx, plugin.PayParamsInput{PaymentID: p.ID, OutTradeNo: p.OutTradeNo, TradeType: p.TradeType, Upstream: fields})
	if err != nil {
		return nil, pluginError(err)
	}
	if !json.Valid(pp.JSON) {
		return nil, &Error{Status: http.StatusBadGateway, Code: CodePluginError, Message: "the flow plugin returned pay parameters that are not JSON"}
	}
	return json.RawMessage(pp.JSON), nil
}

// existingPayment answers a create request whose out_trade_no is taken.
// The same request gets the payment as it stands, never a second order.
func (s *Server) existingPayment(ctx context.Context, p store.Payment, hash string) (int, any, error) {
	if p.RequestHash != hash {
		return 0, nil, errorf(http.StatusConflict, CodeOutTradeNoConflict, "out_trade_no",
			"out_trade_no %q is already used by payment %s with different parameters", p.OutTradeNo, p.ID)
	}
	switch {
	case p.Status == store.StatusPending && s.now().Sub(p.CreatedAt) < s.cfg.InFlight:
		return 0, nil, errorf(http.StatusConflict, CodePaymentPending, "", "payment %s is being placed by another request; retry shortly", p.ID)
	case p.Status == store.StatusPending:
		// The first attempt's answer was lost. Re-send the very same order:
		// the upstream books a req_seq_id once, so this cannot make a
		// second order.
		data, err := nkp.DecodeObject(p.UpstreamFields)
		if err != nil {
			return 0, nil, errorf(http.StatusConflict, CodePaymentPending, "", "payment %s is being placed; retry shortly", p.ID)
		}
		return s.placeOrder(ctx, p, data, http.StatusOK)
	case p.Status == store.StatusFailed && len(p.PayParams) == 0 && p.LastError != "":
		return 0, nil, errorf(http.StatusUnprocessableEntity, CodeUpstreamRejected, "", "%s", p.LastError)
	case len(p.PayParams) == 0 && !p.Status.Final():
		// Accepted upstream, but the plugin was down when the answer came:
		// build the parameters now from the stored answer.
		answer, err := nkp.DecodeObject(p.UpstreamFields)
		if err != nil {
			return 0, nil, fmt.Errorf("decode stored answer: %w", err)
		}
		params, err := s.payParams(ctx, p, answer)
		if err != nil {
			return 0, nil, err
		}
		p, _, err = s.store.UpdatePaymentAccepted(context.WithoutCancel(ctx), p.ID, p.NkpSeqID, p.PartyOrderID, params,
			store.Transition{To: store.StatusProcessing, At: s.now()})
		if err != nil {
			return 0, nil, fmt.Errorf("record pay parameters: %w", err)
		}
	}
	return http.StatusOK, ledger.PaymentToClient(p), nil
}

func (s *Server) validatePayment(req *client.CreatePaymentRequest) error {
	known := false
	for _, f := range []string{client.FlowWeChatJSAPI, client.FlowWeChatMiniApp, client.FlowAlipayNative} {
		if req.Flow == f {
			known = true
		}
	}
	switch {
	case req.Flow == "":
		return badRequest(CodeMissingField, "flow", "flow is required: one of wechat-jsapi, wechat-miniapp, alipay-native")
	case !known:
		return badRequest(CodeUnknownFlow, "flow", "unknown flow %q: use wechat-jsapi, wechat-miniapp or alipay-native", req.Flow)
	}
	if req.OutTradeNo == "" {
		return badRequest(CodeMissingField, "out_trade_no", "out_trade_no is required")
	}
	if !outNoPattern.MatchString(req.OutTradeNo) {
		return badRequest(CodeInvalidField, "out_trade_no", "out_trade_no must be 1 to 64 letters, digits or _-.|*")
	}
	if err := s.validateAmount("amount_fen", req.AmountFen); err != nil {
		return err
	}
	if strings.TrimSpace(req.Description) == "" {
		return badRequest(CodeMissingField, "description", "description is required")
	}
	if utf8.RuneCountInString(req.Description) > maxDescriptionRunes || !utf8.ValidString(req.Description) {
		return badRequest(CodeInvalidField, "description", "description must be valid UTF-8 of at most %d characters", maxDescriptionRunes)
	}
	if flowsNeedingBuyer[req.Flow] && (req.Buyer == nil || (req.Buyer.OpenID == "" && req.Buyer.Code == "")) {
		return badRequest(CodeMissingBuyer, "buyer", "flow %s needs buyer.openid or buyer.code", req.Flow)
	}
	if req.Buyer != nil && req.Buyer.OpenID != "" && req.Buyer.Code != "" {
		return badRequest(CodeInvalidField, "buyer", "give buyer.openid or buyer.code, not both")
	}
	if req.ExpiresInSeconds != 0 {
		// Compared in seconds: a huge value multiplied into a Duration
		// would wrap around into the allowed range.
		if req.ExpiresInSeconds < int64(minExpiry/time.Second) || req.ExpiresInSeconds > int64(maxExpiry/time.Second) {
			return badRequest(CodeInvalidField, "expires_in_seconds", "expires_in_seconds must be between %d and %d", int(minExpiry.Seconds()), int(maxExpiry.Seconds()))
		}
	}
	if req.ClientIP != "" && net.ParseIP(req.ClientIP) == nil {
		return badRequest(CodeInvalidField, "client_ip", "client_ip must be an IPv4 or IPv6 address")
	}
	if len(req.Metadata) > maxMetadataKeys {
		return badRequest(CodeInvalidField, "metadata", "metadata takes at most %d keys", maxMetadataKeys)
	}
	for k, v := range req.Metadata {
		if k == "" || len(k) > maxMetadataKeyLen || len(v) > maxMetadataValueLen {
			return badRequest(CodeInvalidField, "metadata", "metadata keys are 1 to %d bytes, values at most %d", maxMetadataKeyLen, maxMetadataValueLen)
		}
	}
	if req.MerchantID == "" {
		req.MerchantID = s.cfg.MerchantID
	} else if !merchantPattern.MatchString(req.MerchantID) {
		return badRequest(CodeInvalidField, "merchant_id", "merchant_id must be the merchant's huifu_id (digits)")
	}
	return nil
}

func (s *Server) validateAmount(field string, fen int64) error {
	if fen <= 0 {
		return badRequest(CodeAmountInvalid, field, "%s must be a positive integer number of fen (1 = 0.01 yuan)", field)
	}
	if fen > s.cfg.MaxAmountFen {
		return badRequest(CodeAmountTooLarge, field, "%s must not exceed %d fen", field, s.cfg.MaxAmountFen)
	}
	return nil
}

func (s *Server) getPayment(ctx context.Context, r *http.Request) (int, any, error) {
	p, err := s.store.GetPayment(ctx, r.PathValue("id"))
	if err != nil {
		return 0, nil, notFound(err, "payment")
	}
	p = s.refreshPayment(ctx, p)
	return http.StatusOK, ledger.PaymentToClient(p), nil
}

func (s *Server) findPayment(ctx context.Context, r *http.Request) (int, any, error) {
	q := r.URL.Query()
	out := q.Get("out_trade_no")
	if out == "" {
		return 0, nil, badRequest(CodeMissingField, "out_trade_no", "give ?out_trade_no= (and merchant_id= for another merchant)")
	}
	merchant := q.Get("merchant_id")
	if merchant == "" {
		merchant = s.cfg.MerchantID
	}
	p, err := s.store.GetPaymentByOutTradeNo(ctx, merchant, out)
	if err != nil {
		return 0, nil, notFound(err, "payment")
	}
	p = s.refreshPayment(ctx, p)
	return http.StatusOK, ledger.PaymentToClient(p), nil
}

// refreshPayment asks the upstream for the state of an unfinished payment
// and applies the answer. Any trouble leaves the stored state as it is;
// the reverse query keeps trying.
func (s *Server) refreshPayment(ctx context.Context, p store.Payment) store.Payment {
	if p.Status != store.StatusProcessing || !s.refreshes.allow(p.ID, s.now()) {
		return p
	}
	qctx, cancel := context.WithTimeout(ctx, s.cfg.RefreshTimeout)
	defer cancel()
	resp, err := s.upstream.QueryPayment(qctx, nkp.PaymentQueryRequest{HuifuID: p.MerchantID, OrgReqDate: p.ReqDate, OrgReqSeqID: p.ReqSeqID})
	if err != nil || !resp.Accepted() {
		s.metrics.upstreamCalls.WithLabelValues(nkp.PathPaymentQuery, "error").Inc()
		return p
	}
	s.metrics.upstreamCalls.WithLabelValues(nkp.PathPaymentQuery, "accepted").Inc()
	raw, _ := json.Marshal(resp)
	np, _, err := s.ledger.ApplyPayment(context.WithoutCancel(ctx), p.ID, ledger.Result{
		TransStat: resp.TransStat, BankCode: resp.BankCode, BankMessage: resp.BankMessage, NkpSeqID: resp.NkpSeqID,
		PartyOrderID: resp.PartyOrderID, OutTransID: resp.OutTransID, Amount: resp.TransAmt, Upstream: raw,
		Source: ledger.SourceQuery,
	})
	if err != nil {
		s.log.WarnContext(ctx, "apply query answer", "payment", p.ID, "err", err)
		return p
	}
	return np
}

func (s *Server) closePayment(ctx context.Context, r *http.Request, body []byte) (int, any, error) {
	if len(strings.TrimSpace(string(body))) > 0 {
		var empty struct{}
		if err := decodeStrict(body, &empty); err != nil {
			return 0, nil, err
		}
	}
	p, err := s.store.GetPayment(ctx, r.PathValue("id"))
	if err != nil {
		return 0, nil, notFound(err, "payment")
	}
	switch {
	case p.Status == store.StatusClosed:
		return http.StatusOK, ledger.PaymentToClient(p), nil
	case p.Status.Final():
		return 0, nil, errorf(http.StatusConflict, CodePaymentFinal, "", "payment %s is already %s", p.ID, p.Status)
	case p.Status == store.StatusPending:
		return 0, nil, errorf(http.StatusConflict, CodePaymentPending, "", "payment %s is still being placed; retry shortly", p.ID)
	}
	now := s.now()
	resp, err := s.upstream.Close(ctx, nkp.CloseRequest{
		ReqDate: nkp.ReqDate(now), ReqSeqID: nkp.NewReqSeqID(now), HuifuID: p.MerchantID,
		OrgReqDate: p.ReqDate, OrgReqSeqID: p.ReqSeqID,
	})
	if err != nil {
		s.metrics.upstreamCalls.WithLabelValues(nkp.PathClose, "error").Inc()
		return 0, nil, upstreamError(err)
	}
	if !resp.Accepted() {
		s.metrics.upstreamCalls.WithLabelValues(nkp.PathClose, "rejected").Inc()
		// The order may have been paid meanwhile; report what it is now.
		_ = s.refreshPayment(ctx, p)
		return 0, nil, errorf(http.StatusConflict, CodeUpstreamRejected, "", "upstream refused to close: %s %s", resp.RespCode, resp.RespDesc)
	}
	s.metrics.upstreamCalls.WithLabelValues(nkp.PathClose, "accepted").Inc()
	if resp.TransStat == nkp.StatSuccess {
		raw, _ := json.Marshal(resp)
		p, _, err = s.ledger.ApplyPayment(context.WithoutCancel(ctx), p.ID, ledger.Result{
			TransStat: nkp.StatFailure, BankCode: nkp.BankCodeOrderClosed, BankMessage: "closed at the merchant's request",
			Upstream: raw, Source: ledger.SourceAPI,
		})
		if err != nil {
			return 0, nil, fmt.Errorf("apply close: %w", err)
		}
		return http.StatusOK, ledger.PaymentToClient(p), nil
	}
	// The close is being processed; the reverse query reports the result.
	return http.StatusAccepted, ledger.PaymentToClient(p), nil
}

func notFound(err error, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, CodeNotFound, "", "no such %s", what)
	}
	return fmt.Errorf("load %s: %w", what, err)
}

// refreshGate lets a payment be refreshed from the upstream at most once
// per interval, however often a front end polls GET /v1/payments/{id}.
type refreshGate struct {
	interval time.Duration
	mu       sync.Mutex
	last     map[string]time.Time
}

// maxGateEntries bounds the gate's memory; older entries are dropped
// first when it is full.
const maxGateEntries = 4096

func (g *refreshGate) allow(id string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.last == nil {
		g.last = map[string]time.Time{}
	}
	if t, ok := g.last[id]; ok && now.Sub(t) < g.interval {
		return false
	}
	if len(g.last) >= maxGateEntries {
		for k, t := range g.last {
			if now.Sub(t) >= g.interval {
				delete(g.last, k)
			}
		}
		if len(g.last) >= maxGateEntries {
			return false // a polling storm: the reverse query still runs
		}
	}
	g.last[id] = now
	return true
}

// noTime stops a reverse query schedule.
var noTime time.Time

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// newID returns a random id with a type prefix, e.g. pay_1x2y….
func newID(prefix string) string {
	var b [15]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("paysidecar: crypto/rand failed: " + err.Error())
	}
	return prefix + "_" + idEncoding.EncodeToString(b[:])
}
