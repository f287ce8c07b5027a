package plugin

import (
	"context"
	"errors"
	"log/slog"
	"slices"
)

// AlgRSASHA256 is RSASSA-PKCS1-v1_5 over SHA-256: what the upstream, WeChat
// Pay v3 and Alipay's RSA2 sign with.
const AlgRSASHA256 = "RSA-SHA256"

// ErrInvalidSignature is wrapped by the error of Host.Verify when the
// signature does not verify.
var ErrInvalidSignature = errors.New("signature does not verify")

// Host is what the host offers a flow: cryptography with keys that never
// leave the host, by name, and its logger. A plugin receives it in
// Config.Host and calls it back over go-plugin's broker; a host implements
// it and passes it to Configure. The host decides which key names each
// flow may use (Config.HostKeys); a call with any other name fails with
// CodeInvalidRequest naming "key".
type Host interface {
	// Sign signs data with the private key named key, using algorithm
	// (e.g. AlgRSASHA256), and returns the raw signature.
	Sign(ctx context.Context, key, algorithm string, data []byte) ([]byte, error)
	// Verify checks signature over data with the public key named key.
	// It returns nil when the signature verifies and an error wrapping
	// ErrInvalidSignature when it does not.
	Verify(ctx context.Context, key, algorithm string, data, signature []byte) error
	// Log writes one record through the host's logger, under the
	// plugin's name. The host removes the values of the flow's secret
	// settings from what it logs.
	Log(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) error
}

// SpanHost is a Host that also takes its plugin's finished spans into the
// host's own trace export, so that a plugin need not export them itself
// (package hosttrace sends them from a plugin, and hosttrace.Receiver
// implements ExportSpans for a host). A host whose Host is a SpanHost
// tells the plugin so when it configures it; a plugin whose host does not
// drops its spans.
type SpanHost interface {
	Host
	// ExportSpans takes one batch of the plugin's finished spans: the
	// protobuf encoding of the contract's ExportSpansRequest
	// (paysidecar.flow.v2).
	ExportSpans(ctx context.Context, batch []byte) error
}

// noHost is the Host of a flow whose host offers no services.
type noHost struct{}

func (noHost) unsupported() error {
	return &Error{Code: CodeUnsupported, Message: "the host offers no services to this plugin"}
}

func (h noHost) Sign(context.Context, string, string, []byte) ([]byte, error) {
	return nil, h.unsupported()
}

func (h noHost) Verify(context.Context, string, string, []byte, []byte) error {
	return h.unsupported()
}

func (h noHost) Log(context.Context, slog.Level, string, ...slog.Attr) error {
	return h.unsupported()
}

// HostLogger returns a logger that writes through h.Log. Attributes in
// groups are flattened to "group.key"; values are sent as text, and a
// value that implements slog.LogValuer (such as Settings) is resolved
// first, so secrets it redacts stay redacted.
func HostLogger(h Host, level slog.Leveler) *slog.Logger {
	if level == nil {
		level = slog.LevelInfo
	}
	return slog.New(&hostHandler{host: h, level: level})
}

type hostHandler struct {
	host   Host
	level  slog.Leveler
	attrs  []slog.Attr
	prefix string
}

func (h *hostHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *hostHandler) Handle(ctx context.Context, r slog.Record) error {
	attrs := slices.Clone(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		attrs = appendFlat(attrs, h.prefix, a)
		return true
	})
	// A log line must not outlive its caller's patience, but a caller
	// whose context already ended still gets its line written.
	return h.host.Log(context.WithoutCancel(ctx), r.Level, r.Message, attrs...)
}

func (h *hostHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = slices.Clone(h.attrs)
	for _, a := range as {
		n.attrs = appendFlat(n.attrs, h.prefix, a)
	}
	return &n
}

func (h *hostHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.prefix = h.prefix + name + "."
	return &n
}

// appendFlat appends a with its groups flattened and its value resolved
// to text.
func appendFlat(dst []slog.Attr, prefix string, a slog.Attr) []slog.Attr {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return dst
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			dst = appendFlat(dst, p, g)
		}
		return dst
	}
	return append(dst, slog.String(prefix+a.Key, a.Value.String()))
}
