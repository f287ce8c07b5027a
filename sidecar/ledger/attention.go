package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/store"
)

// attentionMark stands in for a state in the id of the
// refund.requires_attention event: it is not a state, and so never the id
// of a final event.
const attentionMark store.Status = "requires_attention"

// AttentionEventID returns the id of the refund.requires_attention event of
// the refund refundID; like EventID it is the same however often and by
// whichever replica the refund is found unfinished.
func AttentionEventID(refundID string) string { return EventID(refundID, attentionMark) }

// RefundRequiresAttention announces that refund rf is still unfinished
// when its query window has ended: it puts a refund.requires_attention
// event, carrying the refund as it stands and the last verified upstream
// answer (upstream, may be nil), in the outbox, ordered with the events of
// its payment. The refund's state is not touched: it is still queried, at
// a slow pace, and its final event follows when it is final. The event is
// made once per refund; isNew reports whether this call made it.
func (l *Ledger) RefundRequiresAttention(ctx context.Context, rf store.Refund, upstream json.RawMessage, at time.Time) (isNew bool, err error) {
	if err := validUpstream(upstream); err != nil {
		return false, fmt.Errorf("ledger: refund %s: %w", rf.ID, err)
	}
	at = at.UTC().Truncate(time.Microsecond)
	if at.IsZero() {
		at = l.now().UTC().Truncate(time.Microsecond)
	}
	cr := RefundToClient(rf)
	id := AttentionEventID(rf.ID)
	body, err := json.Marshal(client.Event{ID: id, Type: client.EventRefundRequiresAttention, CreatedAt: at,
		Data: client.EventData{Refund: &cr, Upstream: upstream, Source: SourceQuery}})
	if err != nil {
		return false, fmt.Errorf("ledger: encode event %s: %w", id, err)
	}
	e := &store.Event{ID: id, Type: client.EventRefundRequiresAttention, ObjectID: rf.ID, OrderKey: rf.PaymentID,
		Payload: body, Status: store.EventPending, NextAttemptAt: at, CreatedAt: at}
	isNew, err = l.st.InsertEvent(ctx, e)
	if err != nil {
		return false, fmt.Errorf("ledger: insert event %s: %w", id, err)
	}
	if isNew {
		l.log.Warn("refund still unfinished at the end of its query window; the application is told and querying goes on slowly",
			slog.String("refund", rf.ID), slog.String("payment", rf.PaymentID), slog.String("status", string(rf.Status)))
		l.announce(ctx, e)
	}
	return isNew, nil
}
