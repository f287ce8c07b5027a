package pluginhost

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
)

// redacted replaces a secret in what the host logs for a plugin.
const redacted = "[redacted]"

// redactor holds the values of one plugin's secret settings and removes
// them from every record the host logs for that plugin: the plugin's own
// stderr lines, what it logs through the host's services, and the host's
// messages about it. The values are set before the plugin is configured,
// so before it can know them.
type redactor struct {
	secrets atomic.Pointer[[]string]
}

// set replaces the secret values; empty ones are ignored.
func (r *redactor) set(values []string) {
	var keep []string
	for _, v := range values {
		if v != "" {
			keep = append(keep, v)
		}
	}
	// Longest first, so that a secret containing another is replaced whole.
	slices.SortFunc(keep, func(a, b string) int { return len(b) - len(a) })
	r.secrets.Store(&keep)
}

func (r *redactor) scrub(s string) string {
	p := r.secrets.Load()
	if p == nil {
		return s
	}
	for _, secret := range *p {
		if strings.Contains(s, secret) {
			s = strings.ReplaceAll(s, secret, redacted)
		}
	}
	return s
}

func (r *redactor) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		group := v.Group()
		out := make([]slog.Attr, len(group))
		for i, g := range group {
			out[i] = r.attr(g)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}
	case slog.KindString, slog.KindAny:
		s := v.String()
		if clean := r.scrub(s); clean != s {
			return slog.String(a.Key, clean)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// handler returns next with r applied to every message and attribute.
func (r *redactor) handler(next slog.Handler) slog.Handler {
	return &redactHandler{r: r, next: next}
}

type redactHandler struct {
	r    *redactor
	next slog.Handler
}

func (h *redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.scrub(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.r.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(as))
	for i, a := range as {
		clean[i] = h.r.attr(a)
	}
	return &redactHandler{r: h.r, next: h.next.WithAttrs(clean)}
}

func (h *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{r: h.r, next: h.next.WithGroup(name)}
}
