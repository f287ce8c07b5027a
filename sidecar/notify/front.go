package notify

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"

	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// The front of the ingress: everything that happens to a request before
// its signature is checked, and the answer to a duplicate. It exists
// because the notify port is the one listener the internet reaches, so
// anyone may send it anything at any rate, while the app API on the same
// CPUs must stay fast. In the order a request meets them:
//
//  1. connection limits (Listener): at most Limits.MaxConns connections
//     at once and Limits.MaxConnsPerSource from one source; a connection
//     beyond either is closed as soon as it is accepted.
//  2. a token bucket per source (Limits.RatePerSource, BurstPerSource),
//     in a table of at most Limits.Sources sources: over its rate a
//     source is answered 429 before its body is read, after
//     Limits.RateLimitDelay, so that each of its connections can make only
//     one request per delay.
//  3. cheap checks: method, content type, declared and actual body size,
//     form shape (resp_data and sign present, once each, resp_data a JSON
//     object by its first byte).
//  4. the duplicate cache: a notification this process has already
//     verified, stored and acknowledged is acknowledged again from memory,
//     at most Limits.DuplicateRate times a second (a replay flood of one
//     captured notification from many sources is answered 429 late).
//     The cache is keyed by the SHA-256 of resp_data and sign together, so
//     a hit means these exact bytes verified before under the same keys;
//     a forged copy of a genuine resp_data never hits it.
//  5. a concurrency gate (Limits.Concurrency, QueueTimeout) around the
//     signature check, so that verification cannot take every CPU from the
//     app API, and a second, wider one (Limits.StoreConcurrency) around the
//     store work of a verified notification, which mostly waits for its
//     commit: a notification waiting for the disk does not hold a turn of
//     the CPU-bound check, and concurrent notifications share a group
//     commit. A request that waits too long for either gate is answered
//     503.
//
// Every refusal is counted in paysidecar_notify_rejected_total by reason;
// it is logged only for the first Limits.LogRefusals of its reason in each
// Limits.LogInterval (then as a count) and never gets a span of its own.
// A refusal is never a 2xx, so the upstream retries a genuine notification
// that a limit turned away.

// Limits bound what the ingress spends on the requests it receives. Zero
// fields take the defaults below.
type Limits struct {
	// MaxConns bounds the open connections to the notify listener.
	// Default 1024.
	MaxConns int
	// MaxHeaderBytes bounds the request line and headers (net/http allows
	// a further 4 KiB of slack). Default 8 KiB.
	MaxHeaderBytes int
	// ReadTimeout bounds the time to read one whole request. Default 10s.
	ReadTimeout time.Duration
	// MaxConnsPerSource bounds the open connections from one source
	// address (an IPv4 address or an IPv6 /64). Default 32.
	MaxConnsPerSource int
	// RatePerSource is the sustained requests per second one source may
	// send; BurstPerSource how many it may send at once. Defaults 200 and
	// 400.
	RatePerSource  float64
	BurstPerSource int
	// RateLimitDelay is how long a request over its source's rate waits
	// for its 429. Default 1s.
	RateLimitDelay time.Duration
	// Sources bounds the table of per-source rate limiters; the least
	// recently seen source is forgotten first. Default 4096.
	Sources int
	// Concurrency bounds the signatures verified at once;
	// StoreConcurrency the verified notifications whose store work runs
	// at once; QueueTimeout how long a request waits for a turn at either
	// before it is answered 503. Defaults 4, 64 and 2s (the upstream
	// waits 5 s).
	Concurrency      int
	StoreConcurrency int
	QueueTimeout     time.Duration
	// DuplicateCache is the number of acknowledged notifications
	// remembered to answer their duplicates from memory. Default 4096.
	DuplicateCache int
	// DuplicateRate and DuplicateBurst bound how often the duplicates of
	// one remembered notification are acknowledged, from all sources
	// together; more are answered 429 after RateLimitDelay. The upstream
	// repeats a notification a few times a minute at most. Defaults 1 per
	// second and 10.
	DuplicateRate  float64
	DuplicateBurst int
	// LogRefusals is the number of refusals of one reason logged one by
	// one in each LogInterval; the rest are logged as a count. Defaults
	// 10 and 1m.
	LogRefusals int
	LogInterval time.Duration
}

// Default limits, for the zero fields of Limits.
const (
	DefaultMaxConns          = 1024
	DefaultMaxHeaderBytes    = 8 << 10
	DefaultReadTimeout       = 10 * time.Second
	DefaultMaxConnsPerSource = 32
	DefaultRatePerSource     = 200
	DefaultBurstPerSource    = 400
	DefaultRateLimitDelay    = time.Second
	DefaultSources           = 4096
	DefaultConcurrency       = 4
	DefaultStoreConcurrency  = 64
	DefaultQueueTimeout      = 2 * time.Second
	DefaultDuplicateCache    = 4096
	DefaultDuplicateRate     = 1
	DefaultDuplicateBurst    = 10
	DefaultLogRefusals       = 10
	DefaultLogInterval       = time.Minute
)

// Refusal reasons of the front, besides those of the handler.
const (
	ReasonRateLimited   = "rate_limited"
	ReasonDuplicateRate = "duplicate_rate_limited"
	ReasonBusy          = "busy"
)

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxConns, DefaultMaxConns)
	def(&l.MaxConnsPerSource, DefaultMaxConnsPerSource)
	def(&l.MaxHeaderBytes, DefaultMaxHeaderBytes)
	def(&l.BurstPerSource, DefaultBurstPerSource)
	def(&l.Sources, DefaultSources)
	def(&l.Concurrency, DefaultConcurrency)
	def(&l.StoreConcurrency, DefaultStoreConcurrency)
	def(&l.DuplicateCache, DefaultDuplicateCache)
	def(&l.DuplicateBurst, DefaultDuplicateBurst)
	if l.DuplicateRate <= 0 {
		l.DuplicateRate = DefaultDuplicateRate
	}
	def(&l.LogRefusals, DefaultLogRefusals)
	if l.RatePerSource <= 0 {
		l.RatePerSource = DefaultRatePerSource
	}
	if l.RateLimitDelay <= 0 {
		l.RateLimitDelay = DefaultRateLimitDelay
	}
	if l.QueueTimeout <= 0 {
		l.QueueTimeout = DefaultQueueTimeout
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = DefaultReadTimeout
	}
	if l.LogInterval <= 0 {
		l.LogInterval = DefaultLogInterval
	}
	return l
}

// sourceOf returns the source a remote address counts against: the IPv4
// address, or the /64 prefix of an IPv6 address (one subscriber's
// allocation), or the address as given when it is not an IP.
func sourceOf(remote string) string {
	host := remote
	if h, _, err := net.SplitHostPort(remote); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, err := ip.Prefix(64)
		if err == nil {
			return p.String()
		}
	}
	return ip.String()
}

// rateTable holds one token bucket per source, at most size of them.
type rateTable struct {
	limit rate.Limit
	burst int
	cache *lru.Cache[string, *rate.Limiter]
}

func newRateTable(l Limits) (*rateTable, error) {
	c, err := lru.New[string, *rate.Limiter](l.Sources)
	if err != nil {
		return nil, err
	}
	return &rateTable{limit: rate.Limit(l.RatePerSource), burst: l.BurstPerSource, cache: c}, nil
}

// allow takes a token from source's bucket.
func (t *rateTable) allow(source string, now time.Time) bool {
	lim, ok := t.cache.Get(source)
	if !ok {
		lim = rate.NewLimiter(t.limit, t.burst)
		if prev, found, _ := t.cache.PeekOrAdd(source, lim); found {
			lim = prev
		}
	}
	return lim.AllowN(now, 1)
}

// dupKey identifies a notification exactly as received: resp_data and
// the signature string together.
type dupKey [sha256.Size]byte

func dupKeyOf(respData, sign string) dupKey {
	h := sha256.New()
	_, _ = h.Write([]byte(strconv.Itoa(len(respData))))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(respData))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(sign))
	var k dupKey
	h.Sum(k[:0])
	return k
}

// acked is what the duplicate cache remembers of an acknowledged
// notification, and the rate at which its duplicates are answered.
type acked struct {
	ack   string
	kind  string
	again *rate.Limiter
}

// gate bounds the requests verified and processed at once.
type gate chan struct{}

// enter waits up to timeout for a turn; the caller calls leave after a
// successful enter.
func (g gate) enter(ctx context.Context, timeout time.Duration) bool {
	select {
	case g <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case g <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

func (g gate) leave() { <-g }

// Listener returns ln with the connection limits applied: a connection
// beyond Limits.MaxConns, or beyond Limits.MaxConnsPerSource from its
// source, is closed as soon as it is accepted and counted in
// paysidecar_notify_connections_refused_total. Serve the ingress on it.
func (h *Handler) Listener(ln net.Listener) net.Listener {
	return &limitListener{Listener: ln, h: h, perSource: map[string]int{}}
}

type limitListener struct {
	net.Listener
	h         *Handler
	mu        sync.Mutex
	total     int
	perSource map[string]int
}

// Accept returns the next connection within the limits.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src := sourceOf(c.RemoteAddr().String())
		l.mu.Lock()
		reason := ""
		switch {
		case l.total >= l.h.limits.MaxConns:
			reason = "max_conns"
		case l.perSource[src] >= l.h.limits.MaxConnsPerSource:
			reason = "max_conns_per_source"
		default:
			l.total++
			l.perSource[src]++
		}
		l.mu.Unlock()
		if reason != "" {
			_ = c.Close()
			l.h.connRefused.WithLabelValues(reason).Inc()
			l.h.refusals.log(context.Background(), slog.LevelWarn, "conn_"+reason,
				"connection refused: too many connections", sourceAttr(src))
			continue
		}
		return &limitedConn{Conn: c, release: func() { l.release(src) }}, nil
	}
}

func (l *limitListener) release(src string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perSource[src]--; l.perSource[src] <= 0 {
		delete(l.perSource, src)
	}
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// Close closes the connection and frees its place.
func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// penalize holds a request over a rate for Limits.RateLimitDelay before
// it is refused: a flood can then make at most one request per connection
// per delay, and its connections are bounded.
func (h *Handler) penalize(r *http.Request) {
	t := time.NewTimer(h.limits.RateLimitDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

// maxSignLen bounds the sign field: the base64 of an RSA-4096 signature
// is 684 characters.
const maxSignLen = 1024

// admit applies the per-source rate and the cheap checks, and reads the
// notification's four fields. Nothing in it is trusted yet.
func (h *Handler) admit(r *http.Request, src string) (nkp.Notification, *refusal) {
	if !h.rates.allow(src, h.now()) {
		h.penalize(r)
		return nkp.Notification{}, &refusal{status: http.StatusTooManyRequests, reason: ReasonRateLimited, msg: "too many requests from this address"}
	}
	if r.Method != http.MethodPost {
		return nkp.Notification{}, &refusal{status: http.StatusMethodNotAllowed, reason: ReasonMethod, msg: "only POST is accepted"}
	}
	if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
		return nkp.Notification{}, &refusal{status: http.StatusUnsupportedMediaType, reason: ReasonContentType, msg: "want application/x-www-form-urlencoded in UTF-8", err: err}
	}
	tooLarge := &refusal{status: http.StatusRequestEntityTooLarge, reason: ReasonOversize, msg: fmt.Sprintf("body larger than %d bytes", h.cfg.MaxBodyBytes)}
	if r.ContentLength > h.cfg.MaxBodyBytes {
		return nkp.Notification{}, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nkp.Notification{}, tooLarge
		}
		return nkp.Notification{}, &refusal{status: http.StatusBadRequest, reason: ReasonMalformed, msg: "cannot read body", err: err}
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nkp.Notification{}, &refusal{status: http.StatusBadRequest, reason: ReasonMalformed, msg: "body is not a valid form", err: err}
	}
	if len(form[nkp.FormRespData]) > 1 || len(form[nkp.FormSign]) > 1 {
		return nkp.Notification{}, &refusal{status: http.StatusBadRequest, reason: ReasonMalformed, msg: "resp_data and sign may appear only once"}
	}
	n, err := nkp.NotificationFromForm(form)
	if err != nil {
		if errors.Is(err, nkp.ErrBadSignature) {
			return nkp.Notification{}, &refusal{status: http.StatusForbidden, reason: ReasonUnsigned, msg: "notification is not signed"}
		}
		return nkp.Notification{}, &refusal{status: http.StatusBadRequest, reason: ReasonMalformed, msg: "resp_data is missing", err: err}
	}
	if len(n.Sign) > maxSignLen {
		return nkp.Notification{}, &refusal{status: http.StatusForbidden, reason: ReasonBadSignature, msg: "signature does not verify"}
	}
	// resp_data is a JSON object; its first byte says so without parsing.
	if d := strings.TrimLeft(n.RespData, " \t\r\n"); d == "" || d[0] != '{' {
		return nkp.Notification{}, &refusal{status: http.StatusBadRequest, reason: ReasonBadData, msg: "resp_data is not a JSON object"}
	}
	return n, nil
}

// Server timeouts of the notify listener.
const (
	readHeaderTimeout = 5 * time.Second
	idleTimeout       = 30 * time.Second
)

// ConfigureServer applies the header and time limits to the http.Server
// that serves the ingress: Limits.MaxHeaderBytes for the request line and
// headers, Limits.ReadTimeout for a whole request, so that a slow sender
// cannot hold a connection open for long.
func (h *Handler) ConfigureServer(srv *http.Server) {
	srv.MaxHeaderBytes = h.limits.MaxHeaderBytes
	srv.ReadHeaderTimeout = min(readHeaderTimeout, h.limits.ReadTimeout)
	srv.ReadTimeout = h.limits.ReadTimeout
	srv.IdleTimeout = idleTimeout
}
