package delivery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Headers of a Standard Webhooks delivery.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix marks a secret written the Standard Webhooks way:
// "whsec_" followed by the standard base64 of the key bytes.
const SecretPrefix = "whsec_"

// MinSecretBytes is the shortest key ParseSecret accepts.
const MinSecretBytes = 16

// DefaultTolerance is how far a webhook-timestamp may be from the
// receiver's clock when Verify is given no tolerance.
const DefaultTolerance = 5 * time.Minute

// Errors returned by ParseSecret and Verify. They never contain the secret.
var (
	// ErrBadSecret means the configured secret cannot be used.
	ErrBadSecret = errors.New("bad webhook secret")
	// ErrMissingHeaders means a webhook-* header is absent.
	ErrMissingHeaders = errors.New("missing webhook headers")
	// ErrTimestamp means webhook-timestamp is malformed or outside the
	// tolerance.
	ErrTimestamp = errors.New("webhook timestamp out of tolerance")
	// ErrNoMatchingSignature means no v1 signature in webhook-signature
	// matches the body.
	ErrNoMatchingSignature = errors.New("no matching webhook signature")
)

// ParseSecret returns the HMAC key of a configured secret. A secret that
// starts with "whsec_" is the standard base64 of the key (the form Standard
// Webhooks libraries generate and accept); any other string is used as raw
// key bytes. Either way the key must have at least MinSecretBytes bytes.
func ParseSecret(secret string) ([]byte, error) {
	var key []byte
	if rest, ok := strings.CutPrefix(secret, SecretPrefix); ok {
		b, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return nil, fmt.Errorf("%w: the part after %q is not standard base64", ErrBadSecret, SecretPrefix)
		}
		key = b
	} else {
		key = []byte(secret)
	}
	if len(key) < MinSecretBytes {
		return nil, fmt.Errorf("%w: key has %d bytes, want at least %d", ErrBadSecret, len(key), MinSecretBytes)
	}
	return key, nil
}

// Sign returns the webhook-signature value for one delivery:
// "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)), the
// timestamp in unix seconds.
func Sign(key []byte, id string, timestamp time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, id, strconv.FormatInt(timestamp.Unix(), 10), body))
}

func mac(key []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a delivery the way a receiving application should: the
// three webhook-* headers are present, webhook-timestamp is within
// tolerance of the current time (DefaultTolerance when tolerance is zero or
// less), and one of the space-separated "v1,<base64>" signatures matches the
// body under secret (configured as for ParseSecret). It is meant for
// applications written in Go and for tests.
func Verify(secret string, h http.Header, body []byte, tolerance time.Duration) error {
	return VerifyAt(secret, h, body, tolerance, time.Now())
}

// VerifyAt is Verify against the given current time.
func VerifyAt(secret string, h http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	key, err := ParseSecret(secret)
	if err != nil {
		return err
	}
	id, ts, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || ts == "" || sigs == "" {
		return ErrMissingHeaders
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q is not unix seconds", ErrTimestamp, ts)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: %s away from now", ErrTimestamp, d.Round(time.Second))
	}
	want := mac(key, id, ts, body)
	for _, s := range strings.Fields(sigs) {
		version, sig, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrNoMatchingSignature
}
