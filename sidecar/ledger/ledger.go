// Package ledger is the one place where results from the upstream become
// state and events. A notification, a reverse query and the answer to a
// creating call all report a trans_stat; the ledger maps it to a state,
// refuses amounts that disagree with the stored order, and moves the payment
// or refund forward together with the event that announces a final state,
// in one store transaction. A result that would not move the object forward
// (a duplicate, a stale "processing" after success, a result about an order
// the payment no longer stands for) changes nothing and is not an error.
//
// Invariants:
//
//   - The ledger is the only writer of payment and refund state: the app
//     API (through package payments), the notification ingress and the
//     reverse query hand it results and never write those rows themselves.
//   - Every upstream answer becomes a Result through one function per kind
//     of answer (FromOrder, FromPaymentQuery, FromClose, FromRefund,
//     FromRefundQuery, FromNotification), which alone know which field of
//     which answer names which serial, in either field dialect.
//   - A payment's order record (OrderRecord) is kept where its pay
//     parameters go until they are built, and is never shown.
package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

// Sources of a result, reported in the event's data.source.
const (
	SourceNotification = "notification"
	SourceQuery        = "query"
	SourceAPI          = "api"
	// SourceImport marks the event of a payment the sidecar did not
	// place, found upstream when a refund named it (ImportPayment).
	SourceImport = "import"
)

// Object kinds, used in metrics and errors.
const (
	KindPayment = "payment"
	KindRefund  = "refund"
)

// CodeAmountMismatch is the stable error code of a result whose amount
// differs from the stored order.
const CodeAmountMismatch = "amount_mismatch"

// ErrAmountMismatch is matched (errors.Is) by every AmountMismatchError.
var ErrAmountMismatch = errors.New(CodeAmountMismatch)

// AmountMismatchError reports a result whose amount (trans_amt of a
// payment, ord_amt of a refund) differs from the stored amount. Such a
// result is refused and changes nothing.
type AmountMismatchError struct {
	// Kind is "payment" or "refund".
	Kind string
	// ObjectID is the payment or refund id.
	ObjectID string
	// Stored is the amount of the stored order.
	Stored nkp.Fen
	// Reported is the amount the upstream reported.
	Reported nkp.Fen
}

// Error implements error.
func (e *AmountMismatchError) Error() string {
	return fmt.Sprintf("%s: %s %s: upstream reports %s yuan, stored amount is %s yuan",
		CodeAmountMismatch, e.Kind, e.ObjectID, e.Reported.Yuan(), e.Stored.Yuan())
}

// Code returns the stable error code, "amount_mismatch".
func (e *AmountMismatchError) Code() string { return CodeAmountMismatch }

// Is makes errors.Is(err, ErrAmountMismatch) true.
func (e *AmountMismatchError) Is(target error) bool { return target == ErrAmountMismatch }

// Result is what the upstream reported about a payment or a refund, already
// verified by the caller. The functions FromOrder, FromPaymentQuery,
// FromClose, FromRefund, FromRefundQuery and FromNotification build it,
// one per kind of answer.
type Result struct {
	// RespCode and RespDesc are the answer's own result code: whether
	// the call was accepted, refused, a duplicate or about an unknown
	// order. Empty when the answer carried none.
	RespCode string
	RespDesc string
	// ReqDate and ReqSeqID name the order or refund the result is about,
	// when the answer says; a result about another order than the one a
	// payment now stands for is stale and changes nothing.
	ReqDate  string
	ReqSeqID string
	// TransStat is the upstream's trans_stat: S, F, P, I or empty.
	TransStat string
	// BankCode and BankMessage explain a failure; bank code
	// nkp.BankCodeOrderClosed marks a closed order.
	BankCode    string
	BankMessage string
	// NkpSeqID, PartyOrderID and OutTransID are the serials the upstream
	// reported; empty values leave the stored ones alone.
	NkpSeqID     string
	PartyOrderID string
	OutTransID   string
	// Amount is the amount the upstream reported: trans_amt for a payment,
	// ord_amt for a refund. Zero means the answer carried none and skips
	// the check.
	Amount nkp.Fen
	// TradeType is the trade_type a payment query reports.
	TradeType string
	// Refunded is the total refunded so far that a payment query reports
	// (refunded_amt); zero otherwise.
	Refunded nkp.Fen
	// Upstream is the verified upstream data as a JSON object: the decoded
	// resp_data of a notification, or the answer to a query. It is stored
	// with the object and carried in the event.
	Upstream json.RawMessage
	// Notification is the notification form exactly as received, when
	// Source is SourceNotification.
	Notification *client.UpstreamNotification
	// Source is SourceNotification, SourceQuery or SourceAPI.
	Source string
	// At is when the result was observed; the ledger's clock when zero.
	At time.Time
}

// Accepted reports whether the call was accepted (00000000) or is being
// processed (00000100).
func (r Result) Accepted() bool {
	return nkp.Result{RespCode: r.RespCode}.Accepted()
}

// Options configures a Ledger. Every field is optional.
type Options struct {
	// Telemetry is the logger (conflicts and refusals), registerer and
	// clock of the ledger.
	Telemetry telemetry.Bundle
	// Published is called after an event has been committed together with
	// its transition, with the context of the call that produced it (and
	// so its trace span). The delivery dispatcher uses it to wake up at
	// once. It must not block.
	Published func(ctx context.Context, e store.Event)
	// Logger receives conflicts and refusals; slog.Default when nil.
	Logger *slog.Logger
	// Registerer receives the ledger's metrics; none are registered when
	// nil.
	Registerer prometheus.Registerer
}

// Ledger applies upstream results to the store. It is safe for concurrent
// use.
type Ledger struct {
	st        store.Store
	now       func() time.Time
	published func(ctx context.Context, e store.Event)
	log       *slog.Logger
	results   *prometheus.CounterVec
}

// New returns a Ledger writing to st.
func New(st store.Store, opts Options) (*Ledger, error) {
	if st == nil {
		return nil, errors.New("ledger: nil store")
	}
	tel := opts.Telemetry.WithDefaults()
	l := &Ledger{
		st:        st,
		now:       tel.Now,
		published: opts.Published,
		log:       tel.Logger,
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paysidecar_ledger_results_total",
			Help: "Upstream results applied to payments and refunds, by kind, source and result (applied, unchanged, conflict, amount_mismatch, refused, stale).",
		}, []string{"kind", "source", "result"}),
	}
	// Every series an alert or a panel reads exists from the start.
	for _, kind := range []string{KindPayment, KindRefund} {
		for _, source := range []string{SourceNotification, SourceQuery, SourceAPI, SourceImport} {
			for _, result := range []string{"applied", "unchanged", "conflict", CodeAmountMismatch, "refused", "stale"} {
				l.results.WithLabelValues(kind, source, result)
			}
		}
	}
	if err := tel.Register(l.results); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	return l, nil
}

// CheckPaymentAmount refuses a result whose reported amount differs from
// the payment's, counting the refusal. A zero reported amount passes.
func (l *Ledger) CheckPaymentAmount(p store.Payment, r Result) error {
	if r.Amount != 0 && int64(r.Amount) != p.AmountFen {
		l.results.WithLabelValues(KindPayment, r.Source, CodeAmountMismatch).Inc()
		return &AmountMismatchError{Kind: KindPayment, ObjectID: p.ID, Stored: nkp.Fen(p.AmountFen), Reported: r.Amount}
	}
	return nil
}

// CheckRefundAmount refuses a result whose reported ord_amt differs from
// the refund's amount, counting the refusal. A zero reported amount passes.
func (l *Ledger) CheckRefundAmount(rf store.Refund, r Result) error {
	if r.Amount != 0 && int64(r.Amount) != rf.AmountFen {
		l.results.WithLabelValues(KindRefund, r.Source, CodeAmountMismatch).Inc()
		return &AmountMismatchError{Kind: KindRefund, ObjectID: rf.ID, Stored: nkp.Fen(rf.AmountFen), Reported: r.Amount}
	}
	return nil
}

// paymentTransition builds the transition that r asks of payment p, with
// the event when the new state is final. It checks the amount and does not
// touch the store, so that ApplyPayment and OrderAccepted, which apply it
// with different store calls, produce the same event.
func (l *Ledger) paymentTransition(p store.Payment, r Result) (store.Transition, error) {
	if err := l.CheckPaymentAmount(p, r); err != nil {
		return store.Transition{}, err
	}
	if err := validUpstream(r.Upstream); err != nil {
		return store.Transition{}, err
	}
	at := l.at(r)
	to := PaymentStatusFromUpstream(r.TransStat, r.BankCode, p.ExpiresAt, at)
	t := store.Transition{
		To:             to,
		TransStat:      r.TransStat,
		NkpSeqID:       r.NkpSeqID,
		PartyOrderID:   r.PartyOrderID,
		OutTransID:     r.OutTransID,
		UpstreamFields: r.Upstream,
		At:             at,
	}
	if !to.Final() {
		return t, nil
	}
	after := p
	after.Status = to
	after.TransStat = r.TransStat
	if r.Upstream != nil {
		after.UpstreamFields = r.Upstream
	}
	if r.NkpSeqID != "" {
		after.NkpSeqID = r.NkpSeqID
	}
	if r.PartyOrderID != "" {
		after.PartyOrderID = r.PartyOrderID
	}
	if r.OutTransID != "" {
		after.OutTransID = r.OutTransID
	}
	after.UpdatedAt = at
	after.FinishedAt = at
	cp := PaymentToClient(after)
	ev, err := newEvent(p.ID, p.ID, to, PaymentEventType(to), at, client.EventData{Payment: &cp}, r)
	if err != nil {
		return store.Transition{}, err
	}
	t.Event = ev
	return t, nil
}

// refundTransition builds the transition that r asks of refund rf, with
// the event when the new state is final. Like paymentTransition it checks
// the amount and does not touch the store.
func (l *Ledger) refundTransition(rf store.Refund, r Result) (store.Transition, error) {
	if err := l.CheckRefundAmount(rf, r); err != nil {
		return store.Transition{}, err
	}
	if err := validUpstream(r.Upstream); err != nil {
		return store.Transition{}, err
	}
	at := l.at(r)
	to := RefundStatusFromUpstream(r.TransStat)
	t := store.Transition{
		To:             to,
		TransStat:      r.TransStat,
		NkpSeqID:       r.NkpSeqID,
		UpstreamFields: r.Upstream,
		At:             at,
	}
	if !to.Final() {
		return t, nil
	}
	after := rf
	after.Status = to
	after.TransStat = r.TransStat
	if r.NkpSeqID != "" {
		after.NkpSeqID = r.NkpSeqID
	}
	after.UpdatedAt = at
	after.FinishedAt = at
	cr := RefundToClient(after)
	ev, err := newEvent(rf.ID, rf.PaymentID, to, RefundEventType(to), at, client.EventData{Refund: &cr}, r)
	if err != nil {
		return store.Transition{}, err
	}
	t.Event = ev
	return t, nil
}

// ApplyPayment applies r to the payment paymentID. It returns the payment
// as stored after the call and whether r moved it forward. A result that
// does not move it (a duplicate, a stale state) is not an error: applied is
// false and nothing changes. A result whose amount differs from the stored
// one is refused with an *AmountMismatchError.
func (l *Ledger) ApplyPayment(ctx context.Context, paymentID string, r Result) (store.Payment, bool, error) {
	p, err := l.st.GetPayment(ctx, paymentID)
	if err != nil {
		return store.Payment{}, false, fmt.Errorf("ledger: get payment %s: %w", paymentID, err)
	}
	if stale(p, r) {
		l.ignoreStale(p, r)
		return p, false, nil
	}
	t, err := l.paymentTransition(p, r)
	if err != nil {
		return p, false, fmt.Errorf("ledger: payment %s: %w", paymentID, err)
	}
	if !p.Status.CanMoveTo(t.To) {
		l.unchanged(KindPayment, p.ID, p.Status, t.To, r)
		return p, false, nil
	}
	np, applied, err := l.st.TransitionPayment(ctx, paymentID, t)
	if err != nil {
		return p, false, fmt.Errorf("ledger: transition payment %s to %s: %w", paymentID, t.To, err)
	}
	// When not applied, another writer got there first: np is what it left.
	l.tally(ctx, KindPayment, np.ID, applied, np.Status, t, r)
	return np, applied, nil
}

// ApplyRefund applies r to the refund refundID, like ApplyPayment. A refund
// that succeeds adds its amount to the payment's refunded total in the same
// store transaction.
func (l *Ledger) ApplyRefund(ctx context.Context, refundID string, r Result) (store.Refund, bool, error) {
	rf, err := l.st.GetRefund(ctx, refundID)
	if err != nil {
		return store.Refund{}, false, fmt.Errorf("ledger: get refund %s: %w", refundID, err)
	}
	t, err := l.refundTransition(rf, r)
	if err != nil {
		return rf, false, fmt.Errorf("ledger: refund %s: %w", refundID, err)
	}
	if !rf.Status.CanMoveTo(t.To) {
		l.unchanged(KindRefund, rf.ID, rf.Status, t.To, r)
		return rf, false, nil
	}
	nr, applied, err := l.st.TransitionRefund(ctx, refundID, t)
	if err != nil {
		return rf, false, fmt.Errorf("ledger: transition refund %s to %s: %w", refundID, t.To, err)
	}
	l.tally(ctx, KindRefund, nr.ID, applied, nr.Status, t, r)
	return nr, applied, nil
}

// tally counts the outcome of transition t, built from r, of the payment
// or refund id (kind), and announces its event when it was applied; have
// is the object's state after the store call.
func (l *Ledger) tally(ctx context.Context, kind, id string, applied bool, have store.Status, t store.Transition, r Result) {
	if !applied {
		l.unchanged(kind, id, have, t.To, r)
		return
	}
	l.results.WithLabelValues(kind, r.Source, "applied").Inc()
	l.announce(ctx, t.Event)
}

func (l *Ledger) announce(ctx context.Context, e *store.Event) {
	if e == nil || l.published == nil {
		return
	}
	l.published(ctx, *e)
}

// unchanged records a result that did not move an object. Two different
// final states for one object mean the upstream contradicts what was
// already reported to the application; that is logged loudly, since
// nothing can be undone automatically.
func (l *Ledger) unchanged(kind, id string, have, want store.Status, r Result) {
	if have.Final() && want.Final() && have != want {
		l.results.WithLabelValues(kind, r.Source, "conflict").Inc()
		l.log.Error("upstream result contradicts a final state; keeping the stored state",
			slog.String("kind", kind), slog.String("id", id),
			slog.String("stored_status", string(have)), slog.String("reported_status", string(want)),
			slog.String("trans_stat", r.TransStat), slog.String("bank_code", r.BankCode),
			slog.String("source", r.Source))
		return
	}
	l.results.WithLabelValues(kind, r.Source, "unchanged").Inc()
}

func (l *Ledger) at(r Result) time.Time {
	if !r.At.IsZero() {
		return r.At.UTC().Truncate(time.Microsecond)
	}
	return l.now().UTC().Truncate(time.Microsecond)
}

// ignoreStale counts and logs result r, which is about an order payment p
// replaced (see stale).
func (l *Ledger) ignoreStale(p store.Payment, r Result) {
	l.results.WithLabelValues(KindPayment, r.Source, "stale").Inc()
	l.log.Info("result about an earlier order of the payment; ignored",
		slog.String("id", p.ID), slog.String("req_seq_id", p.ReqSeqID), slog.String("result_req_seq_id", r.ReqSeqID),
		slog.String("source", r.Source))
}

// stale reports whether r is about another order than the one payment p
// stands for now (an order it replaced).
func stale(p store.Payment, r Result) bool {
	return (r.ReqSeqID != "" && r.ReqSeqID != p.ReqSeqID) || (r.ReqDate != "" && r.ReqDate != p.ReqDate)
}

func validUpstream(raw json.RawMessage) error {
	if len(raw) > 0 && !json.Valid(raw) {
		return errors.New("upstream fields are not valid JSON")
	}
	return nil
}

func newEvent(objectID, orderKey string, to store.Status, typ string, at time.Time, data client.EventData, r Result) (*store.Event, error) {
	id := EventID(objectID, to)
	data.Upstream = r.Upstream
	data.Source = r.Source
	data.Notification = r.Notification
	body, err := json.Marshal(client.Event{ID: id, Type: typ, CreatedAt: at, Data: data})
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", id, err)
	}
	return &store.Event{
		ID:            id,
		Type:          typ,
		ObjectID:      objectID,
		OrderKey:      orderKey,
		Payload:       body,
		Status:        store.EventPending,
		NextAttemptAt: at,
		CreatedAt:     at,
	}, nil
}
