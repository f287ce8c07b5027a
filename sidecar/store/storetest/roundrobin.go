package storetest

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
)

// RoundRobin returns a store that sends each call to the next of stores in
// turn. Given several stores open on one shared database (replicas), it
// lets Run check that the replicas together behave as one store: every
// concurrent subtest then spreads its goroutines over the replicas.
// Migrate runs on every store; Close closes none (each opener closes its
// own).
func RoundRobin(stores ...store.Store) store.Store {
	return &roundRobin{stores: stores}
}

type roundRobin struct {
	stores []store.Store
	n      atomic.Uint64
}

func (r *roundRobin) next() store.Store {
	return r.stores[(r.n.Add(1)-1)%uint64(len(r.stores))]
}

func (r *roundRobin) Migrate(ctx context.Context) error {
	for _, s := range r.stores {
		if err := s.Migrate(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (r *roundRobin) Close() error { return nil }

func (r *roundRobin) Ping(ctx context.Context) error { return r.next().Ping(ctx) }

func (r *roundRobin) CreatePayment(ctx context.Context, p *store.Payment) error {
	return r.next().CreatePayment(ctx, p)
}

func (r *roundRobin) GetPayment(ctx context.Context, id string) (store.Payment, error) {
	return r.next().GetPayment(ctx, id)
}

func (r *roundRobin) GetPaymentByOutTradeNo(ctx context.Context, merchantID, outTradeNo string) (store.Payment, error) {
	return r.next().GetPaymentByOutTradeNo(ctx, merchantID, outTradeNo)
}

func (r *roundRobin) GetPaymentByReqSeqID(ctx context.Context, merchantID, reqDate, reqSeqID string) (store.Payment, error) {
	return r.next().GetPaymentByReqSeqID(ctx, merchantID, reqDate, reqSeqID)
}

func (r *roundRobin) UpdatePaymentAccepted(ctx context.Context, id string, nkpSeqID, partyOrderID string, payParams json.RawMessage, t store.Transition) (store.Payment, bool, error) {
	return r.next().UpdatePaymentAccepted(ctx, id, nkpSeqID, partyOrderID, payParams, t)
}

func (r *roundRobin) GetPaymentByNkpSeqID(ctx context.Context, merchantID, nkpSeqID string) (store.Payment, error) {
	return r.next().GetPaymentByNkpSeqID(ctx, merchantID, nkpSeqID)
}

func (r *roundRobin) GetPaymentByPartyOrderID(ctx context.Context, merchantID, partyOrderID string) (store.Payment, error) {
	return r.next().GetPaymentByPartyOrderID(ctx, merchantID, partyOrderID)
}

func (r *roundRobin) ReplaceOrder(ctx context.Context, id, fromDate, fromSeq, toDate, toSeq string, payParams json.RawMessage, at time.Time) (store.Payment, error) {
	return r.next().ReplaceOrder(ctx, id, fromDate, fromSeq, toDate, toSeq, payParams, at)
}

func (r *roundRobin) TransitionPayment(ctx context.Context, id string, t store.Transition) (store.Payment, bool, error) {
	return r.next().TransitionPayment(ctx, id, t)
}

func (r *roundRobin) RecordPaymentError(ctx context.Context, id, msg string, at time.Time) error {
	return r.next().RecordPaymentError(ctx, id, msg, at)
}

func (r *roundRobin) CreateRefund(ctx context.Context, rf *store.Refund) error {
	return r.next().CreateRefund(ctx, rf)
}

func (r *roundRobin) GetRefund(ctx context.Context, id string) (store.Refund, error) {
	return r.next().GetRefund(ctx, id)
}

func (r *roundRobin) GetRefundByOutRefundNo(ctx context.Context, merchantID, outRefundNo string) (store.Refund, error) {
	return r.next().GetRefundByOutRefundNo(ctx, merchantID, outRefundNo)
}

func (r *roundRobin) GetRefundByReqSeqID(ctx context.Context, merchantID, reqDate, reqSeqID string) (store.Refund, error) {
	return r.next().GetRefundByReqSeqID(ctx, merchantID, reqDate, reqSeqID)
}

func (r *roundRobin) ListRefunds(ctx context.Context, paymentID string) ([]store.Refund, error) {
	return r.next().ListRefunds(ctx, paymentID)
}

func (r *roundRobin) TransitionRefund(ctx context.Context, id string, t store.Transition) (store.Refund, bool, error) {
	return r.next().TransitionRefund(ctx, id, t)
}

func (r *roundRobin) ClaimDueQueries(ctx context.Context, c store.Claim, now time.Time, limit int) ([]store.Payment, []store.Refund, error) {
	return r.next().ClaimDueQueries(ctx, c, now, limit)
}

func (r *roundRobin) ScheduleQuery(ctx context.Context, kind, id string, next time.Time, attempts int, lastError string) error {
	return r.next().ScheduleQuery(ctx, kind, id, next, attempts, lastError)
}

func (r *roundRobin) BeginIdempotency(ctx context.Context, scope, key, requestHash string, now time.Time, lockFor time.Duration) (store.IdemRecord, error) {
	return r.next().BeginIdempotency(ctx, scope, key, requestHash, now, lockFor)
}

func (r *roundRobin) FinishIdempotency(ctx context.Context, scope, key string, statusCode int, body []byte, expiresAt time.Time) error {
	return r.next().FinishIdempotency(ctx, scope, key, statusCode, body, expiresAt)
}

func (r *roundRobin) ReleaseIdempotency(ctx context.Context, scope, key string) error {
	return r.next().ReleaseIdempotency(ctx, scope, key)
}

func (r *roundRobin) PurgeIdempotency(ctx context.Context, now time.Time) (int, error) {
	return r.next().PurgeIdempotency(ctx, now)
}

func (r *roundRobin) RecordNotification(ctx context.Context, n store.Notification) (bool, error) {
	return r.next().RecordNotification(ctx, n)
}

func (r *roundRobin) ApplyNotification(ctx context.Context, n store.Notification, t store.Transition) (store.NotificationResult, error) {
	return r.next().ApplyNotification(ctx, n, t)
}

func (r *roundRobin) InsertEvent(ctx context.Context, e *store.Event) (bool, error) {
	return r.next().InsertEvent(ctx, e)
}

func (r *roundRobin) GetEvent(ctx context.Context, id string) (store.Event, error) {
	return r.next().GetEvent(ctx, id)
}

func (r *roundRobin) ClaimEvents(ctx context.Context, c store.Claim, now time.Time, limit int) ([]store.Event, error) {
	return r.next().ClaimEvents(ctx, c, now, limit)
}

func (r *roundRobin) CompleteAttempt(ctx context.Context, a store.Attempt) error {
	return r.next().CompleteAttempt(ctx, a)
}

func (r *roundRobin) CompleteAttempts(ctx context.Context, as []store.Attempt) ([]error, error) {
	return r.next().CompleteAttempts(ctx, as)
}

func (r *roundRobin) ListEvents(ctx context.Context, status store.EventStatus, afterSeq int64, limit int) ([]store.Event, error) {
	return r.next().ListEvents(ctx, status, afterSeq, limit)
}

func (r *roundRobin) ReplayEvent(ctx context.Context, id string, now time.Time) error {
	return r.next().ReplayEvent(ctx, id, now)
}

func (r *roundRobin) CountEvents(ctx context.Context) (map[store.EventStatus]int, error) {
	return r.next().CountEvents(ctx)
}

func (r *roundRobin) CreateCheckout(ctx context.Context, c *store.Checkout) error {
	return r.next().CreateCheckout(ctx, c)
}

func (r *roundRobin) GetCheckout(ctx context.Context, id string) (store.Checkout, error) {
	return r.next().GetCheckout(ctx, id)
}

func (r *roundRobin) ClaimCheckout(ctx context.Context, id string, now time.Time) (store.Checkout, error) {
	return r.next().ClaimCheckout(ctx, id, now)
}

func (r *roundRobin) ReleaseCheckout(ctx context.Context, id string, claimedAt time.Time) error {
	return r.next().ReleaseCheckout(ctx, id, claimedAt)
}

func (r *roundRobin) SetCheckoutPayment(ctx context.Context, id, paymentID string, at time.Time) (store.Checkout, error) {
	return r.next().SetCheckoutPayment(ctx, id, paymentID, at)
}
