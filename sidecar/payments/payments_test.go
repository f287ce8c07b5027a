package payments_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/plugin/mockflow"
	"github.com/paysidecar/paysidecar/sdk/plugin/plugintest"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/payments"
	"github.com/paysidecar/paysidecar/sidecar/pluginhost"
	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/sqlite"
	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

// flows serves the mock flow, through a real gRPC round trip, under the
// name of the Alipay flow; while down is set its PayParams fails as a
// plugin that died during the call does.
type flows struct {
	flow plugin.Flow
	down atomic.Bool
	// shapes counts the ShapeOrder calls made, whether or not they
	// reached the plugin.
	shapes atomic.Int32
}

func (f *flows) Flow(name string) (plugin.Flow, error) {
	if name != client.FlowAlipayNative {
		return nil, fmt.Errorf("flow %s: %w", name, pluginhost.ErrUnknownFlow)
	}
	return downFlow{Flow: f.flow, f: f}, nil
}

// Infos describes the running flows: the mock as alipay-native, and a
// WeChat flow that needs a buyer (never called).
func (f *flows) Infos() []plugin.Info {
	return []plugin.Info{
		{Name: client.FlowAlipayNative, TradeType: upstream.TradeAlipayNative},
		{Name: client.FlowWeChatJSAPI, TradeType: upstream.TradeWeChatJSAPI, Buyer: plugin.BuyerRequired},
	}
}

type downFlow struct {
	plugin.Flow
	f *flows
}

func (d downFlow) ShapeOrder(ctx context.Context, in plugin.OrderInput) (plugin.OrderShape, error) {
	d.f.shapes.Add(1)
	return d.Flow.ShapeOrder(ctx, in)
}

func (d downFlow) PayParams(ctx context.Context, in plugin.PayParamsInput) (plugin.PayParams, error) {
	if d.f.down.Load() {
		return plugin.PayParams{}, fmt.Errorf("plugin exited during PayParams: %w", pluginhost.ErrUnavailable)
	}
	return d.Flow.PayParams(ctx, in)
}

type fixture struct {
	t     *testing.T
	ctx   context.Context
	sb    *sandboxtest.Instance
	clock *sandboxtest.Clock
	st    store.Store
	led   *ledger.Ledger
	mock  *mockflow.Flow
	flows *flows
	svc   *payments.Service
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clock := sandboxtest.NewClock(time.Now())
	sb := sandboxtest.Start(t, sandboxtest.WithClock(clock.Now),
		sandboxtest.WithFaults(sandbox.Faults{Notify: sandbox.NotifyFaults{DropRate: 1}}))
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	tel := telemetry.Bundle{Logger: slog.New(slog.DiscardHandler)}
	led, err := ledger.New(st, ledger.Options{Telemetry: tel})
	if err != nil {
		t.Fatal(err)
	}
	mock := mockflow.New(slog.New(slog.DiscardHandler))
	mock.Override(mockflow.Funcs{ShapeOrder: func(_ context.Context, in plugin.OrderInput) (plugin.OrderShape, error) {
		fields := map[string]string{}
		if v := in.Metadata["alipay_data"]; v != "" {
			fields["alipay_data"] = v
		}
		return plugin.OrderShape{TradeType: upstream.TradeAlipayNative, Fields: fields}, nil
	}})
	fl := &flows{flow: plugintest.Serve(t, mock)}
	svc, err := payments.New(payments.Config{
		MerchantID: sb.HuifuID, NotifyURL: "http://127.0.0.1:8001/notify", MaxAmountFen: 100_000,
		InFlight: 5 * time.Second, RefreshInterval: time.Nanosecond,
	}, payments.Deps{Store: st, Ledger: led, Upstream: sb.NKPClient(), Flows: fl, Telemetry: tel})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return &fixture{t: t, ctx: ctx, sb: sb, clock: clock, st: st, led: led, mock: mock, flows: fl, svc: svc}
}

func order(out string) client.CreatePaymentRequest {
	return client.CreatePaymentRequest{Flow: client.FlowAlipayNative, OutTradeNo: out, AmountFen: 10, Description: "tea"}
}

func (f *fixture) create(req client.CreatePaymentRequest) (payments.Outcome, error) {
	b, _ := json.Marshal(req)
	return f.svc.Create(f.ctx, payments.CreateInput{Request: req, AmountGiven: true, Hash: string(b)})
}

func (f *fixture) stored(out string) store.Payment {
	f.t.Helper()
	p, err := f.st.GetPaymentByOutTradeNo(f.ctx, f.sb.HuifuID, out)
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *fixture) requests(path string) int { return f.sb.Stats(f.t, "").Requests[path] }

func (f *fixture) faults(fs sandbox.Faults) {
	f.t.Helper()
	if err := f.sb.Control.SetFaults(f.ctx, fs); err != nil {
		f.t.Fatal(err)
	}
}

// answerLost makes the upstream book every order and answer HTTP 500.
var answerLost = sandbox.Faults{
	Notify: sandbox.NotifyFaults{DropRate: 1},
	API:    sandbox.APIFaults{Status500Rate: 1, Paths: []string{nkp.PathJSPay}},
}

var noFaults = sandbox.Faults{Notify: sandbox.NotifyFaults{DropRate: 1}}

func wantCode(t *testing.T, err error, code payments.Code, field string) *payments.Error {
	t.Helper()
	var e *payments.Error
	if !errors.As(err, &e) || e.Code != code || e.Field != field || e.Message == "" {
		t.Fatalf("error = %#v, want %s field %q", err, code, field)
	}
	return e
}

// qrCode reads the upstream's qr_code out of the mock's pay parameters.
func qrCode(t *testing.T, p client.Payment) string {
	t.Helper()
	var pp struct {
		Upstream map[string]string `json:"upstream"`
	}
	if err := json.Unmarshal(p.PayParams, &pp); err != nil || pp.Upstream["qr_code"] == "" {
		t.Fatalf("pay params %s carry no qr_code (%v)", p.PayParams, err)
	}
	return pp.Upstream["qr_code"]
}

func TestCreateThenRepeat(t *testing.T) {
	f := newFixture(t)
	out, err := f.create(order("o-1"))
	if err != nil {
		t.Fatal(err)
	}
	if !out.Created || out.Pending || out.Payment.Status != client.StatusProcessing || out.Payment.NkpSeqID == "" {
		t.Fatalf("outcome = %+v", out)
	}
	qr := qrCode(t, out.Payment)
	again, err := f.create(order("o-1"))
	if err != nil {
		t.Fatal(err)
	}
	if again.Created || again.Payment.ID != out.Payment.ID || qrCode(t, again.Payment) != qr {
		t.Fatalf("repeat = %+v, want the same payment", again)
	}
	other := order("o-1")
	other.AmountFen = 11
	_, err = f.create(other)
	wantCode(t, err, payments.CodeOutTradeNoConflict, "out_trade_no")
	if n := f.requests(nkp.PathJSPay); n != 1 {
		t.Fatalf("the upstream got %d orders, want 1", n)
	}
}

// A repeated create is answered from the stored payment without waiting
// for the flow's ShapeOrder, which runs beside the out_trade_no lookup:
// the shaping is abandoned, and nothing more is stored or sent.
func TestRepeatedCreateAbandonsItsShaping(t *testing.T) {
	f := newFixture(t)
	out, err := f.create(order("o-shaped"))
	if err != nil {
		t.Fatal(err)
	}
	// From now on ShapeOrder never answers until its caller gives up.
	f.mock.Override(mockflow.Funcs{ShapeOrder: func(ctx context.Context, _ plugin.OrderInput) (plugin.OrderShape, error) {
		<-ctx.Done()
		return plugin.OrderShape{}, ctx.Err()
	}})
	again, err := f.create(order("o-shaped"))
	if err != nil {
		t.Fatal(err)
	}
	if again.Created || again.Payment.ID != out.Payment.ID || qrCode(t, again.Payment) != qrCode(t, out.Payment) {
		t.Fatalf("repeat = %+v, want the same payment", again)
	}
	if n := f.requests(nkp.PathJSPay); n != 1 {
		t.Fatalf("the upstream got %d orders, want 1", n)
	}
}

// An order whose buyer comes as a one-time OAuth code is shaped (the code
// exchanged) only once the lookup has found no payment: a repeated create
// does not spend the code.
func TestRepeatedCreateDoesNotSpendTheBuyersCode(t *testing.T) {
	f := newFixture(t)
	f.mock.Override(mockflow.Funcs{ShapeOrder: func(_ context.Context, in plugin.OrderInput) (plugin.OrderShape, error) {
		if in.Buyer.Code != "one-time" {
			return plugin.OrderShape{}, fmt.Errorf("buyer code %q, want one-time", in.Buyer.Code)
		}
		return plugin.OrderShape{TradeType: upstream.TradeAlipayNative}, nil
	}})
	req := order("o-code")
	req.Buyer = &client.Buyer{Code: "one-time"}
	out, err := f.create(req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.create(req)
	if err != nil {
		t.Fatal(err)
	}
	if again.Payment.ID != out.Payment.ID {
		t.Fatalf("repeat = %+v, want payment %s", again, out.Payment.ID)
	}
	if n := f.flows.shapes.Load(); n != 1 {
		t.Fatalf("ShapeOrder was called %d times, want once (the repeat must not exchange the code)", n)
	}
}

// failingCreates is a store whose commit of a new payment fails.
type failingCreates struct {
	store.Store
}

func (failingCreates) CreatePayment(context.Context, *store.Payment) error {
	return errors.New("disk full")
}

// The order is signed while the pending payment's commit runs; when that
// commit fails, the signed order is dropped: nothing reaches the upstream.
func TestOrderSignedAheadIsNotSentWhenItsCommitFails(t *testing.T) {
	f := newFixture(t)
	tel := telemetry.Bundle{Logger: slog.New(slog.DiscardHandler)}
	led, err := ledger.New(failingCreates{f.st}, ledger.Options{Telemetry: tel})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := payments.New(payments.Config{MerchantID: f.sb.HuifuID, NotifyURL: "http://127.0.0.1:8001/notify"},
		payments.Deps{Store: f.st, Ledger: led, Upstream: f.sb.NKPClient(), Flows: f.flows, Telemetry: tel})
	if err != nil {
		t.Fatal(err)
	}
	req := order("o-uncommitted")
	_, err = svc.Create(f.ctx, payments.CreateInput{Request: req, AmountGiven: true, Hash: "h"})
	wantCode(t, err, payments.CodeInternal, "")
	if n := f.requests(nkp.PathJSPay); n != 0 {
		t.Fatalf("the upstream got %d orders for a payment that was never stored, want 0", n)
	}
}

func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name        string
		mod         func(*client.CreatePaymentRequest)
		amountGiven bool
		code        payments.Code
		field       string
	}{
		{"missing amount", func(r *client.CreatePaymentRequest) { r.AmountFen = 0 }, false, payments.CodeMissingField, "amount_fen"},
		{"zero amount", func(r *client.CreatePaymentRequest) { r.AmountFen = 0 }, true, payments.CodeAmountInvalid, "amount_fen"},
		{"amount too large", func(r *client.CreatePaymentRequest) { r.AmountFen = 100_001 }, true, payments.CodeAmountTooLarge, "amount_fen"},
		{"NUL in description", func(r *client.CreatePaymentRequest) { r.Description = "tea\x00" }, true, payments.CodeInvalidField, "description"},
		{"control in description", func(r *client.CreatePaymentRequest) { r.Description = "tea\nbag" }, true, payments.CodeInvalidField, "description"},
		{"bidi override in description", func(r *client.CreatePaymentRequest) { r.Description = "tea \u202egnp.exe" }, true, payments.CodeInvalidField, "description"},
		{"bidi isolate in description", func(r *client.CreatePaymentRequest) { r.Description = "tea \u2067x" }, true, payments.CodeInvalidField, "description"},
		{"invalid UTF-8 in description", func(r *client.CreatePaymentRequest) { r.Description = "tea \xff" }, true, payments.CodeInvalidField, "description"},
		{"replacement character in description", func(r *client.CreatePaymentRequest) { r.Description = "tea \ufffd" }, true, payments.CodeInvalidField, "description"},
		{"bidi in metadata", func(r *client.CreatePaymentRequest) { r.Metadata = map[string]string{"k": "\u200f"} }, true, payments.CodeInvalidField, "metadata"},
		{"NUL in buyer", func(r *client.CreatePaymentRequest) { r.Buyer = &client.Buyer{OpenID: "o\x00"} }, true, payments.CodeInvalidField, "buyer.openid"},
		{"unknown flow", func(r *client.CreatePaymentRequest) { r.Flow = "unionpay" }, true, payments.CodeUnknownFlow, "flow"},
		{"missing buyer", func(r *client.CreatePaymentRequest) { r.Flow = client.FlowWeChatJSAPI }, true, payments.CodeMissingBuyer, "buyer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := order("bad-" + strings.ReplaceAll(tt.name, " ", "-"))
			tt.mod(&req)
			_, err := f.svc.Create(f.ctx, payments.CreateInput{Request: req, AmountGiven: tt.amountGiven, Hash: "h"})
			wantCode(t, err, tt.code, tt.field)
			if _, err := f.st.GetPaymentByOutTradeNo(f.ctx, f.sb.HuifuID, req.OutTradeNo); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("a refused payment was stored: %v", err)
			}
		})
	}
	if n := f.requests(nkp.PathJSPay); n != 0 {
		t.Fatalf("bad input sent %d orders upstream", n)
	}
	// Ordinary text passes: CJK, emoji, punctuation.
	req := order("good-text")
	req.Description = "一杯茶 🍵 — “tea”"
	if _, err := f.create(req); err != nil {
		t.Fatal(err)
	}
}

func TestRefusedOrderIsRefusedAgainWithoutSending(t *testing.T) {
	f := newFixture(t)
	req := order("refused")
	req.Metadata = map[string]string{"alipay_data": "not json"}
	_, err := f.create(req)
	first := wantCode(t, err, payments.CodeUpstreamRejected, "")
	_, err = f.create(req)
	second := wantCode(t, err, payments.CodeUpstreamRejected, "")
	if first.Message != second.Message || !strings.Contains(first.Message, nkp.CodeBadParams) {
		t.Fatalf("refusals %q and %q differ or do not carry the upstream's code", first.Message, second.Message)
	}
	p := f.stored("refused")
	if c := ledger.PaymentToClient(p); c.Status != client.StatusFailed || c.FailureCode != nkp.CodeBadParams || c.FailureMessage == "" {
		t.Fatalf("refused payment = %+v", c)
	}
	if n := f.requests(nkp.PathJSPay); n != 1 {
		t.Fatalf("the upstream got %d orders, want the one refused", n)
	}
}

// An order booked upstream whose answer was lost, then failed upstream:
// the repeated create answers the failed payment, not a refusal made of
// the first attempt's HTTP error.
func TestLostAnswerThenFailedUpstream(t *testing.T) {
	f := newFixture(t)
	f.faults(answerLost)
	_, err := f.create(order("lost-failed"))
	e := wantCode(t, err, payments.CodeUpstreamUnavailable, "")
	if !strings.Contains(e.Message, "repeat the same request") {
		t.Fatalf("message %q does not say what to do", e.Message)
	}
	f.faults(noFaults)
	p := f.stored("lost-failed")
	if p.Status != store.StatusPending {
		t.Fatalf("status after a lost answer = %s", p.Status)
	}
	if _, err := f.sb.Control.SettlePayment(f.ctx, sandbox.SettleRequest{HuifuID: f.sb.HuifuID, ReqDate: p.ReqDate, ReqSeqID: p.ReqSeqID,
		Result: sandbox.ResultFailed, BankCode: "NOTENOUGH", BankMessage: "balance too low"}); err != nil {
		t.Fatal(err)
	}
	out, err := f.create(order("lost-failed"))
	if err != nil {
		t.Fatalf("repeat after the failure: %v", err)
	}
	if out.Pending || out.Created || out.Payment.Status != client.StatusFailed || out.Payment.ID != p.ID ||
		out.Payment.FailureCode != "NOTENOUGH" || out.Payment.FailureMessage != "balance too low" {
		t.Fatalf("repeat = %+v, want the failed payment and why", out)
	}
	again, err := f.create(order("lost-failed"))
	if err != nil || again.Payment.Status != client.StatusFailed {
		t.Fatalf("second repeat = %+v, %v", again, err)
	}
	if n := f.sb.Stats(t, "").Orders; n != 1 {
		t.Fatalf("the upstream booked %d orders, want 1", n)
	}
}

// An order booked upstream whose answer was lost and that is still open:
// nobody holds its pay parameters, so it is closed and the payment placed
// again under a new serial once the upstream lets it be closed.
func TestLostAnswerOpenOrderIsReplaced(t *testing.T) {
	f := newFixture(t)
	f.faults(answerLost)
	if _, err := f.create(order("lost-open")); err == nil {
		t.Fatal("no error for a lost answer")
	}
	f.faults(noFaults)
	first := f.stored("lost-open")

	// Younger than a minute: the old order cannot be closed yet.
	out, err := f.create(order("lost-open"))
	if err != nil {
		t.Fatalf("repeat: %v", err)
	}
	if !out.Pending || out.RetryAfter <= 0 || out.Payment.Status != client.StatusProcessing || len(out.Payment.PayParams) != 0 {
		t.Fatalf("repeat of a young lost order = %+v, want pending without pay parameters", out)
	}
	if p := f.stored("lost-open"); p.ReqSeqID != first.ReqSeqID {
		t.Fatalf("the payment moved to %s although the old order is open", p.ReqSeqID)
	}

	f.clock.Advance(2 * time.Minute)
	out, err = f.create(order("lost-open"))
	if err != nil {
		t.Fatalf("repeat after a minute: %v", err)
	}
	if out.Pending || out.Payment.ID != first.ID || out.Payment.ReqSeqID == first.ReqSeqID {
		t.Fatalf("repeat = %+v, want the payment on a new order", out)
	}
	qrCode(t, out.Payment)
	orders, err := f.sb.Control.Orders(f.ctx, sandbox.Filter{HuifuID: f.sb.HuifuID})
	if err != nil {
		t.Fatal(err)
	}
	if len(orders) != 2 || orders[0].ReqSeqID != first.ReqSeqID || orders[0].ClosedBy != "close" || orders[1].ReqSeqID != out.Payment.ReqSeqID {
		t.Fatalf("upstream orders = %+v, want the old one closed and the new one open", orders)
	}

	// A late answer about the old order changes nothing.
	old, _ := ledger.FromPaymentQuery(map[string]any{"resp_code": "00000000", "org_req_date": first.ReqDate,
		"org_req_seq_id": first.ReqSeqID, "trans_stat": "F", "bank_code": nkp.BankCodeOrderClosed})
	if p, applied, err := f.led.ApplyPayment(f.ctx, first.ID, old); err != nil || applied || p.Status != store.StatusProcessing {
		t.Fatalf("stale result: %v %v %s", applied, err, p.Status)
	}
	// The new order pays the payment.
	f.sb.SettlePayment(t, out.Payment.ReqDate, out.Payment.ReqSeqID, sandbox.ResultPaid)
	got, err := f.svc.Get(f.ctx, first.ID)
	if err != nil || got.Status != client.StatusSucceeded {
		t.Fatalf("after paying the new order: %+v %v", got, err)
	}
}

// A flow plugin that is down when the order's answer comes: the order is
// placed and said to be, and the repeat builds the pay parameters from the
// kept answer, even after a reverse query has seen the order.
func TestPayParamsAfterThePluginComesBack(t *testing.T) {
	f := newFixture(t)
	f.flows.down.Store(true)
	out, err := f.create(order("plugin-down"))
	if err != nil {
		t.Fatal(err)
	}
	if !out.Pending || out.Payment.Status != client.StatusProcessing || len(out.Payment.PayParams) != 0 || out.Payment.NkpSeqID == "" {
		t.Fatalf("outcome with the plugin down = %+v", out)
	}
	// Still down: the repeat says the same.
	if again, err := f.create(order("plugin-down")); err != nil || !again.Pending {
		t.Fatalf("repeat with the plugin down = %+v, %v", again, err)
	}
	// The reverse query sees the order meanwhile.
	p := f.stored("plugin-down")
	res, err := f.svc.Get(f.ctx, p.ID)
	if err != nil || res.Status != client.StatusProcessing || len(res.PayParams) != 0 {
		t.Fatalf("get = %+v, %v", res, err)
	}
	f.flows.down.Store(false)
	out, err = f.create(order("plugin-down"))
	if err != nil {
		t.Fatal(err)
	}
	if out.Pending || out.Payment.ID != p.ID {
		t.Fatalf("repeat = %+v", out)
	}
	qrCode(t, out.Payment)
	if n := f.requests(nkp.PathJSPay); n != 1 {
		t.Fatalf("the upstream got %d orders, want 1", n)
	}
}

// TestCreateBuildsPayParamsFromTheFlowsRecipe: a flow that gives a pay
// recipe when it shapes the order has its create's pay parameters built by
// the host, with no PayParams call (even while that call would fail); a
// recipe the host cannot build falls back to the call; a recipe that
// finds the answer malformed fails as the call would.
func TestCreateBuildsPayParamsFromTheFlowsRecipe(t *testing.T) {
	recipe := func(in plugin.OrderInput) plugin.PayRecipe {
		return plugin.PayRecipe{Kind: "k", Root: plugin.PayValue{Op: plugin.PayObject, Members: []plugin.PayMember{
			{Name: "qr", Value: plugin.PayValue{Op: plugin.PayURL, Field: in.Metadata["field"]}},
			{Name: "payment", Value: plugin.PayValue{Op: plugin.PayLiteral, Literal: []byte(`"` + in.PaymentID + `"`)}},
			{Name: "extra", Value: plugin.PayValue{Op: plugin.PayOp(in.Metadata["op"]), Field: "qr_code", Literal: []byte("1")}},
		}}}
	}
	f := newFixture(t)
	f.mock.Override(mockflow.Funcs{ShapeOrder: func(_ context.Context, in plugin.OrderInput) (plugin.OrderShape, error) {
		r := recipe(in)
		return plugin.OrderShape{TradeType: upstream.TradeAlipayNative, PayParams: &r}, nil
	}})
	payParamsCalls := func() int {
		n := 0
		for _, c := range f.mock.Calls() {
			if c == "PayParams" {
				n++
			}
		}
		return n
	}
	withRecipe := func(out, field, op string) client.CreatePaymentRequest {
		req := order(out)
		req.Metadata = map[string]string{"field": field, "op": op}
		return req
	}

	f.flows.down.Store(true) // a PayParams call would fail
	out, err := f.create(withRecipe("recipe", "qr_code", "literal"))
	if err != nil {
		t.Fatal(err)
	}
	var pp struct {
		QR, Payment string
		Extra       int
	}
	if err := json.Unmarshal(out.Payment.PayParams, &pp); err != nil || !strings.HasPrefix(pp.QR, "http") ||
		pp.Payment != out.Payment.ID || pp.Extra != 1 || out.Pending {
		t.Fatalf("outcome = %+v (pay params %s, %v)", out, out.Payment.PayParams, err)
	}
	if n := payParamsCalls(); n != 0 {
		t.Fatalf("%d PayParams calls, want none", n)
	}
	if again, err := f.create(withRecipe("recipe", "qr_code", "literal")); err != nil || string(again.Payment.PayParams) != string(out.Payment.PayParams) {
		t.Fatalf("repeat = %+v, %v; want the same pay parameters", again, err)
	}

	f.flows.down.Store(false)
	out, err = f.create(withRecipe("newer-recipe", "qr_code", "from_a_newer_sdk"))
	if err != nil {
		t.Fatal(err)
	}
	if qrCode(t, out.Payment) == "" || payParamsCalls() != 1 {
		t.Fatalf("a recipe the host cannot build: outcome %+v after %d PayParams calls, want the plugin's answer after one", out, payParamsCalls())
	}

	_, err = f.create(withRecipe("bad-answer", "no_such_field", "literal"))
	e := wantCode(t, err, payments.CodeInvalidField, "no_such_field")
	if !strings.Contains(e.Message, "was placed") {
		t.Errorf("message %q does not say the order was placed", e.Message)
	}
	if payParamsCalls() != 1 {
		t.Errorf("%d PayParams calls, want still one", payParamsCalls())
	}
}

func TestRefunds(t *testing.T) {
	f := newFixture(t)
	out, err := f.create(order("refund-me"))
	if err != nil {
		t.Fatal(err)
	}
	f.sb.SettlePayment(t, out.Payment.ReqDate, out.Payment.ReqSeqID, sandbox.ResultPaid)
	if p, err := f.svc.Get(f.ctx, out.Payment.ID); err != nil || p.Status != client.StatusSucceeded {
		t.Fatalf("payment = %+v, %v", p, err)
	}
	refund := func(no string, amount int64, given bool) (client.Refund, bool, bool, error) {
		return f.svc.Refund(f.ctx, payments.RefundInput{PaymentID: out.Payment.ID,
			Request: client.CreateRefundRequest{OutRefundNo: no, AmountFen: amount, Reason: " changed mind "}, AmountGiven: given, Hash: no + fmt.Sprint(amount)})
	}
	_, _, _, err = refund("r-0", 0, false)
	wantCode(t, err, payments.CodeMissingField, "amount_fen")
	_, _, _, err = refund("r-0", 11, true)
	wantCode(t, err, payments.CodeRefundExceedsPayment, "amount_fen")

	r, created, known, err := refund("r-1", 4, true)
	if err != nil || !created || !known || r.Status != client.StatusProcessing || r.NkpSeqID == "" || r.Reason != "changed mind" {
		t.Fatalf("refund = %+v %v %v %v", r, created, known, err)
	}
	again, created, _, err := refund("r-1", 4, true)
	if err != nil || created || again.ID != r.ID {
		t.Fatalf("repeat = %+v %v %v", again, created, err)
	}
	_, _, _, err = refund("r-2", 7, true)
	wantCode(t, err, payments.CodeRefundExceedsPayment, "amount_fen")

	// A refund whose answer is lost: the repeat learns its state by query.
	f.faults(sandbox.Faults{Notify: sandbox.NotifyFaults{DropRate: 1}, API: sandbox.APIFaults{Status500Rate: 1, Paths: []string{nkp.PathRefund}}})
	_, _, _, err = refund("r-3", 6, true)
	wantCode(t, err, payments.CodeUpstreamUnavailable, "")
	f.faults(noFaults)
	r3, created, known, err := refund("r-3", 6, true)
	if err != nil || created || !known || r3.Status != client.StatusProcessing || r3.NkpSeqID == "" {
		t.Fatalf("repeat after a lost answer = %+v %v %v %v", r3, created, known, err)
	}
	if n := f.sb.Stats(t, "").Refunds; n != 2 {
		t.Fatalf("the upstream booked %d refunds, want 2", n)
	}
	list, err := f.svc.ListRefunds(f.ctx, out.Payment.ID)
	if err != nil || len(list) != 2 {
		t.Fatalf("refunds = %+v, %v", list, err)
	}
}

func TestClose(t *testing.T) {
	f := newFixture(t)
	out, err := f.create(order("close-me"))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = f.svc.Close(f.ctx, out.Payment.ID)
	wantCode(t, err, payments.CodeCloseRejected, "")
	f.clock.Advance(2 * time.Minute)
	p, closed, err := f.svc.Close(f.ctx, out.Payment.ID)
	if err != nil || !closed || p.Status != client.StatusClosed {
		t.Fatalf("close = %+v %v %v", p, closed, err)
	}
	if p, closed, err = f.svc.Close(f.ctx, out.Payment.ID); err != nil || !closed {
		t.Fatalf("closing again = %+v %v %v", p, closed, err)
	}
	_, _, err = f.svc.Close(f.ctx, "pay_nope")
	wantCode(t, err, payments.CodeNotFound, "")
}

// A payment created after SetFirstQueryAfter is first queried after the
// new delay; one created before keeps its time.
func TestSetFirstQueryAfter(t *testing.T) {
	f := newFixture(t)
	firstQuery := func(out string) time.Duration {
		t.Helper()
		if _, err := f.create(order(out)); err != nil {
			t.Fatal(err)
		}
		p := f.stored(out)
		return p.NextQueryAt.Sub(p.CreatedAt)
	}
	if got := firstQuery("o-1"); got != 15*time.Second {
		t.Fatalf("first query after %s, want the default 15s", got)
	}
	f.svc.SetFirstQueryAfter(time.Minute)
	if got := firstQuery("o-2"); got != time.Minute {
		t.Errorf("first query after %s, want 1m", got)
	}
	if got := f.stored("o-1"); got.NextQueryAt.Sub(got.CreatedAt) != 15*time.Second {
		t.Errorf("an earlier payment's first query moved to %s", got.NextQueryAt.Sub(got.CreatedAt))
	}
}
