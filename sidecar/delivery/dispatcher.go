// Package delivery delivers outbox events to the application's webhook.
//
// Deliveries follow Standard Webhooks: a JSON POST of the event with the
// headers webhook-id (the event id, the same across retries and across the
// upstream's duplicate notifications), webhook-timestamp and
// webhook-signature (HMAC-SHA256 under the configured secret). A 2xx
// answer within the timeout is success; anything else is retried on a
// schedule with jitter (DefaultSchedule), after which the event goes to
// dead letters, from where it can be replayed.
//
// A Dispatcher claims due events from the store with a lease, so several
// replicas sharing a store never deliver the same event at the same time,
// and a replica that dies mid-attempt only delays the event until its lease
// runs out. The store hands out only the oldest undelivered event of each
// payment, so a payment's events reach the application in order.
package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/poller"
	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

// Config configures a Dispatcher. Zero values take the defaults named on
// each field.
type Config struct {
	// URL is the application's webhook endpoint. Required.
	URL string
	// Secret signs every delivery: "whsec_<base64>" or a raw string of at
	// least MinSecretBytes bytes (see ParseSecret). Required.
	Secret string
	// Format is FormatJSON (default) or FormatForm.
	Format string
	// Profile is the field dialect of form bodies built from a reverse
	// query; nkp.ProfileNKP when empty.
	Profile nkp.Profile
	// Timeout bounds one attempt; an answer after it is a failure.
	// Default 10 s.
	Timeout time.Duration
	// Schedule is the list of retry delays; DefaultSchedule when empty.
	Schedule Schedule
	// Concurrency bounds the attempts in flight. Default 8.
	Concurrency int
	// BatchSize is how many events one claim takes. Default
	// 4 × Concurrency.
	BatchSize int
	// PollInterval is how often the store is checked for due events when
	// nothing wakes the dispatcher. Default 1 s.
	PollInterval time.Duration
	// Lease is how long claimed events stay reserved for this replica; it
	// must exceed Timeout. Default Timeout + 30 s.
	Lease time.Duration
	// Owner names this replica in leases. Default host name and process
	// id.
	Owner string
}

// Options carries the dispatcher's collaborators. Every field is optional.
type Options struct {
	// Telemetry is the dispatcher's logger (failures), registerer,
	// tracer provider (attempt spans) and clock, which stamps attempts
	// and schedules retries; tests drive a long outage with a fake clock
	// and RunOnce.
	Telemetry telemetry.Bundle
	// Rand returns the jitter source, a number in [0, 1); math/rand/v2
	// when nil.
	Rand func() float64
	// HTTPClient sends the deliveries; a client that follows no redirect
	// when nil (per-attempt deadlines come from Timeout).
	HTTPClient *http.Client
	// Propagator writes trace context into the request headers; the
	// global one when nil.
	Propagator propagation.TextMapPropagator
}

// Dispatcher delivers outbox events. Start runs it; Close stops it.
//
// Its target (URL, secret and retry schedule) can change while it runs,
// through SetTarget; every attempt reads the target once, so it is sent to
// one URL, signed with that URL's secret and, when it fails, rescheduled by
// the same target's schedule.
type Dispatcher struct {
	cfg     Config
	target  atomic.Pointer[target]
	st      store.Store
	now     func() time.Time
	rand    func() float64
	hc      *http.Client
	ownHTTP bool
	log     *slog.Logger
	tracer  trace.Tracer
	prop    propagation.TextMapPropagator
	metrics metrics

	poll *poller.Poller

	linksMu sync.Mutex
	links   map[string]trace.SpanContext
	order   []string

	replaysMu sync.Mutex
	replays   map[string]time.Time // event id -> when its replay made it due

	refreshed time.Time // last RefreshMetrics from the poller; its goroutine only
}

// target is where and how events are delivered: what SetTarget changes.
type target struct {
	url      string
	key      []byte
	schedule Schedule
}

// newTarget checks a target's settings; errors never show the secret or
// the URL, which may hold credentials.
func newTarget(rawURL, secret string, schedule Schedule) (*target, error) {
	if rawURL == "" {
		return nil, errors.New("delivery: webhook URL is required")
	}
	if u, err := url.Parse(rawURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("delivery: webhook URL must be an absolute http or https URL")
	}
	key, err := ParseSecret(secret)
	if err != nil {
		return nil, fmt.Errorf("delivery: %w", err)
	}
	if len(schedule) == 0 {
		schedule = DefaultSchedule
	}
	if err := schedule.Validate(); err != nil {
		return nil, fmt.Errorf("delivery: %w", err)
	}
	return &target{url: rawURL, key: key, schedule: slices.Clone(schedule)}, nil
}

// SetTarget changes the webhook URL, the secret that signs deliveries and
// the retry schedule, together, and returns an error (changing nothing)
// when one of them is not valid; an empty schedule means DefaultSchedule.
// It is safe to call while events are delivered: an attempt in flight
// finishes with the target it started with, and every later attempt uses
// the new one. A new schedule applies to the next retry of every event,
// counted by the attempts the event has already had.
func (d *Dispatcher) SetTarget(webhookURL, secret string, schedule Schedule) error {
	t, err := newTarget(webhookURL, secret, schedule)
	if err != nil {
		return err
	}
	d.target.Store(t)
	return nil
}

// refreshEvery bounds how often the poller refreshes the outbox gauges:
// scrapes come seconds apart, polls can come every few milliseconds.
const refreshEvery = time.Second

// maxLinks bounds the remembered notification spans.
const maxLinks = 4096

// New checks cfg and returns a Dispatcher reading events from st.
func New(cfg Config, st store.Store, opts Options) (*Dispatcher, error) {
	if st == nil {
		return nil, errors.New("delivery: nil store")
	}
	tgt, err := newTarget(cfg.URL, cfg.Secret, cfg.Schedule)
	if err != nil {
		return nil, err
	}
	// The target lives in d.target alone, where SetTarget changes it.
	cfg.URL, cfg.Secret, cfg.Schedule = "", "", nil
	switch cfg.Format {
	case "":
		cfg.Format = FormatJSON
	case FormatJSON, FormatForm:
	default:
		return nil, fmt.Errorf("delivery: format %q: want %q or %q", cfg.Format, FormatJSON, FormatForm)
	}
	if cfg.Profile == "" {
		cfg.Profile = nkp.ProfileNKP
	}
	if err := cfg.Profile.Validate(); err != nil {
		return nil, fmt.Errorf("delivery: %w", err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 4 * cfg.Concurrency
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Lease <= 0 {
		cfg.Lease = cfg.Timeout + 30*time.Second
	}
	if cfg.Lease <= cfg.Timeout {
		return nil, fmt.Errorf("delivery: lease %s must exceed the timeout %s", cfg.Lease, cfg.Timeout)
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		cfg.Owner = host + "-" + strconv.Itoa(os.Getpid())
	}
	tel := opts.Telemetry.WithDefaults()
	d := &Dispatcher{
		cfg:     cfg,
		st:      st,
		now:     tel.Now,
		rand:    opts.Rand,
		hc:      opts.HTTPClient,
		log:     tel.Logger,
		tracer:  tel.Tracer("github.com/paysidecar/paysidecar/sidecar/delivery"),
		prop:    opts.Propagator,
		links:   make(map[string]trace.SpanContext),
		replays: make(map[string]time.Time),
	}
	d.target.Store(tgt)
	if d.rand == nil {
		d.rand = rand.Float64
	}
	if d.hc == nil {
		d.ownHTTP = true
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// Every attempt in flight keeps its connection to the
		// application for the next one: with the default of two idle
		// connections per host, all but two of the concurrent attempts
		// would dial a new connection each time.
		tr.MaxIdleConnsPerHost = max(cfg.Concurrency, tr.MaxIdleConnsPerHost)
		tr.MaxIdleConns = max(2*cfg.Concurrency, tr.MaxIdleConns)
		d.hc = &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if d.prop == nil {
		d.prop = otel.GetTextMapPropagator()
	}
	d.metrics = newMetrics()
	if tel.Registerer != nil {
		if err := d.metrics.register(tel.Registerer); err != nil {
			return nil, fmt.Errorf("delivery: register metrics: %w", err)
		}
	}
	d.poll = poller.New(poller.Config{
		Interval: d.cfg.PollInterval,
		Batch:    d.cfg.BatchSize,
		Run:      d.RunOnce,
		OnError:  func(err error) { d.log.Error("webhook delivery: claim failed", slog.Any("error", err)) },
		OnTick:   d.refreshSometimes,
	})
	return d, nil
}

// Start runs the dispatcher in a goroutine until ctx ends or Close is
// called. It fails if the dispatcher is already running.
func (d *Dispatcher) Start(ctx context.Context) error {
	if err := d.poll.Start(ctx); err != nil {
		return fmt.Errorf("delivery: %w", err)
	}
	return nil
}

// Close stops the dispatcher and waits for attempts in flight to finish or
// be abandoned (an abandoned attempt is retried once its lease runs out).
func (d *Dispatcher) Close() error {
	d.poll.Close()
	if d.ownHTTP {
		d.hc.CloseIdleConnections()
	}
	return nil
}

// Wake makes a running dispatcher look for due events now rather than at
// its next poll. It never blocks.
func (d *Dispatcher) Wake() { d.poll.Wake() }

// Published is the ledger's hook (ledger.Options.Published): it remembers
// the span of the call that produced e, so that delivery attempts link to
// it, and wakes the dispatcher.
func (d *Dispatcher) Published(ctx context.Context, e store.Event) {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		d.linksMu.Lock()
		if _, ok := d.links[e.ID]; !ok {
			d.order = append(d.order, e.ID)
			if len(d.order) > maxLinks {
				delete(d.links, d.order[0])
				d.order = d.order[1:]
			}
		}
		d.links[e.ID] = sc
		d.linksMu.Unlock()
	}
	d.Wake()
}

func (d *Dispatcher) link(id string) (trace.SpanContext, bool) {
	d.linksMu.Lock()
	defer d.linksMu.Unlock()
	sc, ok := d.links[id]
	return sc, ok
}

func (d *Dispatcher) forget(id string) {
	d.linksMu.Lock()
	defer d.linksMu.Unlock()
	if _, ok := d.links[id]; !ok {
		return
	}
	delete(d.links, id)
	for i, v := range d.order {
		if v == id {
			d.order = append(d.order[:i], d.order[i+1:]...)
			break
		}
	}
}

// refreshSometimes is the poller's tick: RefreshMetrics at most every
// refreshEvery of real time.
func (d *Dispatcher) refreshSometimes(ctx context.Context) {
	if !d.refreshed.IsZero() && time.Since(d.refreshed) < refreshEvery {
		return
	}
	d.refreshed = time.Now()
	d.RefreshMetrics(ctx)
}

// oldestScan bounds the pending events read per tick to find the one
// waiting longest. Pending events come in store order (their sequence), so
// the oldest new event is among the first; only more than this many
// replayed events ahead of it could hide it.
const oldestScan = 64

// RefreshMetrics sets the outbox gauges from the store: events by state,
// and how long the longest-waiting undelivered event has waited. A running
// dispatcher calls it at most every second.
func (d *Dispatcher) RefreshMetrics(ctx context.Context) {
	counts, err := d.st.CountEvents(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("webhook delivery: count outbox events", slog.Any("error", err))
		}
		return
	}
	for _, s := range []store.EventStatus{store.EventPending, store.EventDelivered, store.EventDead} {
		d.metrics.outbox.WithLabelValues(string(s)).Set(float64(counts[s]))
	}
	if counts[store.EventPending] == 0 {
		d.metrics.oldest.Set(0)
		return
	}
	pending, err := d.st.ListEvents(ctx, store.EventPending, 0, oldestScan)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("webhook delivery: list pending events", slog.Any("error", err))
		}
		return
	}
	d.metrics.oldest.Set(d.oldestPending(pending, d.now()).Seconds())
}

// oldestPending returns how long the longest-waiting of evs has waited
// since it became due.
func (d *Dispatcher) oldestPending(evs []store.Event, now time.Time) time.Duration {
	var oldest time.Duration
	for _, e := range evs {
		oldest = max(oldest, now.Sub(d.due(e)))
	}
	return oldest
}

// RunOnce claims the events due now, delivers them and records their
// outcomes, and returns how many it claimed. Events of one order key in the
// batch go out one after another in the order claimed; different keys go
// out concurrently, at most Concurrency at a time. The outcomes of the
// batch are recorded together, in one store write, once every attempt has
// ended: the events stay leased until then, so a crash before that write
// only makes them due again when their leases run out (delivered at least
// once). Start calls it in a loop; tests call it directly.
func (d *Dispatcher) RunOnce(ctx context.Context) (int, error) {
	now := d.now()
	evs, err := d.st.ClaimEvents(ctx, store.Claim{Owner: d.cfg.Owner, LeaseUntil: now.Add(d.cfg.Lease)}, now, d.cfg.BatchSize)
	if err != nil {
		return 0, fmt.Errorf("delivery: claim events: %w", err)
	}
	if len(evs) == 0 {
		return 0, nil
	}
	var keys []string
	groups := make(map[string][]store.Event)
	for _, e := range evs {
		if _, ok := groups[e.OrderKey]; !ok {
			keys = append(keys, e.OrderKey)
		}
		groups[e.OrderKey] = append(groups[e.OrderKey], e)
	}
	var (
		mu   sync.Mutex
		done []*attempt
	)
	var g errgroup.Group
	g.SetLimit(d.cfg.Concurrency)
	for _, k := range keys {
		group := groups[k]
		g.Go(func() error {
			for _, e := range group {
				at := d.attempt(ctx, e)
				if at == nil {
					return nil // abandoned at shutdown
				}
				mu.Lock()
				done = append(done, at)
				mu.Unlock()
				if !at.rec.Delivered {
					// Keep the key's order: what follows a failure
					// waits for the next claim.
					break
				}
			}
			return nil
		})
	}
	_ = g.Wait()
	d.record(ctx, done)
	return len(evs), nil
}

// attempt is one delivery attempt that ended, waiting for its outcome to
// be recorded.
type attempt struct {
	e    store.Event
	rec  store.Attempt
	no   int // the attempt's number, 1 for the first
	span trace.Span
}

// attempt makes one attempt at e and returns it, its span still open;
// nil when shutdown abandoned it (its lease runs out and the event is
// tried again).
func (d *Dispatcher) attempt(ctx context.Context, e store.Event) *attempt {
	attemptNo := e.Attempts + 1
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("paysidecar.event_id", e.ID),
			attribute.String("paysidecar.event_type", e.Type),
			attribute.String("paysidecar.object_id", e.ObjectID),
			attribute.Int("paysidecar.attempt", attemptNo),
		),
	}
	if sc, ok := d.link(e.ID); ok {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	ctx, span := d.tracer.Start(ctx, "webhook.deliver", opts...)
	d.noteReplay(e)

	tgt := d.target.Load()
	at := d.now()
	started := time.Now()
	status, err := d.post(ctx, tgt, e, at)
	d.metrics.duration.Observe(time.Since(started).Seconds())
	if ctx.Err() != nil {
		// Shutting down: the attempt says nothing about the application.
		span.SetStatus(codes.Error, "abandoned at shutdown")
		span.End()
		return nil
	}
	a := store.Attempt{EventID: e.ID, Owner: d.cfg.Owner, At: at}
	result := ResultDelivered
	switch {
	case err == nil && status >= 200 && status <= 299:
		a.Delivered = true
		span.SetAttributes(attribute.Int("http.response.status_code", status))
	default:
		if err != nil {
			a.Error = err.Error()
			result = ResultError
			if errors.Is(err, context.DeadlineExceeded) {
				a.Error = fmt.Sprintf("no answer within %s", d.cfg.Timeout)
				result = ResultTimeout
			}
		} else {
			a.Error = fmt.Sprintf("HTTP %d", status)
			result = ResultHTTPError
			span.SetAttributes(attribute.Int("http.response.status_code", status))
		}
		span.SetStatus(codes.Error, a.Error)
		if delay, ok := tgt.schedule.Delay(attemptNo, d.rand()); ok {
			a.NextAttemptAt = at.Add(delay)
		} else {
			a.Dead = true
		}
	}
	d.metrics.attempts.WithLabelValues(result).Inc()
	return &attempt{e: e, rec: a, no: attemptNo, span: span}
}

// record stores the outcomes of ended attempts in one write, then counts,
// logs and ends each attempt's span. The write goes ahead even if
// shutdown begins now: a delivered event must not be delivered again
// because its success was lost.
func (d *Dispatcher) record(ctx context.Context, done []*attempt) {
	if len(done) == 0 {
		return
	}
	recs := make([]store.Attempt, len(done))
	for i, at := range done {
		recs[i] = at.rec
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	errs, err := d.st.CompleteAttempts(cctx, recs)
	for i, at := range done {
		aerr := err
		if aerr == nil {
			aerr = errs[i]
		}
		d.recorded(at, aerr)
	}
}

// recorded finishes one attempt whose outcome was recorded, or not
// (err).
func (d *Dispatcher) recorded(at *attempt, err error) {
	defer at.span.End()
	e, a := at.e, at.rec
	if err != nil {
		if errors.Is(err, store.ErrLeaseLost) {
			d.log.Warn("webhook delivery: lease lost before the outcome was recorded",
				slog.String("event_id", e.ID), slog.Bool("delivered", a.Delivered))
		} else {
			d.log.Error("webhook delivery: record attempt", slog.String("event_id", e.ID), slog.Any("error", err))
		}
		at.span.RecordError(err)
		return
	}
	switch {
	case a.Delivered:
		// A replayed event is not as late as it is old: its latency
		// counts from its replay.
		due := d.due(e)
		d.metrics.latency.Observe(max(a.At.Sub(due), 0).Seconds())
		if !due.Equal(e.CreatedAt) {
			d.metrics.replayed.Inc()
		}
		d.forgetReplay(e.ID)
		d.forget(e.ID)
		d.log.Debug("webhook delivered", slog.String("event_id", e.ID), slog.String("type", e.Type), slog.Int("attempt", at.no))
	case a.Dead:
		d.metrics.dead.Inc()
		d.forget(e.ID)
		d.forgetReplay(e.ID)
		d.log.Error("webhook delivery: retries exhausted, event moved to dead letters",
			slog.String("event_id", e.ID), slog.String("type", e.Type), slog.Int("attempts", at.no), slog.String("last_error", a.Error))
	default:
		d.log.Warn("webhook delivery failed; will retry",
			slog.String("event_id", e.ID), slog.Int("attempt", at.no), slog.String("error", a.Error),
			slog.Time("next_attempt_at", a.NextAttemptAt))
	}
}

// post sends one attempt and returns the HTTP status. Errors never carry
// the webhook URL, which may hold credentials.
func (d *Dispatcher) post(ctx context.Context, tgt *target, e store.Event, at time.Time) (int, error) {
	body := []byte(e.Payload)
	contentType := "application/json"
	if d.cfg.Format == FormatForm {
		b, err := FormBody(e.Payload, d.cfg.Profile)
		if err != nil {
			return 0, err
		}
		body, contentType = b, "application/x-www-form-urlencoded; charset=utf-8"
	}
	actx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, tgt.url, bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("build webhook request")
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "paysidecar")
	req.Header.Set(HeaderID, e.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(tgt.key, e.ID, at, body))
	d.prop.Inject(actx, propagation.HeaderCarrier(req.Header))
	resp, err := d.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if actx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
			return 0, context.DeadlineExceeded
		}
		return 0, fmt.Errorf("post webhook: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	// Read a little of the answer so the connection can be reused; its
	// content does not matter.
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if err != nil && actx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		return 0, context.DeadlineExceeded
	}
	return resp.StatusCode, nil
}
