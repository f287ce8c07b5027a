package sandbox

import (
	"context"
	"crypto/rsa"
	"fmt"
	"net/http"
)

// ControlSigningKey chooses the key the sandbox signs answers and
// notifications with, to rehearse the upstream's key switch-over.
const ControlSigningKey = "/_sandbox/signing-key"

// Signing keys SigningKey names.
const (
	// SigningKeyCurrent is Config.UpstreamKey, the key signed with from
	// the start.
	SigningKeyCurrent = "current"
	// SigningKeyNext is Config.NextUpstreamKey.
	SigningKeyNext = "next"
)

// SigningKey names the key the sandbox signs with.
type SigningKey struct {
	// Key is SigningKeyCurrent or SigningKeyNext.
	Key string `json:"key"`
}

// signingKey returns the key answers and notifications are signed with
// now.
func (s *Server) signingKey() *rsa.PrivateKey {
	if s.signNext.Load() {
		return s.cfg.NextUpstreamKey
	}
	return s.cfg.UpstreamKey
}

func (s *Server) signingKeyRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+ControlSigningKey, func(w http.ResponseWriter, _ *http.Request) {
		k := SigningKey{Key: SigningKeyCurrent}
		if s.signNext.Load() {
			k.Key = SigningKeyNext
		}
		writeJSON(w, http.StatusOK, k)
	})
	mux.HandleFunc("PUT "+ControlSigningKey, func(w http.ResponseWriter, r *http.Request) {
		var k SigningKey
		if !decodeControl(w, r, &k) {
			return
		}
		switch k.Key {
		case SigningKeyCurrent, SigningKeyNext:
		default:
			controlFail(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("key must be %q or %q", SigningKeyCurrent, SigningKeyNext))
			return
		}
		s.signNext.Store(k.Key == SigningKeyNext)
		s.log.Info("sandbox signs with another upstream key", "key", k.Key)
		writeJSON(w, http.StatusOK, k)
	})
}

// SetSigningKey makes the sandbox sign answers and notifications with the
// named key: SigningKeyCurrent or SigningKeyNext.
func (c *ControlClient) SetSigningKey(ctx context.Context, key string) error {
	return c.do(ctx, http.MethodPut, ControlSigningKey, nil, SigningKey{Key: key}, nil)
}
