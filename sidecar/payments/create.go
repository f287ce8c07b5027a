package payments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/store"
)

// CreateInput is a decoded request to create a payment.
type CreateInput struct {
	// Request is the request as the application sent it.
	Request client.CreatePaymentRequest
	// AmountGiven reports whether the request named amount_fen at all,
	// so that a missing amount is told from a zero one.
	AmountGiven bool
	// Hash fingerprints the request, so that a repeated out_trade_no
	// with other parameters is told from a retry of the same request.
	Hash string
}

// Outcome is the answer to a create.
type Outcome struct {
	// Payment is the payment as it stands.
	Payment client.Payment
	// Created is true for the request that stored the payment.
	Created bool
	// Pending is true when the order is placed (or being replaced) but
	// its pay parameters cannot be had yet: the flow plugin was
	// restarting, or a lost order cannot be closed yet. The same request,
	// repeated after RetryAfter, completes it. Such an answer is
	// provisional and must not be kept for an idempotency key.
	Pending    bool
	RetryAfter time.Duration
}

// maxRounds bounds how often one request goes back and forth between
// sending an order and finding out what became of it, in case the
// upstream's answers contradict each other.
const maxRounds = 3

// minCloseAge is how old an order must be before the upstream closes it.
const minCloseAge = time.Minute

// The cost of a create, and why it is no less (the crash-safety argument).
//
// A create without an Idempotency-Key costs one read, one plugin call
// (two for a flow that gives no pay recipe), two commits and one upstream
// call, in this order:
//
//  1. The lookup of out_trade_no, and beside it ShapeOrder: a repeated
//     request is answered from the payment as it stands (existing) and
//     never reaches the upstream. The lookup reads; it does not write.
//     ShapeOrder runs at the same time (the lookup in a goroutine of its
//     own): the flow's fields (trade_type, wx_data, …) are part of the signed order,
//     so they are needed before anything is stored, and neither step
//     stores or sends anything, so running them side by side changes
//     nothing a crash could leave behind. When the lookup finds the
//     payment, the shaping is canceled and its answer dropped. A buyer
//     given as a one-time OAuth code is the exception: shaping exchanges
//     the code with WeChat, which uses it up, so such an order is shaped
//     only once the lookup has found nothing (see lookAhead).
//  2. Commit 1, OpenPayment: the pending payment and the record of its
//     order (the exact request, req_seq_id included) are durable before
//     the order is sent. This is the commit that cannot go: if the process
//     dies after the send, the retry finds the record and sends the very
//     same order again, which the upstream books once per req_seq_id (or
//     answers 20000000, and recover finds out what became of it); without
//     it the retry would place a second order the buyer could also pay.
//     It is also where a concurrent twin with the same out_trade_no loses
//     (store.ErrConflict). The order is signed while this commit waits
//     for its fsync (openAhead): signing sends nothing, and the signed
//     request goes out only once the commit has succeeded, so a crash
//     during the commit leaves what it left before (nothing stored and
//     nothing sent, or the record of an order never sent, which a retry
//     sends), and a failed commit drops the signature unsent.
//  3. The signed upstream call.
//  4. Pay parameters: the front end's parameters are built from the
//     verified answer, which only exists now. A flow that gives a pay
//     recipe with its shape (plugin.PayRecipe: how its parameters follow
//     from the answer's fields) has them built here by the host, with no
//     second plugin call; otherwise the flow's PayParams is called. This
//     step stores and sends nothing, so which way it goes changes nothing
//     a crash could leave behind.
//  5. Commit 2, OrderAccepted: the answer and the pay parameters are
//     durable before the application sees them, so that a repeat of the
//     request gets the same parameters (for the same upstream order)
//     rather than a replacement order; a crash between the upstream's
//     answer and this commit is the "answer lost" case the retry recovers
//     from. Its event, when the answer is already final, is in the same
//     transaction.
//
// Concurrent creates share the fsync of each commit (the store's group
// commit), so at any concurrency above one the two commits cost far less
// than two fsyncs each. The payment's lock (s.orders) is in memory: it
// orders this process's writers of one payment and costs no system call.
// An Idempotency-Key adds the key's reservation before and its answer
// after (package api): the reservation is what refuses a concurrent twin
// and must be durable before the work starts; the answer could share
// commit 2 only if the API's answer were known before it, which it is not
// (it is built from commit 2's result).

// Create places a payment: it checks the request, has the flow plugin
// shape the order, stores the payment with its order record, sends the
// order and builds the front end's parameters from the verified answer,
// with the flow's pay recipe or by asking the flow plugin. A request whose out_trade_no is taken gets that
// payment as it stands (see existing), never a second order.
func (s *Service) Create(ctx context.Context, in CreateInput) (Outcome, error) {
	req := in.Request
	if err := s.validatePayment(&req, in.AmountGiven); err != nil {
		return Outcome{}, err
	}
	id := newID("pay")
	oi := plugin.OrderInput{
		MerchantID: req.MerchantID, PaymentID: id, OutTradeNo: req.OutTradeNo, AmountFen: req.AmountFen,
		Description: req.Description, ClientIP: req.ClientIP, Metadata: req.Metadata,
	}
	if req.Buyer != nil {
		oi.Buyer = plugin.Buyer{OpenID: req.Buyer.OpenID, AppID: req.Buyer.AppID, Code: req.Buyer.Code}
	}
	// The flow shapes the order while out_trade_no is looked up, unless
	// shaping spends a one-time code (see lookAhead).
	shapeCtx, stopShaping := context.WithCancel(ctx)
	defer stopShaping()
	lookup := s.lookAhead(ctx, req.MerchantID, req.OutTradeNo, stopShaping)
	var shape plugin.OrderShape
	var shapeErr error
	if oi.Buyer.Code == "" {
		shape, shapeErr = s.shapeOrder(shapeCtx, req.Flow, oi)
	}
	if p, err := lookup(); err == nil {
		return s.existing(ctx, p, in.Hash)
	} else if !errors.Is(err, store.ErrNotFound) {
		return Outcome{}, internal("look up out_trade_no", err)
	}
	if oi.Buyer.Code != "" {
		shape, shapeErr = s.shapeOrder(ctx, req.Flow, oi)
	}
	if shapeErr != nil {
		return Outcome{}, PluginError(shapeErr)
	}
	now := s.now()
	p := store.Payment{
		ID: id, MerchantID: req.MerchantID, OutTradeNo: req.OutTradeNo, Flow: req.Flow, TradeType: shape.TradeType,
		AmountFen: req.AmountFen, Description: req.Description, ReqDate: nkp.ReqDate(now), ReqSeqID: nkp.NewReqSeqID(now),
		Status: store.StatusPending, RequestHash: in.Hash, CreatedAt: now, UpdatedAt: now,
		NextQueryAt: s.firstQueryAt(now),
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
		return Outcome{}, err
	}
	rec := ledger.OrderRecord{Request: data, SentAt: now}
	unlock := s.orders.lock(id)
	// The order is signed while commit 1 runs (see openAhead); it is sent
	// only after.
	pre, err := s.openAhead(ctx, &p, rec)
	if err != nil {
		unlock()
		if errors.Is(err, store.ErrConflict) {
			// A twin stored the same out_trade_no a moment ago.
			if existing, gerr := s.st.GetPaymentByOutTradeNo(ctx, req.MerchantID, req.OutTradeNo); gerr == nil {
				return s.existing(ctx, existing, in.Hash)
			}
		}
		return Outcome{}, internal("store payment", err)
	}
	defer unlock()
	out, err := s.send(ctx, p, rec, 0, pre, shape.PayParams)
	out.Created = err == nil
	return out, err
}

// lookAhead looks up the merchant's payment with outTradeNo in a
// goroutine of its own, so that the flow shapes the order meanwhile, and
// calls found when it finds one (or fails), so that the shaping stops
// early. The returned function waits for the lookup's result and must be
// called once. Neither the lookup nor ShapeOrder stores or sends anything,
// so an order shaped for a request that the lookup then finds placed
// costs only the plugin call. An order whose buyer comes as a one-time
// OAuth code is shaped after the lookup instead: exchanging the code is a
// call to WeChat that uses the code up, not to be spent on a repeated
// request.
func (s *Service) lookAhead(ctx context.Context, merchantID, outTradeNo string, found func()) func() (store.Payment, error) {
	var (
		p   store.Payment
		err error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p, err = s.st.GetPaymentByOutTradeNo(ctx, merchantID, outTradeNo)
		if !errors.Is(err, store.ErrNotFound) {
			found()
		}
	}()
	return func() (store.Payment, error) {
		<-done
		return p, err
	}
}

// shapeOrder has the flow shape the order oi.
func (s *Service) shapeOrder(ctx context.Context, flowName string, oi plugin.OrderInput) (plugin.OrderShape, error) {
	flow, err := s.flows.Flow(flowName)
	if err != nil {
		return plugin.OrderShape{}, err
	}
	return flow.ShapeOrder(ctx, oi)
}

// signer is an Upstream that can sign a request ahead of sending it
// (*nkp.Client does).
type signer interface {
	Prepare(path string, data map[string]any) (*nkp.Signed, error)
	Send(ctx context.Context, req *nkp.Signed) (map[string]any, error)
}

// presigned is an order signed ahead of its sending (see openAhead): the
// signed request, or why it could not be signed.
type presigned struct {
	req *nkp.Signed
	err error
}

// openAhead stores the pending payment p with its order record rec
// (commit 1) and, when the upstream client can sign ahead, signs the
// order meanwhile: the commit runs in a goroutine of its own while this
// one computes the signature (the create's largest CPU cost) during the
// commit's fsync. It returns once both are done; the signed order (nil
// when the client cannot sign ahead: send signs it then) is for sending
// only when the commit succeeded, and is dropped unsent otherwise. A
// failure to sign is the send's to report, as a failed call.
func (s *Service) openAhead(ctx context.Context, p *store.Payment, rec ledger.OrderRecord) (*presigned, error) {
	sg, ok := s.up.(signer)
	if !ok {
		return nil, s.led.OpenPayment(ctx, p, rec)
	}
	var commitErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		commitErr = s.led.OpenPayment(ctx, p, rec)
	}()
	req, err := sg.Prepare(nkp.PathJSPay, rec.Request)
	<-done
	return &presigned{req: req, err: err}, commitErr
}

// sendOrder sends the jspay order data: as signed ahead, when pre is not
// nil, or signed now.
func (s *Service) sendOrder(ctx context.Context, data map[string]any, pre *presigned) (map[string]any, error) {
	switch {
	case pre == nil:
		return s.up.Call(ctx, nkp.PathJSPay, data)
	case pre.err != nil:
		return nil, pre.err
	}
	return s.up.(signer).Send(ctx, pre.req)
}

// reservedOrderFields are the order fields only the host sets, even when
// it leaves them empty.
var reservedOrderFields = map[string]bool{
	"req_date": true, "req_seq_id": true, "huifu_id": true, "goods_desc": true, "trade_type": true,
	"trans_amt": true, "time_expire": true, "notify_url": true, "remark": true,
}

// orderData builds the jspay data for p with the flow's fields.
func (s *Service) orderData(p store.Payment, shape plugin.OrderShape, withExpiry bool) (map[string]any, error) {
	req := nkp.JSPayRequest{
		ReqDate: p.ReqDate, ReqSeqID: p.ReqSeqID, HuifuID: p.MerchantID, GoodsDesc: p.Description,
		TradeType: shape.TradeType, TransAmt: nkp.Fen(p.AmountFen), NotifyURL: s.cfg.NotifyURL,
	}
	if withExpiry {
		req.TimeExpire = nkp.Timestamp(p.ExpiresAt)
	}
	data, err := nkp.ToMap(req)
	if err != nil {
		return nil, internal("encode order", err)
	}
	for k, v := range shape.Fields {
		if _, core := data[k]; core || reservedOrderFields[k] {
			return nil, &Error{Code: CodePluginError, Message: "the flow plugin tried to override " + k}
		}
		data[k] = v
	}
	return data, nil
}

// send sends the order in rec (whose sending is already recorded) and
// records the answer. round counts the sends of this request. pre, when
// not nil, is rec's order as signed ahead (see openAhead); recipe, when
// not nil, is how the flow said the answer's pay parameters are built
// when it shaped the order (see payParams).
func (s *Service) send(ctx context.Context, p store.Payment, rec ledger.OrderRecord, round int, pre *presigned, recipe *plugin.PayRecipe) (Outcome, error) {
	bg := context.WithoutCancel(ctx)
	answer, err := s.sendOrder(ctx, rec.Request, pre)
	var res ledger.Result
	if err == nil {
		if res, err = ledger.FromOrder(answer); err != nil {
			err = &nkp.CallError{Path: nkp.PathJSPay, Kind: nkp.KindDecode, Err: err}
		}
	}
	if err != nil {
		rec.LostAt, rec.LostError = s.now(), err.Error()
		if _, kerr := s.led.KeepOrder(bg, p.ID, rec); kerr != nil {
			s.tel.Logger.ErrorContext(ctx, "record a lost order answer", "payment", p.ID, "err", kerr)
		}
		return Outcome{}, UpstreamError(err, fmt.Sprintf("payment %s may have been placed; repeat the same request to learn its outcome", p.ID))
	}
	switch {
	case res.RespCode == nkp.CodeDuplicate:
		// The upstream booked this req_seq_id before: an earlier send got
		// through and its answer was lost.
		return s.recover(ctx, p, rec, round+1)
	case !res.Accepted():
		if _, err := s.led.OrderRefused(bg, p, res); err != nil {
			return Outcome{}, internal("record refused order", err)
		}
		return Outcome{}, errorf(CodeUpstreamRejected, "", "upstream refused the order: %s %s", res.RespCode, res.RespDesc)
	}
	return s.accepted(ctx, p, rec, answer, res, recipe)
}

// accepted records an accepted order answer and builds the front end's
// parameters from it (with recipe, when not nil).
func (s *Service) accepted(ctx context.Context, p store.Payment, rec ledger.OrderRecord, answer map[string]any, res ledger.Result, recipe *plugin.PayRecipe) (Outcome, error) {
	params, perr := s.payParams(ctx, p, answer, recipe)
	if perr != nil {
		rec.Answer = answer
	}
	np, err := s.led.OrderAccepted(context.WithoutCancel(ctx), p, res, params, rec)
	if err != nil {
		if errors.Is(err, ledger.ErrAmountMismatch) {
			return Outcome{}, &Error{Code: CodeUpstreamUnavailable, Message: "the upstream's answer reports another amount than the order's; it was not trusted", Err: err}
		}
		return Outcome{}, internal("record accepted order", err)
	}
	return s.withParams(ctx, np, perr)
}

// withParams answers payment p after an attempt to build its pay
// parameters that failed with perr (nil when it succeeded).
func (s *Service) withParams(ctx context.Context, p store.Payment, perr *Error) (Outcome, error) {
	switch {
	case perr == nil || p.Status.Final():
		return Outcome{Payment: ledger.PaymentToClient(p)}, nil
	case perr.Code == CodePluginUnavailable:
		// Placed; the parameters are built when the plugin is back.
		s.tel.Logger.WarnContext(ctx, "order placed, pay parameters deferred: the flow plugin is unavailable", "payment", p.ID, "err", perr)
		return Outcome{Payment: ledger.PaymentToClient(p), Pending: true, RetryAfter: time.Second}, nil
	}
	perr.Message = fmt.Sprintf("payment %s was placed but its pay parameters could not be built: %s", p.ID, perr.Message)
	return Outcome{}, perr
}

// payParams builds the front end's parameters from the verified order
// answer: with recipe, the flow's own description of them given when it
// shaped the order, when there is one this host can build (which spares
// the create a plugin call), and otherwise by asking the flow plugin. A
// recipe is only ever at hand on the create that shaped the order; every
// later path (a kept answer, an earlier version's payment) asks the
// plugin, which answers the same.
func (s *Service) payParams(ctx context.Context, p store.Payment, answer map[string]any, recipe *plugin.PayRecipe) (json.RawMessage, *Error) {
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
	if recipe != nil && recipe.Check() == nil {
		pp, err := recipe.Build(fields)
		if err != nil {
			return nil, PluginError(err)
		}
		return json.RawMessage(pp.JSON), nil
	}
	flow, err := s.flows.Flow(p.Flow)
	if err != nil {
		return nil, PluginError(err)
	}
	pp, err := flow.PayParams(ctx, plugin.PayParamsInput{PaymentID: p.ID, OutTradeNo: p.OutTradeNo, TradeType: p.TradeType, Upstream: fields, MerchantID: p.MerchantID})
	if err != nil {
		return nil, PluginError(err)
	}
	if !json.Valid(pp.JSON) {
		return nil, &Error{Code: CodePluginError, Message: "the flow plugin returned pay parameters that are not JSON"}
	}
	return json.RawMessage(pp.JSON), nil
}

// existing answers a create request whose out_trade_no is taken: the same
// request gets the payment as it stands, never a second order and never a
// refusal the upstream did not make.
func (s *Service) existing(ctx context.Context, p store.Payment, hash string) (Outcome, error) {
	if p.RequestHash != hash {
		return Outcome{}, errorf(CodeOutTradeNoConflict, "out_trade_no",
			"out_trade_no %q is already used by payment %s with different parameters", p.OutTradeNo, p.ID)
	}
	unlock := s.orders.lock(p.ID)
	defer unlock()
	p, err := s.st.GetPayment(ctx, p.ID)
	if err != nil {
		return Outcome{}, internal("read payment", err)
	}
	if code, desc, refused := ledger.Refusal(p); refused {
		// The first answer was this refusal; so is every repeat.
		return Outcome{}, errorf(CodeUpstreamRejected, "", "upstream refused the order: %s %s", code, desc)
	}
	if p.Status.Final() || ledger.HasPayParams(p) {
		return Outcome{Payment: ledger.PaymentToClient(p)}, nil
	}
	rec, ok := ledger.OrderRecordOf(p)
	if !ok {
		return s.unrecorded(ctx, p)
	}
	now := s.now()
	if rec.InFlight(now, s.cfg.InFlight) {
		return Outcome{}, errorf(CodePaymentPending, "", "payment %s is being placed by another request; retry shortly", p.ID)
	}
	switch {
	case rec.Answer != nil:
		// Accepted, but the plugin could not build the parameters then.
		params, perr := s.payParams(ctx, p, rec.Answer, nil)
		if perr != nil {
			return s.withParams(ctx, p, perr)
		}
		np, err := s.led.SetPayParams(context.WithoutCancel(ctx), p.ID, params)
		if err != nil {
			return Outcome{}, internal("record pay parameters", err)
		}
		return Outcome{Payment: ledger.PaymentToClient(np)}, nil
	case p.Status == store.StatusPending && rec.Replaces == nil:
		// The last send's answer was lost (or the process died): send the
		// very same order again. The upstream books a req_seq_id once.
		return s.resend(ctx, p, rec, 0)
	default:
		return s.recover(ctx, p, rec, 0)
	}
}

// resend records that rec's order is sent again and sends it.
func (s *Service) resend(ctx context.Context, p store.Payment, rec ledger.OrderRecord, round int) (Outcome, error) {
	if round >= maxRounds {
		return Outcome{}, &Error{Code: CodeUpstreamUnavailable, Message: fmt.Sprintf("the upstream's answers about payment %s contradict each other; retry later", p.ID)}
	}
	rec.SentAt, rec.LostAt, rec.LostError = s.now(), time.Time{}, ""
	p, err := s.led.KeepOrder(context.WithoutCancel(ctx), p.ID, rec)
	if err != nil {
		return Outcome{}, internal("record order send", err)
	}
	return s.send(ctx, p, rec, round, nil, nil)
}

// recover finds out what became of payment p's order, booked upstream (or
// not) while its answer was lost, and answers the payment as it stands:
// its final state when it has one; the order sent again when the upstream
// does not know it; and when it is booked and open but nobody holds its pay
// parameters (so nobody can pay it), the order replaced by a new one.
func (s *Service) recover(ctx context.Context, p store.Payment, rec ledger.OrderRecord, round int) (Outcome, error) {
	if rec.Replaces != nil {
		return s.replace(ctx, p, rec, round)
	}
	if round >= maxRounds {
		return Outcome{}, &Error{Code: CodeUpstreamUnavailable, Message: fmt.Sprintf("the upstream's answers about payment %s contradict each other; retry later", p.ID)}
	}
	res, err := s.query(ctx, p)
	if err != nil {
		return Outcome{}, UpstreamError(err, fmt.Sprintf("the state of payment %s could not be learned; repeat the same request", p.ID))
	}
	switch {
	case res.RespCode == nkp.CodeNotFound:
		return s.resend(ctx, p, rec, round+1)
	case !res.Accepted():
		return Outcome{}, &Error{Code: CodeUpstreamUnavailable, Message: fmt.Sprintf("the upstream refused to tell the state of payment %s: %s %s; repeat the same request", p.ID, res.RespCode, res.RespDesc)}
	}
	np, _, err := s.led.ApplyPayment(context.WithoutCancel(ctx), p.ID, res)
	if err != nil {
		return Outcome{}, internal("apply query answer", err)
	}
	if np.Status.Final() || ledger.HasPayParams(np) {
		return Outcome{Payment: ledger.PaymentToClient(np)}, nil
	}
	if !np.ExpiresAt.IsZero() && !s.now().Before(np.ExpiresAt) {
		// It can no longer be paid; the reverse query reports it closed.
		return Outcome{Payment: ledger.PaymentToClient(np)}, nil
	}
	next, err := replacement(rec.Request, np, s.now())
	if err != nil {
		return Outcome{}, err
	}
	return s.replace(ctx, np, next, round)
}

// replacement returns the record of a new order for payment p: the same
// request under a new req_date and req_seq_id, replacing p's order.
func replacement(request map[string]any, p store.Payment, now time.Time) (ledger.OrderRecord, error) {
	if len(request) == 0 {
		return ledger.OrderRecord{}, internal("replace order", errors.New("the order request was not kept"))
	}
	r := maps.Clone(request)
	r["req_date"], r["req_seq_id"] = nkp.ReqDate(now), nkp.NewReqSeqID(now)
	return ledger.OrderRecord{Request: r, Replaces: &ledger.OrderRef{ReqDate: p.ReqDate, ReqSeqID: p.ReqSeqID}}, nil
}

// orderRef names the order of a request record.
func orderRef(request map[string]any) ledger.OrderRef {
	d, _ := request["req_date"].(string)
	q, _ := request["req_seq_id"].(string)
	return ledger.OrderRef{ReqDate: d, ReqSeqID: q}
}

// replace moves payment p onto the new order rec.Request names and places
// it, once the upstream has closed the order it replaces (rec.Replaces),
// so that the lost order can never be paid as well. The payment is moved
// first, so that the reverse query, which from then on asks about the new
// order, never reports the closed old one as the payment's fate. If the
// old order will not close (too young, or paid after all), the payment
// moves back to it.
func (s *Service) replace(ctx context.Context, p store.Payment, rec ledger.OrderRecord, round int) (Outcome, error) {
	bg := context.WithoutCancel(ctx)
	old, to := *rec.Replaces, orderRef(rec.Request)
	if p.ReqDate != to.ReqDate || p.ReqSeqID != to.ReqSeqID {
		np, err := s.led.ReplaceOrder(bg, p, to, rec)
		if errors.Is(err, store.ErrConflict) {
			return Outcome{}, errorf(CodePaymentPending, "", "payment %s is being placed by another request; retry shortly", p.ID)
		}
		if err != nil {
			return Outcome{}, internal("replace order", err)
		}
		p = np
	}
	res, err := s.call(ctx, nkp.PathClose, nkp.CloseRequest{
		ReqDate: nkp.ReqDate(s.now()), ReqSeqID: nkp.NewReqSeqID(s.now()), HuifuID: p.MerchantID,
		OrgReqDate: old.ReqDate, OrgReqSeqID: old.ReqSeqID,
	}, func(data map[string]any) (ledger.Result, error) {
		return ledger.FromClose(data, "replaced by a new order")
	})
	if err == nil && res.Accepted() && res.BankCode == nkp.BankCodeOrderClosed {
		s.tel.Logger.InfoContext(ctx, "lost order closed; placing the payment again under a new serial",
			"payment", p.ID, "closed_req_seq_id", old.ReqSeqID, "req_seq_id", to.ReqSeqID)
		rec.Replaces = nil
		return s.resend(ctx, p, rec, round+1)
	}
	// Not closed: the payment stands for its old order again.
	back := rec.Request
	back = maps.Clone(back)
	back["req_date"], back["req_seq_id"] = old.ReqDate, old.ReqSeqID
	np, rerr := s.led.ReplaceOrder(bg, p, old, ledger.OrderRecord{Request: back, LostAt: s.now(), LostError: "answer lost; the order is booked upstream"})
	if rerr != nil {
		return Outcome{}, internal("move payment back to its order", rerr)
	}
	if err != nil {
		return Outcome{}, UpstreamError(err, fmt.Sprintf("payment %s is placed but its pay parameters were lost; repeat the same request", p.ID))
	}
	// Refused: too young to close, or paid or failed meanwhile.
	qres, qerr := s.query(ctx, np)
	if qerr == nil && qres.Accepted() {
		if ap, _, err := s.led.ApplyPayment(bg, np.ID, qres); err == nil {
			np = ap
		}
	}
	if np.Status.Final() {
		return Outcome{Payment: ledger.PaymentToClient(np)}, nil
	}
	wait := minCloseAge - s.now().Sub(np.CreatedAt)
	if wait < time.Second {
		wait = 5 * time.Second
	}
	s.tel.Logger.InfoContext(ctx, "lost order cannot be closed yet; the payment waits", "payment", p.ID,
		"resp_code", res.RespCode, "resp_desc", res.RespDesc, "retry_after", wait)
	return Outcome{Payment: ledger.PaymentToClient(np), Pending: true, RetryAfter: wait}, nil
}

// query asks the upstream for the state of payment p's order.
func (s *Service) query(ctx context.Context, p store.Payment) (ledger.Result, error) {
	res, err := s.call(ctx, nkp.PathPaymentQuery, nkp.PaymentQueryRequest{HuifuID: p.MerchantID, OrgReqDate: p.ReqDate, OrgReqSeqID: p.ReqSeqID}, ledger.FromPaymentQuery)
	if err != nil {
		return res, err
	}
	res.ReqDate, res.ReqSeqID, res.At = p.ReqDate, p.ReqSeqID, s.now()
	return res, nil
}

// unrecorded answers a repeated create of a payment stored without an
// order record (by an earlier version of the sidecar): a pending one is
// sent again from the request kept in its upstream fields, an accepted
// one gets its parameters built from the answer kept there, if it is
// one; otherwise the payment is answered as it stands.
func (s *Service) unrecorded(ctx context.Context, p store.Payment) (Outcome, error) {
	data, err := nkp.DecodeObject(p.UpstreamFields)
	if err != nil {
		return Outcome{Payment: ledger.PaymentToClient(p)}, nil
	}
	if p.Status == store.StatusPending {
		if s.now().Sub(p.UpdatedAt) < s.cfg.InFlight {
			return Outcome{}, errorf(CodePaymentPending, "", "payment %s is being placed by another request; retry shortly", p.ID)
		}
		return s.resend(ctx, p, ledger.OrderRecord{Request: data}, 0)
	}
	params, perr := s.payParams(ctx, p, data, nil)
	if perr != nil {
		s.tel.Logger.WarnContext(ctx, "pay parameters of an earlier payment cannot be rebuilt", slog.String("payment", p.ID), slog.Any("err", perr))
		return Outcome{Payment: ledger.PaymentToClient(p)}, nil
	}
	np, err := s.led.SetPayParams(context.WithoutCancel(ctx), p.ID, params)
	if err != nil {
		return Outcome{}, internal("record pay parameters", err)
	}
	return Outcome{Payment: ledger.PaymentToClient(np)}, nil
}
