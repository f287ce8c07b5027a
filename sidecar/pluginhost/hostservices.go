package pluginhost

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/plugin/hosttrace"
)

// Key is a key the host keeps and lends to flows by name through its
// services: a flow may sign with Private and verify with Public (or the
// public half of Private) without ever seeing either.
type Key struct {
	Private *rsa.PrivateKey
	Public  *rsa.PublicKey
}

func (k Key) public() *rsa.PublicKey {
	if k.Public != nil {
		return k.Public
	}
	if k.Private != nil {
		return &k.Private.PublicKey
	}
	return nil
}

// hostServices is the plugin.Host the Manager offers one plugin: the keys
// its configuration grants it, and the host's logger under its name.
type hostServices struct {
	name    string
	keys    map[string]Key
	granted []string
	logger  *slog.Logger
}

var _ plugin.Host = (*hostServices)(nil)

// key returns the granted key named name, or the error a flow gets for any
// other name.
func (h *hostServices) key(name, algorithm string) (Key, error) {
	if algorithm != plugin.AlgRSASHA256 {
		return Key{}, plugin.Errorf(plugin.CodeInvalidRequest, "algorithm", "the host signs and verifies with %s only, not %q", plugin.AlgRSASHA256, algorithm)
	}
	k, ok := h.keys[name]
	if !ok || !slices.Contains(h.granted, name) {
		return Key{}, plugin.Errorf(plugin.CodeInvalidRequest, "key", "key %q is not granted to flow %s (granted: %s)", name, h.name, strings.Join(h.granted, ", "))
	}
	return k, nil
}

// Sign implements plugin.Host with RSASSA-PKCS1-v1_5 over SHA-256.
func (h *hostServices) Sign(ctx context.Context, key, algorithm string, data []byte) ([]byte, error) {
	k, err := h.key(key, algorithm)
	if err != nil {
		return nil, err
	}
	if k.Private == nil {
		return nil, plugin.Errorf(plugin.CodeInvalidRequest, "key", "key %q is a public key and cannot sign", key)
	}
	sum := sha256.Sum256(data)
	sig, err := rsa.SignPKCS1v15(nil, k.Private, crypto.SHA256, sum[:])
	if err != nil {
		return nil, fmt.Errorf("sign with key %s: %w", key, err)
	}
	h.logger.DebugContext(ctx, "host signed for the plugin", "key", key, "bytes", len(data))
	return sig, nil
}

// Verify implements plugin.Host.
func (h *hostServices) Verify(_ context.Context, key, algorithm string, data, signature []byte) error {
	k, err := h.key(key, algorithm)
	if err != nil {
		return err
	}
	pub := k.public()
	if pub == nil {
		return plugin.Errorf(plugin.CodeInvalidRequest, "key", "key %q has no public key", key)
	}
	sum := sha256.Sum256(data)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], signature); err != nil {
		return fmt.Errorf("key %s: %w", key, plugin.ErrInvalidSignature)
	}
	return nil
}

// Log implements plugin.Host: the record goes to the host's logger under
// the plugin's name, its secrets redacted. A level outside slog's range is
// clamped to it, so a plugin cannot log above error.
func (h *hostServices) Log(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) error {
	level = min(max(level, levelTrace), slog.LevelError)
	h.logger.LogAttrs(ctx, level, msg, attrs...)
	return nil
}

// spanHost is the plugin.Host of a Manager that takes its plugins' spans
// (WithPluginSpans): the host's services and the receiver of the spans.
type spanHost struct {
	*hostServices
	*hosttrace.Receiver
}

var _ plugin.SpanHost = spanHost{}
