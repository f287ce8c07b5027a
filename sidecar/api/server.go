// Package api serves the app API: the plain-JSON interface an application
// calls on loopback to create, read, close and refund payments, exchange
// WeChat codes, fetch statements and pass signed calls through to the
// upstream. The application never signs anything; the sidecar generates
// req_seq_id and req_date, signs every call and verifies every answer.
package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/store"
)

// Upstream is the part of nkp.Client the API uses.
type Upstream interface {
	JSPay(ctx context.Context, req nkp.JSPayRequest) (nkp.JSPayResponse, error)
	QueryPayment(ctx context.Context, req nkp.PaymentQueryRequest) (nkp.PaymentQueryResponse, error)
	Close(ctx context.Context, req nkp.CloseRequest) (nkp.CloseResponse, error)
	Refund(ctx context.Context, req nkp.RefundRequest) (nkp.RefundResponse, error)
	QueryRefund(ctx context.Context, req nkp.RefundQueryRequest) (nkp.RefundResponse, error)
	FileQuery(ctx context.Context, req nkp.FileQueryRequest) (nkp.FileQueryResponse, error)
	Call(ctx context.Context, path string, data map[string]any) (map[string]any, error)
}

// Flows gives access to the flow plugins by name.
type Flows interface {
	// Flow returns the named flow, or an error that wraps
	// pluginhost.ErrUnknownFlow or pluginhost.ErrUnavailable.
	Flow(name string) (plugin.Flow, error)
	// Infos describes the running flows.
	Infos() []plugin.Info
}

// Config configures the API.
type Config struct {
	// MerchantID is the default huifu_id.
	MerchantID string
	// NotifyURL is sent upstream as notify_url.
	NotifyURL      string
	MaxBodyBytes   int64
	MaxAmountFen   int64
	IdempotencyTTL time.Duration
	// Token, when set, is required as a bearer token.
	Token string
	// Passthrough lists the upstream paths callable through
	// /v1/upstream/.
	Passthrough []string
	// FirstQueryAfter is when an unfinished payment is first queried.
	FirstQueryAfter time.Duration
	// InFlight is how long a pending payment may still have its first
	// order call running: at least the upstream call timeout. A twin
	// request inside it is told to retry; after it, the order is re-sent
	// under the same req_seq_id.
	InFlight time.Duration
	// RefreshInterval is the least time between two upstream queries a
	// GET makes for the same unfinished payment.
	RefreshInterval time.Duration
	// RefreshTimeout bounds the upstream query a GET makes for an
	// unfinished payment; the stored state is answered when it runs out.
	RefreshTimeout time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Server is the app API. Create it with New and serve Handler.
type Server struct {
	cfg      Config
	store    store.Store
	ledger   *ledger.Ledger
	upstream Upstream
	flows    Flows
	events   http.Handler
	books    http.Handler
	log      *slog.Logger
	tracer   trace.Tracer
	metrics  *metrics
	mux      *http.ServeMux

	refundLocks paymentLocks
	refreshes   refreshGate
}

// Deps are the parts the API is built on.
type Deps struct {
	Store    store.Store
	Ledger   *ledger.Ledger
	Upstream Upstream
	Flows    Flows
	// Events serves /v1/events; optional.
	Events http.Handler
	// Statements serves /v1/statements/… and /v1/reconciliations;
	// optional.
	Statements     http.Handler
	Logger         *slog.Logger
	TracerProvider trace.TracerProvider
	Registerer     prometheus.Registerer
}

// New returns the API server.
func New(cfg Config, d Deps) (*Server, error) {
	if d.Store == nil || d.Ledger == nil || d.Upstream == nil || d.Flows == nil {
		return nil, errors.New("api: store, ledger, upstream and flows are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = 24 * time.Hour
	}
	if cfg.FirstQueryAfter <= 0 {
		cfg.FirstQueryAfter = 15 * time.Second
	}
	if cfg.InFlight <= 0 {
		cfg.InFlight = 20 * time.Second
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = 2 * time.Second
	}
	if cfg.RefreshTimeout <= 0 {
		cfg.RefreshTimeout = 3 * time.Second
	}
	log := d.Logger
	if log == nil {
		log = slog.Default()
	}
	m, err := newMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, store: d.Store, ledger: d.Ledger, upstream: d.Upstream, flows: d.Flows,
		events: d.Events, books: d.Statements, log: log, metrics: m, refreshes: refreshGate{interval: cfg.RefreshInterval}}
	if d.TracerProvider != nil {
		s.tracer = d.TracerProvider.Tracer("github.com/paysidecar/paysidecar/sidecar/api")
	}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/payments", s.idempotent(s.createPayment))
	mux.HandleFunc("GET /v1/payments", s.handle(s.findPayment))
	mux.HandleFunc("GET /v1/payments/{id}", s.handle(s.getPayment))
	mux.HandleFunc("POST /v1/payments/{id}/close", s.idempotent(s.closePayment))
	mux.HandleFunc("POST /v1/payments/{id}/refunds", s.idempotent(s.createRefund))
	mux.HandleFunc("GET /v1/payments/{id}/refunds", s.handle(s.listRefunds))
	mux.HandleFunc("GET /v1/refunds/{id}", s.handle(s.getRefund))
	mux.HandleFunc("POST /v1/oauth/authorize-url", s.post(s.authorizeURL))
	mux.HandleFunc("POST /v1/oauth/exchange", s.post(s.exchangeCode))
	mux.HandleFunc("GET /v1/statements", s.handle(s.statements))
	mux.HandleFunc("POST /v1/upstream/{path...}", s.idempotent(s.passthrough))
	mux.HandleFunc("GET /v1/flows", s.handle(s.listFlows))
	if s.events != nil {
		mux.Handle("/v1/events", s.events)
		mux.Handle("/v1/events/", s.events)
	}
	if s.books != nil {
		mux.Handle("/v1/statements/", s.books)
		mux.Handle("/v1/reconciliations", s.books)
		mux.Handle("/v1/reconciliations/", s.books)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// The catch-all takes every request no route matches: a path that
		// exists for another method gets 405, anything else 404, both in
		// the API's error shape.
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			other := r.Clone(r.Context())
			other.Method = m
			if _, pattern := mux.Handler(other); m != r.Method && pattern != "/" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			s.fail(w, r, errorf(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "", "%s is not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allow, " or ")))
			return
		}
		s.fail(w, r, errorf(http.StatusNotFound, CodeNotFound, "", "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	s.mux = mux
}

// Handler returns the API's HTTP handler, with authentication, panic
// recovery and request metrics around the routes.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if v := recover(); v != nil {
				s.log.ErrorContext(r.Context(), "panic in API handler", "method", r.Method, "path", r.URL.Path, "panic", v)
				if !rw.wrote {
					s.fail(rw, r, &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error"})
				}
			}
			s.metrics.observe(r, rw.status, time.Since(start))
		}()
		if s.cfg.Token != "" && !s.authorized(r) {
			s.fail(rw, r, errorf(http.StatusUnauthorized, CodeUnauthorized, "", "send Authorization: Bearer <token>"))
			return
		}
		r.Body = http.MaxBytesReader(rw, r.Body, s.cfg.MaxBodyBytes+1)
		// Continue the application's trace when it sent one.
		ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		if s.tracer != nil {
			var span trace.Span
			ctx, span = s.tracer.Start(ctx, r.Method+" "+routeOf(r), trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("http.route", routeOf(r))))
			defer func() {
				span.SetAttributes(attribute.Int("http.response.status_code", rw.status))
				if rw.status >= 500 {
					span.SetStatus(codes.Error, http.StatusText(rw.status))
				}
				span.End()
			}()
		}
		s.mux.ServeHTTP(rw, r.WithContext(ctx))
	})
}

func (s *Server) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) == 1
}

func (s *Server) now() time.Time { return s.cfg.Now() }

// handle adapts a GET handler.
func (s *Server) handle(h func(ctx context.Context, r *http.Request) (int, any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		status, v, err := h(r.Context(), r)
		s.answer(w, r, status, v, err)
	}
}

// post adapts a POST handler without idempotency (it has no effect to
// repeat).
func (s *Server) post(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(r, s.cfg.MaxBodyBytes)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		status, v, err := h(r.Context(), r, body)
		s.answer(w, r, status, v, err)
	}
}

func (s *Server) answer(w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeRaw(w, status, mustJSON(v))
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.logError(r, err)
	status, body := errorBody(err)
	writeRaw(w, status, body)
}

func (s *Server) logError(r *http.Request, err error) {
	var e *Error
	if errors.As(err, &e) && e.Status < 500 {
		s.log.DebugContext(r.Context(), "request refused", "method", r.Method, "path", r.URL.Path, "code", e.Code, "field", e.Field)
		return
	}
	s.log.WarnContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
}

// mustJSON encodes v without HTML escaping, so that URLs in pay
// parameters read as they are ("&", not "\u0026").
func mustJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return []byte(`{"error":{"code":"internal","message":"cannot encode the answer"}}`)
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status = code
		w.wrote = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// routeOf names the route of r for metrics and spans without ids, so that
// label cardinality stays bounded.
func routeOf(r *http.Request) string {
	p := r.URL.Path
	switch {
	case p == "/v1/payments" || p == "/v1/flows" || p == "/v1/statements" || p == "/v1/events":
		return p
	case strings.HasPrefix(p, "/v1/payments/") && strings.HasSuffix(p, "/refunds"):
		return "/v1/payments/{id}/refunds"
	case strings.HasPrefix(p, "/v1/payments/") && strings.HasSuffix(p, "/close"):
		return "/v1/payments/{id}/close"
	case strings.HasPrefix(p, "/v1/payments/"):
		return "/v1/payments/{id}"
	case strings.HasPrefix(p, "/v1/refunds/"):
		return "/v1/refunds/{id}"
	case strings.HasPrefix(p, "/v1/oauth/"):
		return p
	case strings.HasPrefix(p, "/v1/upstream/"):
		return "/v1/upstream/{path}"
	case strings.HasPrefix(p, "/v1/events/"):
		return "/v1/events/{id}"
	case strings.HasPrefix(p, "/v1/statements/") && strings.Contains(p, "/files/"):
		return "/v1/statements/{date}/{bill_type}/files/{name}"
	case strings.HasPrefix(p, "/v1/statements/"):
		return "/v1/statements/{date}/{bill_type}"
	case p == "/v1/reconciliations":
		return p
	case strings.HasPrefix(p, "/v1/reconciliations/"):
		return "/v1/reconciliations/{id}"
	}
	return "other"
}

type metrics struct {
	requests          *prometheus.CounterVec
	duration          *prometheus.HistogramVec
	idempotentReplays prometheus.Counter
	upstreamCalls     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paysidecar_api_requests_total",
			Help: "App API requests by route, method and HTTP status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "paysidecar_api_request_duration_seconds",
			Help:    "App API request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"route"}),
		idempotentReplays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paysidecar_api_idempotent_replays_total",
			Help: "Answers replayed for a repeated Idempotency-Key.",
		}),
		upstreamCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paysidecar_upstream_calls_total",
			Help: "Calls the app API made to the upstream, by path and result.",
		}, []string{"path", "result"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.duration, m.idempotentReplays, m.upstreamCalls} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) observe(r *http.Request, status int, d time.Duration) {
	route := routeOf(r)
	m.requests.WithLabelValues(route, r.Method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}
