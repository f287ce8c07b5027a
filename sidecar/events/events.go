// Package events lets operators look into the outbox and replay events:
// dead letters after a long outage of the application, or delivered events
// the application lost. It offers a small Go API (List, Get, Replay,
// ReplayAll), on which the command line is built, and an http.Handler for
// the app API:
//
//	GET  /v1/events?status=dead|pending|delivered&after=<seq>&limit=<n>
//	GET  /v1/events/{id}
//	POST /v1/events/{id}/replay
//	POST /v1/events/replay        {"status":"dead"}
//
// A replayed event keeps its id, so the application recognizes it as the
// same webhook, and goes out again in order with its payment's other
// events.
package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/api"
	"log/slog"
	"net/http"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

// Limits of List.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// replayPage is how many events ReplayAll reads at a time.
const replayPage = 100

// CodeEventPending is the events API's own error code (409): the event is
// already waiting for delivery. Every other refusal uses the app API's
// codes and error type (api.Error).
const CodeEventPending = "event_pending"

// Record is an outbox event as the events API reports it.
type Record = client.EventRecord

// Page is one page of List.
type Page = client.EventPage

// ReplayResult is the answer to a bulk replay.
type ReplayResult = client.ReplayResult

// Options configures a Service. Every field is optional.
type Options struct {
	// Telemetry is the service's logger (internal errors) and clock (a
	// replayed event becomes due by it).
	Telemetry telemetry.Bundle
	// Wake is called after a replay so the delivery dispatcher looks at
	// once (delivery.Dispatcher.Wake).
	Wake func()
}

// Service reads and replays outbox events.
type Service struct {
	st   store.Store
	now  func() time.Time
	wake func()
	log  *slog.Logger
}

// New returns a Service over st.
func New(st store.Store, opts Options) *Service {
	tel := opts.Telemetry.WithDefaults()
	return &Service{st: st, now: tel.Now, wake: opts.Wake, log: tel.Logger}
}

// NewHandler returns the http.Handler of the events API over st; it is
// New(st, opts).Handler(). The error is reserved for configuration that
// cannot work and is nil today.
func NewHandler(st store.Store, opts Options) (http.Handler, error) {
	if st == nil {
		return nil, errors.New("events: nil store")
	}
	return New(st, opts).Handler(), nil
}

// ParseStatus checks a status filter: "pending", "delivered", "dead", or
// empty for all.
func ParseStatus(s string) (store.EventStatus, error) {
	switch st := store.EventStatus(s); st {
	case "", store.EventPending, store.EventDelivered, store.EventDead:
		return st, nil
	}
	return "", &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidField, Field: "status", Message: fmt.Sprintf("status %q: want pending, delivered or dead", s)}
}

// List returns events in status (all when empty), oldest first, after the
// given sequence number. A limit of zero means DefaultLimit; more than
// MaxLimit is refused.
func (s *Service) List(ctx context.Context, status store.EventStatus, after int64, limit int) (Page, error) {
	if _, err := ParseStatus(string(status)); err != nil {
		return Page{}, err
	}
	if after < 0 {
		return Page{}, &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidField, Field: "after", Message: "after must not be negative"}
	}
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 0 || limit > MaxLimit {
		return Page{}, &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidField, Field: "limit", Message: fmt.Sprintf("limit must be between 1 and %d", MaxLimit)}
	}
	evs, err := s.st.ListEvents(ctx, status, after, limit+1)
	if err != nil {
		return Page{}, &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal, Message: "cannot list events", Err: err}
	}
	p := Page{Data: make([]Record, 0, min(len(evs), limit))}
	if len(evs) > limit {
		evs = evs[:limit]
		p.HasMore = true
	}
	for _, e := range evs {
		p.Data = append(p.Data, ToRecord(e))
	}
	if p.HasMore {
		p.NextAfter = evs[len(evs)-1].Seq
	}
	return p, nil
}

// Get returns one event.
func (s *Service) Get(ctx context.Context, id string) (Record, error) {
	e, err := s.st.GetEvent(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return Record{}, &api.Error{Status: http.StatusNotFound, Code: api.CodeNotFound, Field: "id", Message: fmt.Sprintf("no event %q", id)}
	}
	if err != nil {
		return Record{}, &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal, Message: "cannot read the event", Err: err}
	}
	return ToRecord(e), nil
}

// Replay moves a dead or delivered event back to pending, due now, with
// its attempts reset, and returns it. An event that is still pending is
// refused with CodeEventPending.
func (s *Service) Replay(ctx context.Context, id string) (Record, error) {
	rec, err := s.Get(ctx, id)
	if err != nil {
		return Record{}, err
	}
	if rec.Status == string(store.EventPending) {
		return rec, &api.Error{Status: http.StatusConflict, Code: CodeEventPending, Field: "id", Message: fmt.Sprintf("event %q is already waiting for delivery", id)}
	}
	if err := s.st.ReplayEvent(ctx, id, s.now()); err != nil {
		return Record{}, &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal, Message: "cannot replay the event", Err: err}
	}
	s.log.Info("event replayed", slog.String("event_id", id), slog.String("was", rec.Status))
	if s.wake != nil {
		s.wake()
	}
	return s.Get(ctx, id)
}

// ReplayAll replays every event in status, which must be dead or
// delivered, and returns how many it replayed.
func (s *Service) ReplayAll(ctx context.Context, status store.EventStatus) (int, error) {
	if status != store.EventDead && status != store.EventDelivered {
		return 0, &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidField, Field: "status", Message: fmt.Sprintf("status %q: only dead or delivered events can be replayed", status)}
	}
	var n int
	var after int64
	for {
		evs, err := s.st.ListEvents(ctx, status, after, replayPage)
		if err != nil {
			return n, &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal, Message: "cannot list events", Err: err}
		}
		now := s.now()
		for _, e := range evs {
			if err := s.st.ReplayEvent(ctx, e.ID, now); err != nil {
				return n, &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal, Message: "cannot replay events", Err: err}
			}
			n++
			after = e.Seq
		}
		if len(evs) < replayPage {
			break
		}
	}
	if n > 0 {
		s.log.Info("events replayed", slog.String("status", string(status)), slog.Int("count", n))
		if s.wake != nil {
			s.wake()
		}
	}
	return n, nil
}

// ToRecord converts a stored event into its API shape.
func ToRecord(e store.Event) Record {
	r := Record{
		ID: e.ID, Type: e.Type, ObjectID: e.ObjectID, OrderKey: e.OrderKey, Seq: e.Seq,
		Status: string(e.Status), Attempts: e.Attempts, LastError: e.LastError,
		CreatedAt: e.CreatedAt.UTC(), Payload: e.Payload,
	}
	if e.Status == store.EventPending && !e.NextAttemptAt.IsZero() {
		t := e.NextAttemptAt.UTC()
		r.NextAttemptAt = &t
	}
	if !e.DeliveredAt.IsZero() {
		t := e.DeliveredAt.UTC()
		r.DeliveredAt = &t
	}
	if len(r.Payload) == 0 || !json.Valid(r.Payload) {
		r.Payload = json.RawMessage("null")
	}
	return r
}
