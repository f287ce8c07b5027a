package nkp

import (
	"net/http"
	"time"
)

// DefaultMaxIdleConns is how many idle connections to the upstream
// NewTransport keeps by default: enough for the creates, queries and
// refunds a busy sidecar has in flight at once, so that each call after
// the first few reuses a connection instead of paying for a TCP (and TLS)
// handshake.
const DefaultMaxIdleConns = 64

// IdleConnTimeout is how long an idle connection to the upstream is kept.
const IdleConnTimeout = 90 * time.Second

// NewTransport returns the HTTP transport for calls to the upstream:
// net/http's defaults (proxy from the environment, dial and TLS handshake
// timeouts, HTTP/2 when the upstream offers it) with connections kept
// alive and reused. net/http keeps only two idle connections per host, so
// at a concurrency above two most calls would open a new connection and
// leave one in TIME_WAIT; this transport keeps up to maxIdle (at least
// DefaultMaxIdleConns when maxIdle is not positive) idle connections to
// the one upstream host for IdleConnTimeout.
func NewTransport(maxIdle int) *http.Transport {
	if maxIdle <= 0 {
		maxIdle = DefaultMaxIdleConns
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = maxIdle
	t.MaxIdleConnsPerHost = maxIdle
	t.IdleConnTimeout = IdleConnTimeout
	return t
}

// defaultHTTP is the client of a Client without one of its own.
var defaultHTTP = &http.Client{Transport: NewTransport(0)}
