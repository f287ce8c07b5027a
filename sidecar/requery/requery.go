// Package requery asks the upstream for the state of every unfinished
// payment and refund until it is final, so that a result reaches the
// application even when its notification never arrives.
//
// A payment is queried on a schedule (by default 15 s, 30 s, 1 m, 2 m, 5 m,
// 10 m after the previous query, then every 10 m) until it is final or its
// expiry plus a grace period has passed. An order still unpaid then is
// closed upstream when CloseExpired is set and reported closed; otherwise
// querying stops and the reason is kept as the payment's last error. A
// refund is queried the same way until it is final or RefundMaxAge after
// its creation; one still unfinished then is not left silent: the
// application gets a refund.requires_attention event, the
// paysidecar_refunds_requiring_attention_total counter goes up, and the
// refund is queried every RefundSlowInterval until it is final. A final
// state found by a query goes through the ledger and produces the same
// event, with the same id, as the notification would have.
//
// The work is claimed from the store with a lease, so replicas sharing a
// store query each order once, and an order whose replica died is picked up
// when the lease runs out.
package requery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/poller"
	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

// Querier is the part of the upstream client that reverse queries need:
// a signed call whose answer is verified (*nkp.Client implements it). The
// requerier calls the payment query, close and refund query paths.
type Querier interface {
	Call(ctx context.Context, path string, data map[string]any) (map[string]any, error)
}

// DefaultSchedule is the default list of delays between queries; the last
// one repeats.
var DefaultSchedule = []time.Duration{
	15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute,
}

// Defaults of Config.
const (
	DefaultGrace        = 10 * time.Minute
	DefaultRefundMaxAge = 24 * time.Hour
	DefaultRefundSlow   = time.Hour
	DefaultOrderTTL     = 2 * time.Hour
	DefaultErrorWindow  = 24 * time.Hour
	DefaultBatchSize    = 32
	DefaultConcurrency  = 4
	DefaultPollInterval = time.Second
	DefaultLease        = time.Minute
	DefaultCallTimeout  = 10 * time.Second
)

// Config configures a Requerier. Zero values take the defaults.
type Config struct {
	// Schedule is the list of delays between queries, the last one
	// repeating; DefaultSchedule when empty.
	Schedule []time.Duration
	// Grace is how long after a payment's expiry it is still queried.
	// Default 10 m.
	Grace time.Duration
	// RefundMaxAge is how long after its creation a refund is queried on
	// the schedule. Default 24 h.
	RefundMaxAge time.Duration
	// RefundSlowInterval is how often a refund still unfinished after
	// RefundMaxAge is queried, until it is final. Default 1 h.
	RefundSlowInterval time.Duration
	// OrderTTL is the expiry of a payment created without one, as the
	// upstream applies it (about two hours). Default 2 h.
	OrderTTL time.Duration
	// ErrorWindow is how long past its deadline an order whose queries
	// fail (the upstream unreachable, answers that do not verify) is still
	// queried, so that an upstream outage at the deadline does not strand
	// it. Default 24 h.
	ErrorWindow time.Duration
	// CloseExpired closes, upstream, payments still unpaid after expiry
	// plus grace and reports them closed.
	CloseExpired bool
	// BatchSize is how many orders one claim takes. Default 32.
	BatchSize int
	// Concurrency bounds the upstream calls in flight. Default 4.
	Concurrency int
	// PollInterval is how often due queries are looked for. Default 1 s.
	PollInterval time.Duration
	// Lease is how long claimed orders stay reserved; it must exceed two
	// CallTimeouts (a query and a close). Default 1 m.
	Lease time.Duration
	// CallTimeout bounds one upstream call. Default 10 s.
	CallTimeout time.Duration
	// Owner names this replica in leases. Default host name and process
	// id.
	Owner string
}

// Delay returns the wait after the attempts-th query (1 for the first
// query; 0 gives the wait before the first query after creation).
func (c Config) Delay(attempts int) time.Duration {
	s := c.Schedule
	if len(s) == 0 {
		s = DefaultSchedule
	}
	if attempts < 0 {
		attempts = 0
	}
	return s[min(attempts, len(s)-1)]
}

// Options carries the collaborators of a Requerier. Every field is
// optional.
type Options struct {
	// Telemetry is the requerier's logger, registerer, tracer provider
	// and clock.
	Telemetry telemetry.Bundle
	// NewReqSeqID makes the req_seq_id of a close request;
	// nkp.NewReqSeqID when nil.
	NewReqSeqID func(now time.Time) string
}

// Requerier runs reverse queries. Start runs it; Close stops it. Its
// schedule can change while it runs (SetSchedule).
type Requerier struct {
	cfg      Config
	schedule atomic.Pointer[[]time.Duration]
	st       store.Store
	q        Querier
	led      *ledger.Ledger
	now      func() time.Time
	newSeq   func(time.Time) string
	log      *slog.Logger
	tracer   trace.Tracer
	total    *prometheus.CounterVec
	// attention counts refunds found unfinished at the end of their
	// query window, each once.
	attention prometheus.Counter

	poll *poller.Poller
}

// New checks cfg and returns a Requerier that reads due orders from st,
// applies what it learns through led and asks q.
func New(cfg Config, st store.Store, led *ledger.Ledger, q Querier, opts Options) (*Requerier, error) {
	if st == nil || q == nil || led == nil {
		return nil, errors.New("requery: store, querier and ledger are required")
	}
	schedule, err := checkSchedule(cfg.Schedule)
	if err != nil {
		return nil, err
	}
	cfg.Schedule = nil // it lives in Requerier.schedule
	setDefault(&cfg.Grace, DefaultGrace)
	setDefault(&cfg.RefundMaxAge, DefaultRefundMaxAge)
	setDefault(&cfg.RefundSlowInterval, DefaultRefundSlow)
	setDefault(&cfg.OrderTTL, DefaultOrderTTL)
	setDefault(&cfg.ErrorWindow, DefaultErrorWindow)
	setDefault(&cfg.PollInterval, DefaultPollInterval)
	setDefault(&cfg.Lease, DefaultLease)
	setDefault(&cfg.CallTimeout, DefaultCallTimeout)
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Lease <= 2*cfg.CallTimeout {
		return nil, fmt.Errorf("requery: lease %s must exceed two call timeouts (%s)", cfg.Lease, 2*cfg.CallTimeout)
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		cfg.Owner = host + "-" + strconv.Itoa(os.Getpid())
	}
	tel := opts.Telemetry.WithDefaults()
	r := &Requerier{
		cfg:    cfg,
		st:     st,
		q:      q,
		led:    led,
		now:    tel.Now,
		newSeq: opts.NewReqSeqID,
		log:    tel.Logger,
		tracer: tel.Tracer("github.com/paysidecar/paysidecar/sidecar/requery"),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paysidecar_requery_total",
			Help: "Reverse queries by kind (payment, refund) and result (final, processing, not_found, refused, amount_mismatch, error, closed, close_refused, close_error, expired, requires_attention).",
		}, []string{"kind", "result"}),
		attention: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paysidecar_refunds_requiring_attention_total",
			Help: "Refunds still unfinished when their query window (requery.refund_max_age) ended, each counted once; each got a refund.requires_attention event and is queried at the slow pace until final.",
		}),
	}
	r.schedule.Store(&schedule)
	if r.newSeq == nil {
		r.newSeq = nkp.NewReqSeqID
	}
	// Every series an alert or a panel reads exists from the start.
	for _, kind := range []string{ledger.KindPayment, ledger.KindRefund} {
		for _, result := range []string{"final", "processing", "not_found", "refused", "amount_mismatch", "error",
			"closed", "close_refused", "close_error", "expired", "requires_attention"} {
			r.total.WithLabelValues(kind, result)
		}
	}
	if err := tel.Register(r.total, r.attention); err != nil {
		return nil, fmt.Errorf("requery: %w", err)
	}
	r.poll = poller.New(poller.Config{
		Interval: r.cfg.PollInterval,
		Batch:    r.cfg.BatchSize,
		Run:      r.RunOnce,
		OnError:  func(err error) { r.log.Error("reverse query: claim failed", slog.Any("error", err)) },
	})
	return r, nil
}

// checkSchedule returns a copy of s, or DefaultSchedule when s is empty,
// or an error for a step that is not positive.
func checkSchedule(s []time.Duration) ([]time.Duration, error) {
	if len(s) == 0 {
		s = DefaultSchedule
	}
	for i, d := range s {
		if d <= 0 {
			return nil, fmt.Errorf("requery: schedule step %d is %s, must be positive", i, d)
		}
	}
	return slices.Clone(s), nil
}

// SetSchedule changes the delays between queries (DefaultSchedule when
// empty) and returns an error, changing nothing, for a step that is not
// positive. It is safe to call while the requerier runs: an order's next
// query time, once stored, stays; the one after it follows the new
// schedule.
func (r *Requerier) SetSchedule(s []time.Duration) error {
	s, err := checkSchedule(s)
	if err != nil {
		return err
	}
	r.schedule.Store(&s)
	return nil
}

// delay is Config.Delay with the current schedule.
func (r *Requerier) delay(attempts int) time.Duration {
	return Config{Schedule: *r.schedule.Load()}.Delay(attempts)
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Start runs the requerier in a goroutine until ctx ends or Close is
// called. It fails if it is already running.
func (r *Requerier) Start(ctx context.Context) error {
	if err := r.poll.Start(ctx); err != nil {
		return fmt.Errorf("requery: %w", err)
	}
	return nil
}

// Close stops the requerier and waits for queries in flight; an order
// whose query was cut short is queried again once its lease runs out.
func (r *Requerier) Close() error {
	r.poll.Close()
	return nil
}

// Wake makes a running requerier look for due queries now. It never
// blocks.
func (r *Requerier) Wake() { r.poll.Wake() }

// RunOnce claims the orders whose query is due now, queries each and
// records the outcome, and returns how many it claimed. Start calls it in a
// loop; tests call it directly.
func (r *Requerier) RunOnce(ctx context.Context) (int, error) {
	now := r.now()
	ps, rs, err := r.st.ClaimDueQueries(ctx, store.Claim{Owner: r.cfg.Owner, LeaseUntil: now.Add(r.cfg.Lease)}, now, r.cfg.BatchSize)
	if err != nil {
		return 0, fmt.Errorf("requery: claim: %w", err)
	}
	var g errgroup.Group
	g.SetLimit(r.cfg.Concurrency)
	for _, p := range ps {
		g.Go(func() error { r.payment(ctx, p); return nil })
	}
	for _, rf := range rs {
		g.Go(func() error { r.refund(ctx, rf); return nil })
	}
	_ = g.Wait()
	return len(ps) + len(rs), nil
}

// outcome is what one query decided.
type outcome struct {
	result  string
	next    time.Time // zero: stop querying
	lastErr string
}

func (r *Requerier) span(ctx context.Context, kind, id string, attempt int) (context.Context, trace.Span) {
	return r.tracer.Start(ctx, "requery."+kind, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("paysidecar.object_id", id),
		attribute.Int("paysidecar.query_attempt", attempt),
	))
}

func (r *Requerier) finish(ctx context.Context, span trace.Span, kind, id string, attempts int, o outcome) {
	defer span.End()
	span.SetAttributes(attribute.String("paysidecar.requery.result", o.result))
	if o.lastErr != "" {
		span.SetStatus(codes.Error, o.lastErr)
	}
	if ctx.Err() != nil {
		// Shutting down: leave the order to its lease.
		return
	}
	r.total.WithLabelValues(kind, o.result).Inc()
	if err := r.led.ScheduleQuery(context.WithoutCancel(ctx), kind, id, o.next, attempts, o.lastErr); err != nil {
		r.log.Error("reverse query: schedule", slog.String("kind", kind), slog.String("id", id), slog.Any("error", err))
	}
	if o.next.IsZero() && o.result != "final" && o.result != "closed" && o.result != "requires_attention" {
		r.log.Warn("reverse query: stopped without a final state",
			slog.String("kind", kind), slog.String("id", id), slog.String("result", o.result), slog.String("last_error", o.lastErr))
	}
}

// call sends req to path, bounded by the call timeout, and builds the
// result of the verified answer with build.
func (r *Requerier) call(ctx context.Context, path string, req any, build func(map[string]any) (ledger.Result, error)) (ledger.Result, error) {
	data, err := nkp.ToMap(req)
	if err != nil {
		return ledger.Result{}, err
	}
	cctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
	defer cancel()
	answer, err := r.q.Call(cctx, path, data)
	if err != nil {
		return ledger.Result{}, err
	}
	return build(answer)
}

// next returns when to query again after attempts queries, never later than
// the deadline while it is ahead.
func (r *Requerier) next(now time.Time, attempts int, deadline time.Time) time.Time {
	t := now.Add(r.delay(attempts))
	if now.Before(deadline) && t.After(deadline) {
		t = deadline
	}
	return t
}

// onError decides what to do after a query that told nothing.
func (r *Requerier) onError(now time.Time, attempts int, deadline time.Time, result, msg string) outcome {
	if now.After(deadline.Add(r.cfg.ErrorWindow)) {
		return outcome{result: result, lastErr: msg + "; gave up querying"}
	}
	return outcome{result: result, next: r.next(now, attempts, deadline), lastErr: msg}
}

func (r *Requerier) payment(ctx context.Context, p store.Payment) {
	attempts := p.QueryAttempts + 1
	ctx, span := r.span(ctx, ledger.KindPayment, p.ID, attempts)
	o := r.queryPayment(ctx, span, p, attempts)
	r.finish(ctx, span, ledger.KindPayment, p.ID, attempts, o)
}

func (r *Requerier) queryPayment(ctx context.Context, span trace.Span, p store.Payment, attempts int) outcome {
	now := r.now()
	expiry := p.ExpiresAt
	if expiry.IsZero() {
		expiry = p.CreatedAt.Add(r.cfg.OrderTTL)
	}
	deadline := expiry.Add(r.cfg.Grace)
	if p.Status.Final() {
		return outcome{result: "final"}
	}
	res, err := r.call(ctx, nkp.PathPaymentQuery, nkp.PaymentQueryRequest{HuifuID: p.MerchantID, OrgReqDate: p.ReqDate, OrgReqSeqID: p.ReqSeqID}, ledger.FromPaymentQuery)
	if err != nil {
		span.RecordError(err)
		return r.onError(now, attempts, deadline, "error", "query: "+err.Error())
	}
	// The result is about the order that was asked about, whatever the
	// answer echoes; the ledger ignores it if the payment has moved to
	// another order meanwhile.
	res.ReqDate, res.ReqSeqID, res.At = p.ReqDate, p.ReqSeqID, now
	if res.RespCode == nkp.CodeNotFound {
		if now.After(deadline) {
			// The order never reached the upstream and can no longer be
			// paid.
			res.TransStat, res.BankCode, res.BankMessage = nkp.StatFailure, nkp.BankCodeOrderClosed, "order unknown upstream after its expiry"
			np, _, err := r.led.ApplyPayment(ctx, p.ID, res)
			if err != nil {
				return r.onError(now, attempts, deadline, "error", err.Error())
			}
			if !np.Status.Final() {
				// The payment moved to another order meanwhile.
				return outcome{result: "processing", next: now.Add(r.delay(0))}
			}
			r.log.Warn("reverse query: payment unknown upstream after its expiry; reported closed", slog.String("id", p.ID))
			return outcome{result: "closed"}
		}
		return outcome{result: "not_found", next: r.next(now, attempts, deadline), lastErr: "upstream: " + res.RespCode + " " + res.RespDesc}
	}
	if !res.Accepted() {
		return r.onError(now, attempts, deadline, "refused", "upstream: "+res.RespCode+" "+res.RespDesc)
	}
	np, _, err := r.led.ApplyPayment(ctx, p.ID, res)
	if err != nil {
		if errors.Is(err, ledger.ErrAmountMismatch) {
			r.log.Error("reverse query: amount mismatch; the payment is left unchanged", slog.String("id", p.ID), slog.Any("error", err))
			return r.onError(now, attempts, deadline, "amount_mismatch", err.Error())
		}
		return r.onError(now, attempts, deadline, "error", err.Error())
	}
	if np.Status.Final() {
		span.SetAttributes(attribute.String("paysidecar.event_id", ledger.EventID(p.ID, np.Status)))
		return outcome{result: "final"}
	}
	if now.Before(deadline) {
		return outcome{result: "processing", next: r.next(now, attempts, deadline)}
	}
	if !r.cfg.CloseExpired {
		return outcome{result: "expired", lastErr: "unpaid after expiry and grace; not closed because close_expired is off"}
	}
	return r.closePayment(ctx, span, p, attempts, deadline, now)
}

// closePayment closes an expired unpaid payment upstream and reports it
// closed.
func (r *Requerier) closePayment(ctx context.Context, span trace.Span, p store.Payment, attempts int, deadline, now time.Time) outcome {
	res, err := r.call(ctx, nkp.PathClose, nkp.CloseRequest{
		ReqDate: nkp.ReqDate(now), ReqSeqID: r.newSeq(now), HuifuID: p.MerchantID,
		OrgReqDate: p.ReqDate, OrgReqSeqID: p.ReqSeqID,
	}, func(data map[string]any) (ledger.Result, error) { return ledger.FromClose(data, "closed after expiry") })
	if err != nil {
		span.RecordError(err)
		return r.onError(now, attempts, deadline, "close_error", "close: "+err.Error())
	}
	if !res.Accepted() || res.BankCode != nkp.BankCodeOrderClosed {
		// Refused (paid or failed in the meantime, or too young): the
		// next query tells what happened.
		msg := "close: " + res.RespCode + " " + res.RespDesc
		if now.After(deadline.Add(r.cfg.ErrorWindow)) {
			return outcome{result: "close_refused", lastErr: msg + "; gave up querying"}
		}
		return outcome{result: "close_refused", next: now.Add(r.delay(0)), lastErr: msg}
	}
	res.Source, res.ReqDate, res.ReqSeqID, res.At = ledger.SourceQuery, p.ReqDate, p.ReqSeqID, now
	np, _, err := r.led.ApplyPayment(ctx, p.ID, res)
	if err != nil {
		return r.onError(now, attempts, deadline, "error", err.Error())
	}
	if np.Status.Final() {
		span.SetAttributes(attribute.String("paysidecar.event_id", ledger.EventID(p.ID, np.Status)))
	}
	return outcome{result: "closed"}
}

func (r *Requerier) refund(ctx context.Context, rf store.Refund) {
	attempts := rf.QueryAttempts + 1
	ctx, span := r.span(ctx, ledger.KindRefund, rf.ID, attempts)
	o := r.queryRefund(ctx, span, rf, attempts)
	r.finish(ctx, span, ledger.KindRefund, rf.ID, attempts, o)
}

func (r *Requerier) queryRefund(ctx context.Context, span trace.Span, rf store.Refund, attempts int) outcome {
	now := r.now()
	deadline := rf.CreatedAt.Add(r.cfg.RefundMaxAge)
	if rf.Status.Final() {
		return outcome{result: "final"}
	}
	res, err := r.call(ctx, nkp.PathRefundQuery, nkp.RefundQueryRequest{HuifuID: rf.MerchantID, OrgReqDate: rf.ReqDate, OrgReqSeqID: rf.ReqSeqID}, ledger.FromRefundQuery)
	if err != nil {
		span.RecordError(err)
		if now.After(deadline) {
			return r.late(ctx, rf, now, nil, "query: "+err.Error())
		}
		return r.onError(now, attempts, deadline, "error", "query: "+err.Error())
	}
	if res.RespCode == nkp.CodeNotFound {
		if now.After(deadline) {
			return r.late(ctx, rf, now, res.Upstream, "refund unknown upstream until the end of its query window")
		}
		return outcome{result: "not_found", next: r.next(now, attempts, deadline), lastErr: "upstream: " + res.RespCode + " " + res.RespDesc}
	}
	if !res.Accepted() {
		if now.After(deadline) {
			return r.late(ctx, rf, now, res.Upstream, "upstream: "+res.RespCode+" "+res.RespDesc)
		}
		return r.onError(now, attempts, deadline, "refused", "upstream: "+res.RespCode+" "+res.RespDesc)
	}
	res.At = now
	nr, _, err := r.led.ApplyRefund(ctx, rf.ID, res)
	if err != nil {
		if errors.Is(err, ledger.ErrAmountMismatch) {
			r.log.Error("reverse query: amount mismatch; the refund is left unchanged", slog.String("id", rf.ID), slog.Any("error", err))
			if now.After(deadline) {
				return r.late(ctx, rf, now, res.Upstream, err.Error())
			}
			return r.onError(now, attempts, deadline, "amount_mismatch", err.Error())
		}
		return r.onError(now, attempts, deadline, "error", err.Error())
	}
	if nr.Status.Final() {
		span.SetAttributes(attribute.String("paysidecar.event_id", ledger.EventID(rf.ID, nr.Status)))
		return outcome{result: "final"}
	}
	if now.Before(deadline) {
		return outcome{result: "processing", next: r.next(now, attempts, deadline)}
	}
	return r.late(ctx, nr, now, res.Upstream, "refund still processing at the end of its query window")
}

// late handles a refund still unfinished after its query window: the
// first time, the application gets a refund.requires_attention event and
// the counter goes up; every time, the refund is queried again after
// RefundSlowInterval, until it is final.
func (r *Requerier) late(ctx context.Context, rf store.Refund, now time.Time, upstream json.RawMessage, msg string) outcome {
	next := now.Add(r.cfg.RefundSlowInterval)
	isNew, err := r.led.RefundRequiresAttention(ctx, rf, upstream, now)
	if err != nil {
		// The event is made by a later query.
		return outcome{result: "error", next: next, lastErr: msg + "; " + err.Error()}
	}
	if isNew {
		r.attention.Inc()
	}
	return outcome{result: "requires_attention", next: next, lastErr: msg + "; queried every " + r.cfg.RefundSlowInterval.String() + " until final"}
}
