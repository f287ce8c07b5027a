package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/store"
)

// PaymentStatusFromUpstream maps the upstream's trans_stat of a payment to
// its state: S is succeeded; F is closed when the bank code says the order
// was closed or when it comes after the payment's expiry (expiresAt, if not
// zero), and failed otherwise; P, I, empty and any unknown value are
// processing, so that nothing final is concluded from what is not
// understood.
func PaymentStatusFromUpstream(transStat, bankCode string, expiresAt, now time.Time) store.Status {
	switch transStat {
	case nkp.StatSuccess:
		return store.StatusSucceeded
	case nkp.StatFailure:
		if bankCode == nkp.BankCodeOrderClosed || (!expiresAt.IsZero() && now.After(expiresAt)) {
			return store.StatusClosed
		}
		return store.StatusFailed
	}
	return store.StatusProcessing
}

// RefundStatusFromUpstream maps the upstream's trans_stat of a refund to its
// state: S is succeeded, F is failed, anything else is processing.
func RefundStatusFromUpstream(transStat string) store.Status {
	switch transStat {
	case nkp.StatSuccess:
		return store.StatusSucceeded
	case nkp.StatFailure:
		return store.StatusFailed
	}
	return store.StatusProcessing
}

// EventID returns the id of the event announcing that the object objectID
// reached the final state status: "evt_" and the first 128 bits of the
// SHA-256 of the two, in hex. The same final state of the same object always
// yields the same id, whether a notification, a duplicate of it or a reverse
// query found it, so the outbox stores it once and the application sees one
// webhook-id.
func EventID(objectID string, status store.Status) string {
	h := sha256.New()
	h.Write([]byte(objectID))
	h.Write([]byte{0})
	h.Write([]byte(status))
	sum := h.Sum(nil)
	return "evt_" + hex.EncodeToString(sum[:16])
}

// PaymentEventType returns the event type announcing a payment's final
// state, or "" when status is not final.
func PaymentEventType(status store.Status) string {
	switch status {
	case store.StatusSucceeded:
		return client.EventPaymentSucceeded
	case store.StatusFailed:
		return client.EventPaymentFailed
	case store.StatusClosed:
		return client.EventPaymentClosed
	}
	return ""
}

// RefundEventType returns the event type announcing a refund's final state,
// or "" when status is not final. A refund is never closed; a closed state
// is reported as failed.
func RefundEventType(status store.Status) string {
	switch status {
	case store.StatusSucceeded:
		return client.EventRefundSucceeded
	case store.StatusFailed, store.StatusClosed:
		return client.EventRefundFailed
	}
	return ""
}
