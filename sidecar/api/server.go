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
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/payments"
	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

// Upstream is the part of nkp.Client the API calls itself, for statements
// and the signed passthrough; payments and refunds go through package
// payments.
type Upstream interface {
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
	// MerchantID is the default huifu_id of statements and passthrough
	// calls.
	MerchantID     string
	MaxBodyBytes   int64
	IdempotencyTTL time.Duration
	// Token, when set, is required as a bearer token. SetToken changes it
	// while the server runs.
	Token string
	// Passthrough lists the upstream paths callable through
	// /v1/upstream/. SetPassthrough changes it while the server runs.
	Passthrough []string
}

// Routes is a set of routes served by the app API behind its
// authentication and instrumentation (the events API).
type Routes interface {
	// Register adds the routes to mux.
	Register(mux *http.ServeMux)
}

// Server is the app API. Create it with New and serve Handler.
//
// The token and the passthrough list can change while requests are served
// (SetToken, SetPassthrough). A request reads each once: it is let in by
// the token that was current when it arrived, whatever changes after.
type Server struct {
	cfg      Config
	token    atomic.Pointer[string]
	allowed  atomic.Pointer[map[string]bool]
	store    store.Store
	payments *payments.Service
	upstream Upstream
	flows    Flows
	events   Routes
	books    http.Handler
	log      *slog.Logger
	now      func() time.Time
	tracer   trace.Tracer
	metrics  *metrics
	mux      *http.ServeMux
}

// Deps are the parts the API is built on.
type Deps struct {
	// Store keeps the answers of idempotent requests.
	Store store.Store
	// Payments runs payments and refunds.
	Payments *payments.Service
	Upstream Upstream
	Flows    Flows
	// Events registers the routes under /v1/events; optional.
	Events Routes
	// Telemetry is the API's logger, registerer, tracer provider and
	// clock.
	Telemetry telemetry.Bundle
	// Statements serves /v1/statements/… and /v1/reconciliations;
	// optional.
	Statements http.Handler
}

// New returns the API server.
func New(cfg Config, d Deps) (*Server, error) {
	if d.Store == nil || d.Payments == nil || d.Upstream == nil || d.Flows == nil {
		return nil, errors.New("api: store, payments, upstream and flows are required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = 24 * time.Hour
	}
	tel := d.Telemetry.WithDefaults()
	m, err := newMetrics(tel)
	if err != nil {
		return nil, err
	}
	token, paths := cfg.Token, cfg.Passthrough
	// They live in the atomic pointers alone, where the setters change
	// them.
	cfg.Token, cfg.Passthrough = "", nil
	s := &Server{cfg: cfg, store: d.Store, payments: d.Payments, upstream: d.Upstream, flows: d.Flows,
		events: d.Events, books: d.Statements, log: tel.Logger, now: tel.Now, metrics: m,
		tracer: tel.Tracer("github.com/paysidecar/paysidecar/sidecar/api")}
	s.SetToken(token)
	s.SetPassthrough(paths)
	s.routes()
	return s, nil
}

// SetToken changes the bearer token every request must carry; empty lets
// every request in. It is safe to call while requests are served: each
// request is checked against the token current when it arrived.
func (s *Server) SetToken(token string) {
	s.token.Store(&token)
}

// SetPassthrough changes the upstream paths callable through
// /v1/upstream/. It is safe to call while requests are served.
func (s *Server) SetPassthrough(paths []string) {
	allowed := make(map[string]bool, len(paths))
	for _, p := range paths {
		allowed[p] = true
	}
	s.allowed.Store(&allowed)
}

func (s *Server) routes() {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/payments", s.idempotent(s.createPayment))
	mux.HandleFunc("GET /v1/payments", s.handle(s.findPayment))
	mux.HandleFunc("GET /v1/payments/{id}", s.handle(s.getPayment))
	mux.HandleFunc("POST /v1/payments/{id}/close", s.idempotent(s.closePayment))
	mux.HandleFunc("POST /v1/payments/{id}/refunds", s.idempotent(s.createRefund))
	mux.HandleFunc("GET /v1/payments/{id}/refunds", s.handle(s.listRefunds))
	mux.HandleFunc("POST /v1/refunds", s.idempotent(s.createRefundBy))
	mux.HandleFunc("GET /v1/refunds/{id}", s.handle(s.getRefund))
	mux.HandleFunc("POST /v1/oauth/authorize-url", s.post(s.authorizeURL))
	mux.HandleFunc("POST /v1/oauth/exchange", s.post(s.exchangeCode))
	mux.HandleFunc("GET /v1/statements", s.handle(s.statements))
	mux.HandleFunc("POST /v1/upstream/{path...}", s.idempotent(s.passthrough))
	mux.HandleFunc("GET /v1/flows", s.handle(s.listFlows))
	s.registerCheckouts(mux)
	if s.events != nil {
		s.events.Register(mux)
	}
	if s.books != nil {
		mux.Handle("/v1/statements/", s.books)
		mux.Handle("/v1/reconciliations", s.books)
		mux.Handle("/v1/reconciliations/", s.books)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// The catch-all takes every request no route matches.
		s.fail(w, r, Unrouted(mux, w, r))
	})
	s.mux = mux
}

// Unrouted is the error for a request that no route of mux matches, for
// a catch-all "/" route: 405 with an Allow header when the path exists for
// another method, 404 otherwise, both in the API's error shape.
func Unrouted(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) *Error {
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
		return errorf(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "", "%s is not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allow, " or "))
	}
	return errorf(http.StatusNotFound, CodeNotFound, "", "no such endpoint: %s %s", r.Method, r.URL.Path)
}

// Handler returns the API's HTTP handler, with authentication, panic
// recovery, request metrics and a server span around the routes. Metrics
// and spans follow OpenTelemetry's HTTP conventions and take no label from
// request data: the route is the pattern that matched (none for a path no
// route serves) and an unknown method is _OTHER.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		_, pattern := s.mux.Handler(r)
		route := routeOf(pattern)
		method, known := telemetry.HTTPMethod(r.Method)
		// Continue the application's trace when it sent one.
		ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		name := method
		if route != "" {
			name += " " + route
		}
		attrs := []attribute.KeyValue{attribute.String("http.request.method", method), attribute.String("url.path", r.URL.Path)}
		if !known {
			attrs = append(attrs, attribute.String("http.request.method_original", r.Method))
		}
		if route != "" {
			attrs = append(attrs, attribute.String("http.route", route))
		}
		ctx, span := s.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
		rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if v := recover(); v != nil {
				s.log.ErrorContext(ctx, "panic in API handler", "method", r.Method, "route", route, "panic", v)
				if !rw.wrote {
					s.fail(rw, r, &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error"})
				}
			}
			span.SetAttributes(attribute.Int("http.response.status_code", rw.status))
			if rw.status >= 500 {
				span.SetStatus(codes.Error, http.StatusText(rw.status))
			}
			span.End()
			s.metrics.observe(ctx, method, route, rw.status, time.Since(start))
		}()
		if token := *s.token.Load(); token != "" && !authorized(r, token) {
			s.fail(rw, r, errorf(http.StatusUnauthorized, CodeUnauthorized, "", "send Authorization: Bearer <token>"))
			return
		}
		r.Body = http.MaxBytesReader(rw, r.Body, s.cfg.MaxBodyBytes+1)
		s.mux.ServeHTTP(rw, r.WithContext(ctx))
	})
}

func authorized(r *http.Request, token string) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

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
	writeRaw(w, status, mustJSON(unwrap(w, v)))
}

// provisional is an answer that tells how things stand for now: the same
// request, repeated (after retryAfter, sent as Retry-After), gets a later
// answer. It is never kept for an idempotency key.
type provisional struct {
	value      any
	retryAfter time.Duration
}

// unwrap returns the value to encode, setting Retry-After for a
// provisional answer.
func unwrap(w http.ResponseWriter, v any) any {
	p, ok := v.(provisional)
	if !ok {
		return v
	}
	if p.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(p.retryAfter.Seconds()))))
	}
	return p.value
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

// routeOf returns the route of a ServeMux pattern ("POST /v1/payments/{id}"
// gives "/v1/payments/{id}"), or "" for the catch-all that answers paths
// no route serves.
func routeOf(pattern string) string {
	if _, path, ok := strings.Cut(pattern, " "); ok {
		pattern = path
	}
	if pattern == "/" {
		return ""
	}
	return pattern
}

type metrics struct {
	duration          *prometheus.HistogramVec
	idempotentReplays prometheus.Counter
}

func newMetrics(tel telemetry.Bundle) (*metrics, error) {
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			// OpenTelemetry's http.server.request.duration as its
			// Prometheus exporter names it under the namespace paysidecar.
			Name:    "paysidecar_http_server_request_duration_seconds",
			Help:    "Duration of app API requests (OpenTelemetry's http.server.request.duration), by method, status and route; the route is empty for a path no route serves.",
			Buckets: telemetry.DurationBuckets,
		}, []string{"http_request_method", "http_response_status_code", "http_route"}),
		idempotentReplays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paysidecar_api_idempotent_replays_total",
			Help: "Answers replayed for a repeated Idempotency-Key.",
		}),
	}
	if err := tel.Register(m.duration, m.idempotentReplays); err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	return m, nil
}

func (m *metrics) observe(ctx context.Context, method, route string, status int, d time.Duration) {
	telemetry.ObserveWithExemplar(ctx, m.duration.WithLabelValues(method, strconv.Itoa(status), route), d.Seconds())
}
