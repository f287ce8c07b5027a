package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/store"
)

// IdempotencyHeader is the request header that makes a POST safe to retry.
const IdempotencyHeader = "Idempotency-Key"

// ReplayedHeader marks an answer replayed from an earlier request with the
// same idempotency key.
const ReplayedHeader = "Idempotent-Replayed"

// idemLock bounds how long an in-progress key blocks its twins if the
// request that holds it never finishes (the process died).
const idemLock = 2 * time.Minute

// handlerFunc is the shape of the API's POST handlers: they get the body
// already read and bounded, and return the status and value to answer.
type handlerFunc func(ctx context.Context, r *http.Request, body []byte) (int, any, error)

// keepAnswer reports whether an answer is kept for its idempotency key.
// Successes and the upstream's definitive refusals are kept; the caller's
// own mistakes, transient trouble and provisional answers (an order placed
// whose pay parameters are still to come) are not, so that a corrected or
// later retry with the same key can still succeed.
func keepAnswer(status int, v any, err error) bool {
	if err == nil {
		_, interim := v.(provisional)
		return status < 300 && !interim
	}
	var e *Error
	return errors.As(err, &e) && e.Code == CodeUpstreamRejected
}

// requestHash fingerprints a request body by its canonical JSON, so that
// white space and key order do not make two equal requests differ.
func requestHash(body []byte) string {
	hash, _ := fingerprint(body)
	return hash
}

// fingerprint returns requestHash of body and the top-level members it
// names (see given), from one decoding of it.
func fingerprint(body []byte) (string, map[string]bool) {
	var names map[string]bool
	if m, err := nkp.DecodeObject(body); err == nil {
		names = make(map[string]bool, len(m))
		for k := range m {
			names[k] = true
		}
		if c, err := nkp.Canonicalize(m); err == nil {
			body = c
		}
	}
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:]), names
}

// idempotent wraps h with Idempotency-Key semantics: the first answer is
// replayed for the key's lifetime, the same key with another body is
// refused with 422, and a twin that arrives while the first is running is
// refused with 409. A key is scoped to the method and path, so the same key
// on another payment is another request.
func (s *Server) idempotent(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		scope := r.Method + " " + r.URL.Path
		body, err := readBody(r, s.cfg.MaxBodyBytes)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		key := r.Header.Get(IdempotencyHeader)
		if key == "" {
			status, v, err := h(r.Context(), r, body)
			s.answer(w, r, status, v, err)
			return
		}
		if len(key) > 255 || !printable(key) {
			s.fail(w, r, badRequest(CodeIdempotencyKeyInvalid, IdempotencyHeader, "the idempotency key must be 1 to 255 printable ASCII characters"))
			return
		}
		ctx := r.Context()
		now := s.now()
		rec, err := s.store.BeginIdempotency(ctx, scope, key, requestHash(body), now, idemLock)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		switch rec.State {
		case store.IdemInProgress:
			s.fail(w, r, errorf(http.StatusConflict, CodeIdempotencyInUse, IdempotencyHeader, "a request with this idempotency key is still being processed; retry later"))
			return
		case store.IdemMismatch:
			s.fail(w, r, errorf(http.StatusUnprocessableEntity, CodeIdempotencyMismatch, IdempotencyHeader, "this idempotency key was used with a different request body"))
			return
		case store.IdemDone:
			s.metrics.idempotentReplays.Inc()
			w.Header().Set(ReplayedHeader, "true")
			writeRaw(w, rec.StatusCode, rec.Body)
			return
		}
		status, v, herr := h(ctx, r, body)
		// The outcome is recorded even when the caller has gone away.
		bg := context.WithoutCancel(ctx)
		var raw []byte
		if herr != nil {
			status, raw = errorBody(herr)
		} else {
			raw = mustJSON(unwrap(w, v))
		}
		if keepAnswer(status, v, herr) {
			if err := s.store.FinishIdempotency(bg, scope, key, status, raw, now.Add(s.cfg.IdempotencyTTL)); err != nil {
				s.log.ErrorContext(ctx, "store idempotent answer", "scope", scope, "err", err)
			}
		} else if err := s.store.ReleaseIdempotency(bg, scope, key); err != nil {
			s.log.ErrorContext(ctx, "release idempotency key", "scope", scope, "err", err)
		}
		if herr != nil {
			s.logError(r, herr)
		}
		writeRaw(w, status, raw)
	}
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
