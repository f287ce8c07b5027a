// Package hostlink hands a plugin process's connection to its host's span
// service from where it is made, the plugin's server when the host
// configures the plugin, to package hosttrace's exporter, which Serve sets
// up before that.
package hostlink

import (
	"context"
	"sync/atomic"

	"github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv2"
)

// Link is the host's span service of one plugin process, once the host
// has configured the plugin and said it takes spans. Its methods are safe
// for concurrent use.
type Link struct {
	spans atomic.Pointer[flowv2.HostServiceClient]
}

// Set makes rpc the host's span service; nil means the host takes no
// spans (not yet configured, a host that exports none, or gone).
func (l *Link) Set(rpc flowv2.HostServiceClient) {
	if rpc == nil {
		l.spans.Store(nil)
		return
	}
	l.spans.Store(&rpc)
}

// Spans returns the host's span service, or nil when the host takes no
// spans now.
func (l *Link) Spans() flowv2.HostServiceClient {
	if p := l.spans.Load(); p != nil {
		return *p
	}
	return nil
}

type ctxKey struct{}

// NewContext returns ctx carrying l, for the tracing setup Serve calls.
func NewContext(ctx context.Context, l *Link) context.Context {
	return context.WithValue(ctx, ctxKey{}, l)
}

// FromContext returns the Link ctx carries, or nil.
func FromContext(ctx context.Context) *Link {
	l, _ := ctx.Value(ctxKey{}).(*Link)
	return l
}
