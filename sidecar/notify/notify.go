// Package notify receives the upstream's asynchronous notifications.
//
// The handler verifies the signature over the raw resp_data before it reads
// any business field, finds the payment or refund the notification is
// about, checks the amount, records the notification and applies it through
// the ledger, all durably, and only then acknowledges with
// RECV_ORD_ID_<req_seq_id>. Anything forged, malformed or refused gets a 4xx
// and is counted by reason; nothing of it is stored or forwarded. A
// notification for an order this sidecar does not know (yet) is answered
// with 404 so that the upstream tries again: the order may have been created
// a moment ago by another replica whose write is not yet visible, or the
// notification may belong to another system sharing the address.
//
// In front of that work (front.go), limits on connections, per-source
// rate, size and concurrency, and cheap checks of the form refuse a flood
// before it costs an RSA verification; an exact copy of a notification
// this process has verified, stored and acknowledged is acknowledged again
// from memory. No limit answers 2xx, every refusal is counted, refusals
// are logged sampled, and only a verified notification is traced.
package notify

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

// DefaultMaxBodyBytes bounds a notification body when Config leaves it
// unset. Real notifications are a few KiB.
const DefaultMaxBodyBytes = 64 << 10

// processTimeout bounds the store work for one notification, well within
// the upstream's own five seconds in the normal case.
const processTimeout = 10 * time.Second

// Rejection reasons, the values of the reason label of
// paysidecar_notify_rejected_total.
const (
	ReasonMethod         = "method"
	ReasonContentType    = "content_type"
	ReasonOversize       = "oversize"
	ReasonMalformed      = "malformed"
	ReasonUnsigned       = "unsigned"
	ReasonBadSignature   = "bad_signature"
	ReasonBadData        = "bad_data"
	ReasonAmountMismatch = ledger.CodeAmountMismatch
	ReasonUnknownOrder   = "unknown_order"
	ReasonStore          = "store_error"
	// ReasonRateLimited and ReasonBusy (front.go) are load shed by a
	// limit.
)

// Config configures the handler. Zero values take the defaults.
type Config struct {
	// MaxBodyBytes bounds the request body; larger bodies get 413.
	// Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Profile is the upstream's configured field dialect; nkp.ProfileNKP
	// when empty. It is checked, but a notification is read in either
	// dialect (see ledger.FromNotification), so a switch of dialect
	// upstream loses nothing.
	Profile nkp.Profile
	// Verifier is the upstream's RSA public key. Required.
	Verifier *rsa.PublicKey
	// NextVerifier, when set, is accepted as well while the upstream
	// switches keys (nkp.UpstreamKeys).
	NextVerifier *rsa.PublicKey
	// Limits bound what the ingress spends on the requests it receives.
	Limits Limits
}

// Options carries the handler's collaborators. Every field is optional.
type Options struct {
	// Telemetry is the handler's logger (refusals and failures, never a
	// secret or a full body), registerer, tracer provider and clock.
	Telemetry telemetry.Bundle
}

// Handler is the notification ingress, an http.Handler. Serve it on the
// listener Handler.Listener returns, from an http.Server set up by
// Handler.ConfigureServer.
type Handler struct {
	cfg         Config
	limits      Limits
	st          store.Store
	led         *ledger.Ledger
	now         func() time.Time
	log         *slog.Logger
	tracer      trace.Tracer
	rates       *rateTable
	dups        *lru.Cache[dupKey, acked]
	gate        gate
	storeGate   gate
	refusals    *refusalLog
	recv        *prometheus.CounterVec
	reject      *prometheus.CounterVec
	connRefused *prometheus.CounterVec
	cacheHits   prometheus.Counter
	verified    *prometheus.CounterVec
	latency     prometheus.Histogram
	nextSeen    sync.Once
}

// NewHandler returns the ingress handler. Mount it on its own listener at
// the path given upstream as notify_url.
func NewHandler(cfg Config, st store.Store, led *ledger.Ledger, opts Options) (*Handler, error) {
	if st == nil || led == nil {
		return nil, errors.New("notify: store and ledger are required")
	}
	if cfg.Verifier == nil {
		return nil, errors.New("notify: the upstream public key is required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Profile == "" {
		cfg.Profile = nkp.ProfileNKP
	}
	if err := cfg.Profile.Validate(); err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	tel := opts.Telemetry.WithDefaults()
	limits := cfg.Limits.withDefaults()
	rates, err := newRateTable(limits)
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	dups, err := lru.New[dupKey, acked](limits.DuplicateCache)
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	h := &Handler{
		cfg:       cfg,
		limits:    limits,
		st:        st,
		led:       led,
		now:       tel.Now,
		log:       tel.Logger,
		tracer:    tel.Tracer("github.com/paysidecar/paysidecar/sidecar/notify"),
		rates:     rates,
		dups:      dups,
		gate:      make(gate, limits.Concurrency),
		storeGate: make(gate, limits.StoreConcurrency),
		recv: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paysidecar_notify_received_total",
			Help: "Notifications received, by kind (payment, refund, unknown) and result (applied, duplicate, unchanged, ignored, rejected, error).",
		}, []string{"kind", "result"}),
		reject: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paysidecar_notify_rejected_total",
			Help: "Notifications refused, by reason.",
		}, []string{"reason"}),
		connRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paysidecar_notify_connections_refused_total",
			Help: "Connections to the notify listener closed at once, by the limit they exceeded (max_conns, max_conns_per_source).",
		}, []string{"reason"}),
		verified: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paysidecar_notify_verified_total",
			Help: "Notifications whose signature verified, by the upstream key that verified it (current, next).",
		}, []string{"key"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paysidecar_notify_duplicate_cache_hits_total",
			Help: "Duplicate notifications acknowledged from memory, without verifying or storing them again.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "paysidecar_notify_duration_seconds",
			Help:    "Time to handle one notification, from request to answer.",
			Buckets: telemetry.DurationBuckets,
		}),
	}
	h.refusals = newRefusalLog(h.log, limits.LogRefusals, limits.LogInterval, h.now)
	// Every series an alert or a panel reads exists from the start.
	for _, kind := range []string{ledger.KindPayment, ledger.KindRefund, "unknown"} {
		for _, result := range []string{"applied", "duplicate", "unchanged", "ignored", "rejected", "error"} {
			h.recv.WithLabelValues(kind, result)
		}
	}
	for _, reason := range []string{ReasonMethod, ReasonContentType, ReasonOversize, ReasonMalformed, ReasonUnsigned,
		ReasonBadSignature, ReasonBadData, ReasonAmountMismatch, ReasonUnknownOrder, ReasonStore,
		ReasonRateLimited, ReasonDuplicateRate, ReasonBusy} {
		h.reject.WithLabelValues(reason)
	}
	for _, key := range []string{nkp.KeyCurrent, nkp.KeyNext} {
		h.verified.WithLabelValues(key)
	}
	if err := tel.Register(h.recv, h.reject, h.connRefused, h.cacheHits, h.verified, h.latency); err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	return h, nil
}

// refusal is an answer other than the acknowledgement.
type refusal struct {
	status int
	reason string
	msg    string
	err    error
}

// ServeHTTP handles one notification: the front's limits and checks
// (front.go), the duplicate cache, then, within the verification gate, the
// signature, and within the store gate, the work.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	started := time.Now()
	defer func() { h.latency.Observe(time.Since(started).Seconds()) }()
	src := sourceOf(r.RemoteAddr)
	n, ref := h.admit(r, src)
	if ref != nil {
		h.refuse(r.Context(), w, nil, "unknown", src, ref)
		return
	}
	key := dupKeyOf(n.RespData, n.Sign)
	if a, ok := h.dups.Get(key); ok {
		// These exact bytes verified, were stored and were acknowledged
		// before: acknowledge again without the key or the store.
		if !a.again.AllowN(h.now(), 1) {
			h.penalize(r)
			h.refuse(r.Context(), w, nil, a.kind, src, &refusal{status: http.StatusTooManyRequests, reason: ReasonDuplicateRate, msg: "this notification was acknowledged already; too many copies"})
			return
		}
		h.cacheHits.Inc()
		h.recv.WithLabelValues(a.kind, "duplicate").Inc()
		writeAck(w, a.ack)
		return
	}
	if !h.gate.enter(r.Context(), h.limits.QueueTimeout) {
		h.refuse(r.Context(), w, nil, "unknown", src, &refusal{status: http.StatusServiceUnavailable, reason: ReasonBusy, msg: "too many notifications at once; try again"})
		return
	}
	// Nothing of the notification is read before this check.
	keyName, err := nkp.UpstreamKeys{Current: h.cfg.Verifier, Next: h.cfg.NextVerifier}.VerifyNotification(n)
	h.gate.leave()
	if err != nil {
		h.refuse(r.Context(), w, nil, "unknown", src, &refusal{status: http.StatusForbidden, reason: ReasonBadSignature, msg: "signature does not verify"})
		return
	}
	h.verified.WithLabelValues(keyName).Inc()
	if keyName == nkp.KeyNext {
		h.nextSeen.Do(func() {
			h.log.Info("a notification verified with upstream.public_key_next: the upstream signs with its new key; make it upstream.public_key once nothing verifies with the current one",
				"key_id", nkp.KeyID(h.cfg.NextVerifier))
		})
	}

	if !h.storeGate.enter(r.Context(), h.limits.QueueTimeout) {
		h.refuse(r.Context(), w, nil, "unknown", src, &refusal{status: http.StatusServiceUnavailable, reason: ReasonBusy, msg: "too many notifications at once; try again"})
		return
	}
	defer h.storeGate.leave()

	// Only a genuine notification gets a span: a flood of forgeries must
	// not become a flood of traces.
	method, _ := telemetry.HTTPMethod(r.Method)
	ctx, span := h.tracer.Start(r.Context(), "notify.receive", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", method)))
	defer span.End()
	kind := "unknown"
	// Once started, the work finishes even if the upstream hangs up: what
	// is half done is only repeated when it retries.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), processTimeout)
	defer cancel()
	ack, result, ref := h.handle(ctx, n, span, &kind)
	if ref != nil {
		h.refuse(ctx, w, span, kind, src, ref)
		return
	}
	h.dups.Add(key, acked{ack: ack, kind: kind, again: rate.NewLimiter(rate.Limit(h.limits.DuplicateRate), h.limits.DuplicateBurst)})
	h.recv.WithLabelValues(kind, result).Inc()
	span.SetAttributes(attribute.String("paysidecar.notify.result", result), attribute.Int("http.response.status_code", http.StatusOK))
	writeAck(w, ack)
}

func writeAck(w http.ResponseWriter, ack string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, ack)
}

// refuse answers a refusal, counts it and logs it (sampled); span is nil
// before the signature verified.
func (h *Handler) refuse(ctx context.Context, w http.ResponseWriter, span trace.Span, kind, src string, ref *refusal) {
	result := "rejected"
	level := refusalLogLevel(ref.status, ref.reason)
	if level == slog.LevelError {
		result = "error"
	}
	if span != nil {
		span.SetStatus(codes.Error, ref.reason)
		span.SetAttributes(attribute.String("paysidecar.notify.rejected", ref.reason))
	}
	h.recv.WithLabelValues(kind, result).Inc()
	h.reject.WithLabelValues(ref.reason).Inc()
	attrs := []slog.Attr{slog.Int("status", ref.status), slog.String("kind", kind), sourceAttr(src)}
	if ref.err != nil {
		attrs = append(attrs, slog.String("error", ref.err.Error()))
	}
	h.refusals.log(ctx, level, ref.reason, "notification refused: "+ref.msg, attrs...)
	switch ref.status {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", http.MethodPost)
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	}
	http.Error(w, ref.msg, ref.status)
}

// handle does the work for a verified notification; it returns the
// acknowledgement body and result, or a refusal.
func (h *Handler) handle(ctx context.Context, n nkp.Notification, span trace.Span, kind *string) (string, string, *refusal) {
	notice, err := ledger.FromNotification(n)
	if err != nil {
		return "", "", &refusal{status: http.StatusBadRequest, reason: ReasonBadData, msg: "resp_data is not a JSON object with well-formed fields", err: err}
	}
	if notice.HuifuID == "" || notice.ReqDate == "" || notice.ReqSeqID == "" {
		return "", "", &refusal{status: http.StatusBadRequest, reason: ReasonBadData, msg: "resp_data lacks huifu_id, req_date or req_seq_id"}
	}
	res := notice.PaymentResult()
	span.SetAttributes(
		attribute.String("paysidecar.huifu_id", notice.HuifuID),
		attribute.String("paysidecar.req_seq_id", notice.ReqSeqID),
		attribute.String("paysidecar.trans_stat", res.TransStat),
	)
	ack := nkp.NotifyAck(notice.ReqSeqID)

	pay, ref, err := h.find(ctx, notice)
	if err != nil {
		return "", "", &refusal{status: http.StatusServiceUnavailable, reason: ReasonStore, msg: "temporarily unable to look up the order", err: err}
	}
	var objectID string
	switch {
	case pay != nil:
		*kind = ledger.KindPayment
		objectID = pay.ID
		res.At = h.now()
		if err := h.led.CheckPaymentAmount(*pay, res); err != nil {
			return "", "", &refusal{status: http.StatusUnprocessableEntity, reason: ReasonAmountMismatch, msg: "amount does not match the order", err: err}
		}
	case ref != nil:
		*kind = ledger.KindRefund
		objectID = ref.ID
		res = notice.RefundResult()
		res.At = h.now()
		if err := h.led.CheckRefundAmount(*ref, res); err != nil {
			return "", "", &refusal{status: http.StatusUnprocessableEntity, reason: ReasonAmountMismatch, msg: "amount does not match the refund", err: err}
		}
	default:
		return "", "", &refusal{status: http.StatusNotFound, reason: ReasonUnknownOrder, msg: "no such order"}
	}
	span.SetAttributes(attribute.String("paysidecar.object_id", objectID))

	rec := store.Notification{
		ID:         NotificationID(n.RespData),
		ReqSeqID:   notice.ReqSeqID,
		Kind:       *kind,
		ObjectID:   objectID,
		RespData:   n.RespData,
		ReceivedAt: res.At,
	}
	if notice.NotifyType != "" && notice.NotifyType != nkp.NotifyTypeChannel {
		// Not a channel result: kept for audit, acknowledged, not acted on.
		if _, err := h.led.RecordNotification(ctx, rec); err != nil {
			return "", "", &refusal{status: http.StatusServiceUnavailable, reason: ReasonStore, msg: "temporarily unable to store the notification", err: err}
		}
		return ack, "ignored", nil
	}
	status, applied, isNew, err := h.led.ApplyNotification(ctx, rec, pay, ref, res)
	if err != nil {
		if errors.Is(err, ledger.ErrAmountMismatch) {
			return "", "", &refusal{status: http.StatusUnprocessableEntity, reason: ReasonAmountMismatch, msg: "amount does not match the order", err: err}
		}
		return "", "", &refusal{status: http.StatusServiceUnavailable, reason: ReasonStore, msg: "temporarily unable to apply the notification", err: err}
	}
	if status.Final() {
		span.SetAttributes(attribute.String("paysidecar.event_id", ledger.EventID(objectID, status)))
	}
	span.SetAttributes(attribute.String("paysidecar.status", string(status)))
	switch {
	case applied:
		return ack, "applied", nil
	case !isNew:
		return ack, "duplicate", nil
	default:
		return ack, "unchanged", nil
	}
}

// find looks the notification's order up: a refund when trans_type says
// so, otherwise a payment, and a refund when no payment matches (some
// refund notifications carry no trans_type). Both are nil when the order is
// unknown.
func (h *Handler) find(ctx context.Context, d ledger.Notice) (*store.Payment, *store.Refund, error) {
	findRefund := func() (*store.Refund, error) {
		rf, err := h.st.GetRefundByReqSeqID(ctx, d.HuifuID, d.ReqDate, d.ReqSeqID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("look up refund %s/%s: %w", d.ReqDate, d.ReqSeqID, err)
		}
		return &rf, nil
	}
	if d.Refund() {
		rf, err := findRefund()
		return nil, rf, err
	}
	p, err := h.st.GetPaymentByReqSeqID(ctx, d.HuifuID, d.ReqDate, d.ReqSeqID)
	if err == nil {
		return &p, nil, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, nil, fmt.Errorf("look up payment %s/%s: %w", d.ReqDate, d.ReqSeqID, err)
	}
	rf, err := findRefund()
	return nil, rf, err
}

// NotificationID returns the id a notification is recorded under: the hex
// SHA-256 of its raw resp_data, so that a repeated notification is
// recognized whatever its outer fields.
func NotificationID(respData string) string {
	sum := sha256.Sum256([]byte(respData))
	return hex.EncodeToString(sum[:])
}

func checkContentType(v string) error {
	if v == "" {
		return errors.New("no Content-Type")
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		return fmt.Errorf("parse Content-Type: %w", err)
	}
	if mt != "application/x-www-form-urlencoded" {
		return fmt.Errorf("Content-Type %q", mt)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return fmt.Errorf("charset %q", cs)
	}
	return nil
}
