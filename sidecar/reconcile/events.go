package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
)

// EventCompleted is the type of the event a finished run produces.
const EventCompleted = "reconciliation.completed"

// EventSink receives the result of every completed run.
type EventSink interface {
	Completed(ctx context.Context, rep *Report) error
}

// Outbox is the part of the store that keeps events for the application.
type Outbox interface {
	InsertEvent(ctx context.Context, e *store.Event) (bool, error)
}

// OutboxEvents puts reconciliation.completed into the outbox, so that it
// is delivered like every other event.
type OutboxEvents struct {
	Store Outbox
	// Published is told about a new event (the dispatcher wakes up); it
	// may be nil.
	Published func(ctx context.Context, e store.Event)
}

// Summary is the data of a reconciliation.completed event.
type Summary struct {
	RunID       string       `json:"run_id"`
	MerchantID  string       `json:"merchant_id"`
	Date        string       `json:"date"`
	Status      string       `json:"status"`
	Differences int          `json:"differences"`
	Counts      map[Kind]int `json:"counts"`
	Settled     int          `json:"settled"`
	StartedAt   time.Time    `json:"started_at"`
	FinishedAt  time.Time    `json:"finished_at"`
}

// SummaryOf returns the summary of a report.
func SummaryOf(rep *Report) Summary {
	return Summary{RunID: rep.RunID, MerchantID: rep.MerchantID, Date: rep.Date, Status: rep.Status, Differences: rep.Total(),
		Counts: rep.Counts, Settled: rep.Settled, StartedAt: rep.StartedAt, FinishedAt: rep.FinishedAt}
}

// Completed implements EventSink. The event id is derived from the run,
// so storing it twice is harmless.
func (o OutboxEvents) Completed(ctx context.Context, rep *Report) error {
	id := "evt_" + rep.RunID
	at := rep.FinishedAt.UTC()
	body, err := json.Marshal(map[string]any{
		"id": id, "type": EventCompleted, "created_at": at,
		"data": map[string]any{"reconciliation": SummaryOf(rep)},
	})
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	e := &store.Event{ID: id, Type: EventCompleted, ObjectID: rep.RunID, OrderKey: "reconciliation:" + rep.MerchantID,
		Payload: body, Status: store.EventPending, CreatedAt: at, NextAttemptAt: at}
	added, err := o.Store.InsertEvent(ctx, e)
	if err != nil {
		return fmt.Errorf("insert event: %w", err)
	}
	if added && o.Published != nil {
		o.Published(ctx, *e)
	}
	return nil
}
