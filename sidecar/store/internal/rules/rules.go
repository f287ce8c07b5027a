// Package rules holds the argument checks and defaults that every store
// implementation applies before it touches the database, so that SQLite
// and PostgreSQL refuse the same bad input with the same error and fill in
// the same defaults.
package rules

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
)

// Kinds of objects that have reverse queries.
const (
	KindPayment = "payment"
	KindRefund  = "refund"
)

// Time returns t in UTC truncated to the microsecond, the precision both
// databases keep, so that a value read back equals the value written.
func Time(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// Now returns the current time as the store keeps it.
func Now() time.Time { return Time(time.Now()) }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{store.ErrInvalid}, args...)...)
}

// JSON checks that raw, when present, is valid JSON.
func JSON(field string, raw json.RawMessage) error {
	if len(raw) == 0 {
		return nil
	}
	if !json.Valid(raw) {
		return invalid("%s is not valid JSON", field)
	}
	return nil
}

// Status checks that s is one of the lifecycle states.
func Status(s store.Status) error {
	if s.Rank() < 0 {
		return invalid("unknown status %q", s)
	}
	return nil
}

func required(what string, pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			return invalid("%s %s is required", what, pairs[i])
		}
	}
	return nil
}

// Payment checks p before it is created and fills in its defaults: the
// pending state and the creation times.
func Payment(p *store.Payment) error {
	if err := required("payment", "id", p.ID, "merchant_id", p.MerchantID, "out_trade_no", p.OutTradeNo,
		"req_date", p.ReqDate, "req_seq_id", p.ReqSeqID); err != nil {
		return err
	}
	if p.AmountFen <= 0 {
		return invalid("payment amount must be positive, got %d fen", p.AmountFen)
	}
	if p.RefundedFen < 0 {
		return invalid("payment refunded amount must not be negative, got %d fen", p.RefundedFen)
	}
	if p.QueryAttempts < 0 {
		return invalid("payment query attempts must not be negative")
	}
	if p.Status == "" {
		p.Status = store.StatusPending
	}
	if err := Status(p.Status); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"pay_params", p.PayParams}, {"metadata", p.Metadata}, {"buyer", p.Buyer}, {"upstream_fields", p.UpstreamFields}} {
		if err := JSON("payment "+f.name, f.raw); err != nil {
			return err
		}
	}
	if p.CreatedAt.IsZero() {
		p.CreatedAt = Now()
	}
	if p.UpdatedAt.IsZero() {
		p.UpdatedAt = p.CreatedAt
	}
	p.CreatedAt, p.UpdatedAt = Time(p.CreatedAt), Time(p.UpdatedAt)
	p.ExpiresAt, p.FinishedAt, p.NextQueryAt = Time(p.ExpiresAt), Time(p.FinishedAt), Time(p.NextQueryAt)
	return nil
}

// Refund checks r before it is created and fills in its defaults.
func Refund(r *store.Refund) error {
	if err := required("refund", "id", r.ID, "payment_id", r.PaymentID, "merchant_id", r.MerchantID,
		"out_refund_no", r.OutRefundNo, "req_date", r.ReqDate, "req_seq_id", r.ReqSeqID); err != nil {
		return err
	}
	if r.AmountFen <= 0 {
		return invalid("refund amount must be positive, got %d fen", r.AmountFen)
	}
	if r.QueryAttempts < 0 {
		return invalid("refund query attempts must not be negative")
	}
	if r.Status == "" {
		r.Status = store.StatusPending
	}
	if err := Status(r.Status); err != nil {
		return err
	}
	if err := JSON("refund upstream_fields", r.UpstreamFields); err != nil {
		return err
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = Now()
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = r.CreatedAt
	}
	r.CreatedAt, r.UpdatedAt = Time(r.CreatedAt), Time(r.UpdatedAt)
	r.FinishedAt, r.NextQueryAt = Time(r.FinishedAt), Time(r.NextQueryAt)
	return nil
}

// Transition checks t and fills in its time. An empty To is allowed only
// when allowNoMove is set (it then moves nothing). The event, if any, is
// checked with Event after objectID and orderKey defaults are applied.
func Transition(t *store.Transition, allowNoMove bool, objectID, orderKey string) error {
	if t.To == "" {
		if !allowNoMove {
			return invalid("transition target state is required")
		}
	} else if err := Status(t.To); err != nil {
		return err
	}
	if err := JSON("upstream_fields", t.UpstreamFields); err != nil {
		return err
	}
	if t.At.IsZero() {
		t.At = Now()
	}
	t.At = Time(t.At)
	if t.Event != nil {
		if t.Event.ObjectID == "" {
			t.Event.ObjectID = objectID
		}
		if t.Event.OrderKey == "" {
			t.Event.OrderKey = orderKey
		}
		if t.Event.CreatedAt.IsZero() {
			t.Event.CreatedAt = t.At
		}
		if err := Event(t.Event); err != nil {
			return err
		}
	}
	return nil
}

// Applies reports whether a transition to "to" moves an object that is in
// state "from" forward.
func Applies(from, to store.Status) bool {
	return to != "" && from.CanMoveTo(to)
}

// Event checks e before it is inserted and fills in its defaults.
func Event(e *store.Event) error {
	if err := required("event", "id", e.ID, "type", e.Type); err != nil {
		return err
	}
	if len(e.Payload) == 0 {
		return invalid("event payload is required")
	}
	if err := JSON("event payload", e.Payload); err != nil {
		return err
	}
	if e.OrderKey == "" {
		e.OrderKey = e.ObjectID
	}
	if e.OrderKey == "" {
		e.OrderKey = e.ID
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = Now()
	}
	e.CreatedAt = Time(e.CreatedAt)
	if e.NextAttemptAt.IsZero() {
		e.NextAttemptAt = e.CreatedAt
	}
	e.NextAttemptAt = Time(e.NextAttemptAt)
	e.Status = store.EventPending
	e.Attempts = 0
	e.DeliveredAt = time.Time{}
	return nil
}

// EventStatus checks s; the empty status is allowed when anyOK is set.
func EventStatus(s store.EventStatus, anyOK bool) error {
	switch s {
	case store.EventPending, store.EventDelivered, store.EventDead:
		return nil
	case "":
		if anyOK {
			return nil
		}
	}
	return invalid("unknown event status %q", s)
}

// Claim checks the arguments of a claim.
func Claim(c store.Claim, now time.Time, limit int) error {
	if c.Owner == "" {
		return invalid("claim owner is required")
	}
	if now.IsZero() {
		return invalid("claim time is required")
	}
	if !c.LeaseUntil.After(now) {
		return invalid("claim lease must end after now")
	}
	return Limit(limit)
}

// Limit checks a page size or batch size.
func Limit(limit int) error {
	if limit <= 0 {
		return invalid("limit must be positive, got %d", limit)
	}
	return nil
}

// Attempt checks a and fills in its time.
func Attempt(a *store.Attempt) error {
	if err := required("attempt", "event_id", a.EventID, "owner", a.Owner); err != nil {
		return err
	}
	if a.Delivered && a.Dead {
		return invalid("an attempt cannot be both delivered and dead")
	}
	if a.At.IsZero() {
		a.At = Now()
	}
	a.At = Time(a.At)
	if a.NextAttemptAt.IsZero() {
		a.NextAttemptAt = a.At
	}
	a.NextAttemptAt = Time(a.NextAttemptAt)
	return nil
}

// Kind checks the kind of a reverse query.
func Kind(kind string) error {
	if kind != KindPayment && kind != KindRefund {
		return invalid("unknown query kind %q", kind)
	}
	return nil
}

// Idempotency checks the arguments of BeginIdempotency.
func Idempotency(scope, key, requestHash string, now time.Time, lockFor time.Duration) error {
	if err := required("idempotency", "scope", scope, "key", key, "request hash", requestHash); err != nil {
		return err
	}
	if now.IsZero() {
		return invalid("idempotency time is required")
	}
	if lockFor <= 0 {
		return invalid("idempotency lock duration must be positive")
	}
	return nil
}

// Notification checks n and fills in its time.
func Notification(n *store.Notification) error {
	if err := required("notification", "id", n.ID); err != nil {
		return err
	}
	if n.ReceivedAt.IsZero() {
		n.ReceivedAt = Now()
	}
	n.ReceivedAt = Time(n.ReceivedAt)
	return nil
}

// NotificationTarget checks the arguments of ApplyNotification: n as
// Notification does, the object it names and the transition's target.
func NotificationTarget(n *store.Notification, t store.Transition) error {
	if err := Notification(n); err != nil {
		return err
	}
	if n.Kind != KindPayment && n.Kind != KindRefund {
		return invalid("notification kind %q is neither payment nor refund", n.Kind)
	}
	if err := required("notification", "object id", n.ObjectID); err != nil {
		return err
	}
	if t.To == "" {
		return invalid("transition target state is required")
	}
	return nil
}

// ApplyPayment moves p following t, already checked by Transition, when t
// moves it forward, and reports whether it did and whether p is now final.
// A final payment is no longer queried.
func ApplyPayment(p *store.Payment, t store.Transition) (applied, final bool) {
	if !Applies(p.Status, t.To) {
		return false, false
	}
	p.Status = t.To
	if t.TransStat != "" {
		p.TransStat = t.TransStat
	}
	if t.NkpSeqID != "" {
		p.NkpSeqID = t.NkpSeqID
	}
	if t.PartyOrderID != "" {
		p.PartyOrderID = t.PartyOrderID
	}
	if t.OutTransID != "" {
		p.OutTransID = t.OutTransID
	}
	if t.UpstreamFields != nil {
		p.UpstreamFields = t.UpstreamFields
	}
	p.UpdatedAt = t.At
	if t.To.Final() {
		p.FinishedAt = t.At
		p.NextQueryAt = time.Time{}
	}
	return true, t.To.Final()
}

// AcceptPayment records the serials and pay parameters of an accepted
// order on p and reports whether anything changed.
func AcceptPayment(p *store.Payment, nkpSeqID, partyOrderID string, payParams json.RawMessage) bool {
	changed := false
	if nkpSeqID != "" && p.NkpSeqID != nkpSeqID {
		p.NkpSeqID, changed = nkpSeqID, true
	}
	if partyOrderID != "" && p.PartyOrderID != partyOrderID {
		p.PartyOrderID, changed = partyOrderID, true
	}
	if payParams != nil {
		p.PayParams, changed = payParams, true
	}
	return changed
}

// ReplaceOrder checks the arguments of Store.ReplaceOrder and fills in
// its time.
func ReplaceOrder(toDate, toSeq string, payParams json.RawMessage, at *time.Time) error {
	if err := required("new order", "req_date", toDate, "req_seq_id", toSeq); err != nil {
		return err
	}
	if err := JSON("pay_params", payParams); err != nil {
		return err
	}
	if at.IsZero() {
		*at = Now()
	}
	*at = Time(*at)
	return nil
}

// CanReplaceOrder reports, with the reason when it cannot, whether payment
// p may move from the order (fromDate, fromSeq) to another.
func CanReplaceOrder(p store.Payment, fromDate, fromSeq string) error {
	if p.Status.Final() {
		return fmt.Errorf("%w: payment %s is already %s", store.ErrConflict, p.ID, p.Status)
	}
	if p.ReqDate != fromDate || p.ReqSeqID != fromSeq {
		return fmt.Errorf("%w: payment %s stands for order %s/%s, not %s/%s", store.ErrConflict, p.ID, p.ReqDate, p.ReqSeqID, fromDate, fromSeq)
	}
	return nil
}

// ApplyRefund is ApplyPayment for refunds.
func ApplyRefund(r *store.Refund, t store.Transition) (applied, final bool) {
	if !Applies(r.Status, t.To) {
		return false, false
	}
	r.Status = t.To
	if t.TransStat != "" {
		r.TransStat = t.TransStat
	}
	if t.NkpSeqID != "" {
		r.NkpSeqID = t.NkpSeqID
	}
	if t.UpstreamFields != nil {
		r.UpstreamFields = t.UpstreamFields
	}
	r.UpdatedAt = t.At
	if t.To.Final() {
		r.FinishedAt = t.At
		r.NextQueryAt = time.Time{}
	}
	return true, t.To.Final()
}

// Checkout checks a checkout to create and fills in its times.
func Checkout(c *store.Checkout) error {
	if err := required("checkout", "id", c.ID, "merchant_id", c.MerchantID, "out_trade_no", c.OutTradeNo,
		"flow", c.Flow); err != nil {
		return err
	}
	if c.AmountFen <= 0 {
		return invalid("checkout amount must be positive, got %d fen", c.AmountFen)
	}
	if c.ExpiresAt.IsZero() {
		return invalid("checkout expires_at is required")
	}
	if err := JSON("checkout links", c.Links); err != nil {
		return err
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = Now()
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = c.CreatedAt
	}
	c.CreatedAt, c.UpdatedAt, c.ExpiresAt = Time(c.CreatedAt), Time(c.UpdatedAt), Time(c.ExpiresAt)
	c.ClaimedAt = Time(c.ClaimedAt)
	return nil
}
