package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/store"
)

// OrderRecord is the host's working record of the order a payment stands
// for, from the moment the payment is stored until the front end's pay
// parameters have been built: the order request (sent again, byte for
// byte under the same req_seq_id, after a lost answer), when it was last
// sent and whether that send ended without an answer, the verified answer
// once it came, and the earlier order it replaces, if any.
//
// It is kept in the payment's pay_params column, as the single member of
// an object under the key "$order", because that column is written with
// the answer of the creating call whatever state the payment has reached
// meanwhile, and nothing else writes it: a notification or a reverse
// query never overwrites it. PaymentToClient never shows it; once the
// front end's parameters are built they replace it.
type OrderRecord struct {
	// Request is the order's data as sent upstream (NKP field names),
	// with its req_date and req_seq_id.
	Request map[string]any `json:"request"`
	// Answer is the verified answer accepting the order, kept until the
	// flow plugin has built the pay parameters from it.
	Answer map[string]any `json:"answer,omitempty"`
	// SentAt is when Request was last sent.
	SentAt time.Time `json:"sent_at,omitzero"`
	// LostAt is when the last send ended without a verified answer
	// (transport error, timeout, HTTP error, bad signature); LostError
	// says why.
	LostAt    time.Time `json:"lost_at,omitzero"`
	LostError string    `json:"lost_error,omitempty"`
	// Replaces names the earlier order of the same payment that this one
	// replaces; it is closed upstream before Request is sent.
	Replaces *OrderRef `json:"replaces,omitempty"`
}

// OrderRef names an upstream order of the merchant by its request date
// and serial.
type OrderRef struct {
	ReqDate  string `json:"req_date"`
	ReqSeqID string `json:"req_seq_id"`
}

// InFlight reports whether the last send may still be waiting for its
// answer at now, given how long a send can take at most.
func (o OrderRecord) InFlight(now time.Time, maxSend time.Duration) bool {
	return o.Answer == nil && !o.SentAt.IsZero() && o.LostAt.Before(o.SentAt) && now.Sub(o.SentAt) < maxSend
}

const orderKey = "$order"

// encode returns the pay_params value that holds o.
func (o OrderRecord) encode() (json.RawMessage, error) {
	b, err := json.Marshal(map[string]OrderRecord{orderKey: o})
	if err != nil {
		return nil, fmt.Errorf("ledger: encode order record: %w", err)
	}
	return b, nil
}

// OrderRecordOf returns the order record kept in p, and false when p has
// none (its pay parameters are built, or it was stored without one).
func OrderRecordOf(p store.Payment) (OrderRecord, bool) {
	if !isOrderRecord(p.PayParams) {
		return OrderRecord{}, false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(p.PayParams, &m); err != nil {
		return OrderRecord{}, false
	}
	dec := json.NewDecoder(bytes.NewReader(m[orderKey]))
	dec.UseNumber()
	var o OrderRecord
	if err := dec.Decode(&o); err != nil {
		return OrderRecord{}, false
	}
	return o, true
}

// isOrderRecord reports whether a pay_params value is an order record
// rather than the front end's parameters.
func isOrderRecord(raw json.RawMessage) bool {
	if len(raw) == 0 || !bytes.Contains(raw, []byte(`"`+orderKey+`"`)) {
		return false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return false
	}
	_, ok := m[orderKey]
	return ok && len(m) == 1
}

// HasPayParams reports whether the front end's parameters of p are built.
func HasPayParams(p store.Payment) bool {
	return len(p.PayParams) > 0 && !isOrderRecord(p.PayParams)
}

// OpenPayment stores the new pending payment p with the record of its
// order, before the order is sent: a crash after the send leaves a payment
// whose order a retry sends again under the same req_seq_id. It returns
// store.ErrConflict (wrapped) when p's out_trade_no is taken.
func (l *Ledger) OpenPayment(ctx context.Context, p *store.Payment, o OrderRecord) error {
	raw, err := o.encode()
	if err != nil {
		return err
	}
	p.PayParams = raw
	if err := l.st.CreatePayment(ctx, p); err != nil {
		return fmt.Errorf("ledger: store payment: %w", err)
	}
	return nil
}

// KeepOrder stores o as the order record of the payment id, whatever its
// state; the caller holds the payment (see package payments) so that no
// other writer of the record runs at the same time. It never replaces
// built pay parameters.
func (l *Ledger) KeepOrder(ctx context.Context, id string, o OrderRecord) (store.Payment, error) {
	raw, err := o.encode()
	if err != nil {
		return store.Payment{}, err
	}
	p, err := l.st.GetPayment(ctx, id)
	if err != nil {
		return store.Payment{}, fmt.Errorf("ledger: get payment %s: %w", id, err)
	}
	if HasPayParams(p) {
		return p, nil
	}
	p, _, err = l.st.UpdatePaymentAccepted(ctx, id, "", "", raw, store.Transition{At: l.now()})
	if err != nil {
		return store.Payment{}, fmt.Errorf("ledger: keep order of payment %s: %w", id, err)
	}
	return p, nil
}

// OrderAccepted records the verified answer r accepting the order of
// payment p: its serials, the front end's parameters (params, or, when
// they could not be built yet and params is nil, the order record o with
// the answer in it), and the move from pending to processing, or to the
// final state the answer reports, with the event announcing it.
func (l *Ledger) OrderAccepted(ctx context.Context, p store.Payment, r Result, params json.RawMessage, o OrderRecord) (store.Payment, error) {
	if params == nil {
		raw, err := o.encode()
		if err != nil {
			return p, err
		}
		params = raw
	} else if !json.Valid(params) || isOrderRecord(params) {
		return p, fmt.Errorf("ledger: pay parameters of payment %s are not a JSON value", p.ID)
	}
	if r.Source == "" {
		r.Source = SourceAPI
	}
	t, err := l.paymentTransition(p, r)
	if err != nil {
		return p, fmt.Errorf("ledger: payment %s: %w", p.ID, err)
	}
	if !t.To.Final() {
		t.To = store.StatusProcessing
	}
	np, applied, err := l.st.UpdatePaymentAccepted(ctx, p.ID, r.NkpSeqID, r.PartyOrderID, params, t)
	if err != nil {
		return p, fmt.Errorf("ledger: record accepted order of payment %s: %w", p.ID, err)
	}
	l.tally(ctx, KindPayment, np.ID, applied, np.Status, t, r)
	return np, nil
}

// OrderRefused records that the upstream refused the order of payment p
// (a resp_code that is neither accepted nor a duplicate): the payment
// fails at once with the refusal as its upstream data, which says why,
// and is no longer queried. The caller answered the refusal itself, so no
// event is made.
func (l *Ledger) OrderRefused(ctx context.Context, p store.Payment, r Result) (store.Payment, error) {
	if r.Accepted() {
		return p, errors.New("ledger: an accepted answer is not a refusal")
	}
	np, applied, err := l.st.TransitionPayment(ctx, p.ID, store.Transition{
		To: store.StatusFailed, TransStat: r.TransStat, UpstreamFields: r.Upstream, At: l.at(r),
	})
	if err != nil {
		return p, fmt.Errorf("ledger: record refused order of payment %s: %w", p.ID, err)
	}
	if applied {
		l.results.WithLabelValues(KindPayment, SourceAPI, "refused").Inc()
	}
	return np, nil
}

// Refusal reports whether p failed because the upstream refused its order,
// with the refusal's code and description.
func Refusal(p store.Payment) (code, desc string, refused bool) {
	if p.Status != store.StatusFailed || len(p.UpstreamFields) == 0 {
		return "", "", false
	}
	var a nkp.Result
	if err := json.Unmarshal(p.UpstreamFields, &a); err != nil || a.RespCode == "" || a.Accepted() {
		return "", "", false
	}
	return a.RespCode, a.RespDesc, true
}

// SetPayParams records the front end's parameters of payment id, built
// from its order's answer after the creating call.
func (l *Ledger) SetPayParams(ctx context.Context, id string, params json.RawMessage) (store.Payment, error) {
	if len(params) == 0 || !json.Valid(params) || isOrderRecord(params) {
		return store.Payment{}, fmt.Errorf("ledger: pay parameters of payment %s are not a JSON value", id)
	}
	p, _, err := l.st.UpdatePaymentAccepted(ctx, id, "", "", params, store.Transition{At: l.now()})
	if err != nil {
		return store.Payment{}, fmt.Errorf("ledger: record pay parameters of payment %s: %w", id, err)
	}
	return p, nil
}

// ReplaceOrder moves payment p, which is not final, from its current order
// to the new order o.Request names, keeping o as its order record. Results
// about the old order are stale from then on and change nothing. It
// returns store.ErrConflict (wrapped) when p no longer stands for the
// order it stood for when read, or became final.
func (l *Ledger) ReplaceOrder(ctx context.Context, p store.Payment, to OrderRef, o OrderRecord) (store.Payment, error) {
	raw, err := o.encode()
	if err != nil {
		return p, err
	}
	np, err := l.st.ReplaceOrder(ctx, p.ID, p.ReqDate, p.ReqSeqID, to.ReqDate, to.ReqSeqID, raw, l.now())
	if err != nil {
		return p, fmt.Errorf("ledger: replace the order of payment %s: %w", p.ID, err)
	}
	l.log.Info("payment moved to a new upstream order",
		"payment", p.ID, "from_req_seq_id", p.ReqSeqID, "to_req_seq_id", to.ReqSeqID)
	return np, nil
}

// OpenRefund stores the new pending refund r before it is sent. It returns
// store.ErrConflict (wrapped) when r's out_refund_no is taken.
func (l *Ledger) OpenRefund(ctx context.Context, r *store.Refund) error {
	if err := l.st.CreateRefund(ctx, r); err != nil {
		return fmt.Errorf("ledger: store refund: %w", err)
	}
	return nil
}

// RefundAccepted records the verified answer r accepting refund rf: its
// serial and the move to processing, or to the final state the answer
// reports, with the event announcing it.
func (l *Ledger) RefundAccepted(ctx context.Context, rf store.Refund, r Result) (store.Refund, error) {
	if r.Source == "" {
		r.Source = SourceAPI
	}
	t, err := l.refundTransition(rf, r)
	if err != nil {
		return rf, fmt.Errorf("ledger: refund %s: %w", rf.ID, err)
	}
	if !t.To.Final() {
		t.To = store.StatusProcessing
	}
	nr, applied, err := l.st.TransitionRefund(ctx, rf.ID, t)
	if err != nil {
		return rf, fmt.Errorf("ledger: record accepted refund %s: %w", rf.ID, err)
	}
	l.tally(ctx, KindRefund, nr.ID, applied, nr.Status, t, r)
	return nr, nil
}

// RefundRefused records that the upstream refused refund rf: it fails at
// once, with no event (the caller answered the refusal), and is no longer
// queried.
func (l *Ledger) RefundRefused(ctx context.Context, rf store.Refund, r Result) (store.Refund, error) {
	if r.Accepted() {
		return rf, errors.New("ledger: an accepted answer is not a refusal")
	}
	nr, applied, err := l.st.TransitionRefund(ctx, rf.ID, store.Transition{
		To: store.StatusFailed, TransStat: r.TransStat, UpstreamFields: r.Upstream, At: l.at(r),
	})
	if err != nil {
		return rf, fmt.Errorf("ledger: record refused refund %s: %w", rf.ID, err)
	}
	if applied {
		l.results.WithLabelValues(KindRefund, SourceAPI, "refused").Inc()
	}
	return nr, nil
}

// ScheduleQuery sets when the payment or refund (kind KindPayment or
// KindRefund) is queried next, its attempt count and last error, and
// releases its query lease; a zero next stops querying.
func (l *Ledger) ScheduleQuery(ctx context.Context, kind, id string, next time.Time, attempts int, lastError string) error {
	if err := l.st.ScheduleQuery(ctx, kind, id, next, attempts, lastError); err != nil {
		return fmt.Errorf("ledger: schedule the query of %s %s: %w", kind, id, err)
	}
	return nil
}

// ApplyNotification records the verified notification n and applies its
// result r to the payment pay or the refund ref it names (whichever is not
// nil), as the caller read it when it matched the notification. It reports
// the object's state after the call, whether r moved it and whether n was
// new.
//
// It is one store write: the notification, the object's new state and its
// event are committed together (store.ApplyNotification), so a
// notification costs one commit, and the object is not read again: the
// transition and its event are built from pay or ref, and the store
// re-reads the row under its write lock and applies the transition only
// if it still moves the object forward. A result that cannot move the
// object (already final, or about an order the payment replaced) only
// records n. A notification is applied even when it was seen before: a
// crash before an earlier attempt's commit left nothing, and applying
// twice changes nothing.
func (l *Ledger) ApplyNotification(ctx context.Context, n store.Notification, pay *store.Payment, ref *store.Refund, r Result) (status store.Status, applied, isNew bool, err error) {
	var (
		t    store.Transition
		have store.Status
	)
	switch {
	case pay != nil:
		n.Kind, n.ObjectID, have = KindPayment, pay.ID, pay.Status
		if stale(*pay, r) {
			l.ignoreStale(*pay, r)
			isNew, err := l.RecordNotification(ctx, n)
			return have, false, isNew, err
		}
		t, err = l.paymentTransition(*pay, r)
	case ref != nil:
		n.Kind, n.ObjectID, have = KindRefund, ref.ID, ref.Status
		t, err = l.refundTransition(*ref, r)
	default:
		return "", false, false, errors.New("ledger: apply notification: it names neither a payment nor a refund")
	}
	if err != nil {
		return have, false, false, fmt.Errorf("ledger: %s %s: %w", n.Kind, n.ObjectID, err)
	}
	if !have.CanMoveTo(t.To) {
		l.unchanged(n.Kind, n.ObjectID, have, t.To, r)
		isNew, err := l.RecordNotification(ctx, n)
		return have, false, isNew, err
	}
	res, err := l.st.ApplyNotification(ctx, n, t)
	if err != nil {
		return have, false, false, fmt.Errorf("ledger: apply notification to %s %s: %w", n.Kind, n.ObjectID, err)
	}
	status = res.Payment.Status
	if n.Kind == KindRefund {
		status = res.Refund.Status
	}
	l.tally(ctx, n.Kind, n.ObjectID, res.Applied, status, t, r)
	return status, res.Applied, res.New, nil
}

// RecordNotification keeps the verified notification n for audit without
// applying it (a notification that is not a channel result), and reports
// whether it was new.
func (l *Ledger) RecordNotification(ctx context.Context, n store.Notification) (bool, error) {
	isNew, err := l.st.RecordNotification(ctx, n)
	if err != nil {
		return false, fmt.Errorf("ledger: record notification: %w", err)
	}
	return isNew, nil
}
