package plugintest

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/paysidecar/paysidecar/sdk/plugin"
)

// Host is a plugin.Host for tests: it signs and verifies with RSA keys it
// holds by name (plugin.AlgRSASHA256), grants every key it holds, and
// records what the flow logs through it. Its methods are safe for
// concurrent use.
type Host struct {
	mu      sync.Mutex
	private map[string]*rsa.PrivateKey
	public  map[string]*rsa.PublicKey
	records []Record
}

// Record is one record a flow logged through the Host.
type Record struct {
	Level   slog.Level
	Message string
	Attrs   map[string]string
}

var _ plugin.Host = (*Host)(nil)

// NewHost returns a Host without keys.
func NewHost() *Host {
	return &Host{private: map[string]*rsa.PrivateKey{}, public: map[string]*rsa.PublicKey{}}
}

// AddKey makes key available under name for signing, and its public half
// for verifying.
func (h *Host) AddKey(name string, key *rsa.PrivateKey) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.private[name] = key
	h.public[name] = &key.PublicKey
}

// AddPublicKey makes key available under name for verifying only.
func (h *Host) AddPublicKey(name string, key *rsa.PublicKey) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.public[name] = key
}

// Keys returns the names of the keys h holds, sorted: what a test passes
// as Config.HostKeys.
func (h *Host) Keys() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var names []string
	for n := range h.public {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Records returns what the flow logged so far.
func (h *Host) Records() []Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.records)
}

func unknownKey(name string) error {
	return &plugin.Error{Code: plugin.CodeInvalidRequest, Field: "key", Message: fmt.Sprintf("no key %q", name)}
}

func checkAlgorithm(alg string) error {
	if alg != plugin.AlgRSASHA256 {
		return &plugin.Error{Code: plugin.CodeInvalidRequest, Field: "algorithm", Message: fmt.Sprintf("unsupported algorithm %q", alg)}
	}
	return nil
}

// Sign implements plugin.Host.
func (h *Host) Sign(_ context.Context, key, algorithm string, data []byte) ([]byte, error) {
	if err := checkAlgorithm(algorithm); err != nil {
		return nil, err
	}
	h.mu.Lock()
	k := h.private[key]
	h.mu.Unlock()
	if k == nil {
		return nil, unknownKey(key)
	}
	sum := sha256.Sum256(data)
	return rsa.SignPKCS1v15(nil, k, crypto.SHA256, sum[:])
}

// Verify implements plugin.Host.
func (h *Host) Verify(_ context.Context, key, algorithm string, data, signature []byte) error {
	if err := checkAlgorithm(algorithm); err != nil {
		return err
	}
	h.mu.Lock()
	k := h.public[key]
	h.mu.Unlock()
	if k == nil {
		return unknownKey(key)
	}
	sum := sha256.Sum256(data)
	if err := rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], signature); err != nil {
		return fmt.Errorf("key %s: %w", key, plugin.ErrInvalidSignature)
	}
	return nil
}

// Log implements plugin.Host and records the record.
func (h *Host) Log(_ context.Context, level slog.Level, msg string, attrs ...slog.Attr) error {
	r := Record{Level: level, Message: msg, Attrs: map[string]string{}}
	for _, a := range attrs {
		r.Attrs[a.Key] = a.Value.String()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
	return nil
}
