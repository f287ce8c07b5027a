package nkp

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// Names of the upstream public keys, as UpstreamKeys reports which one
// verified; they are also the values of the key label in metrics.
const (
	KeyCurrent = "current"
	KeyNext    = "next"
)

// UpstreamKeys are the upstream's public keys that verify its answers and
// notifications: Current and, while the upstream switches to a new key,
// Next as well. Current is tried first. Once nothing verifies with Current
// any more, Next becomes Current and Next is left empty.
type UpstreamKeys struct {
	Current *rsa.PublicKey
	Next    *rsa.PublicKey
}

func (k UpstreamKeys) each(try func(*rsa.PublicKey) error) (string, error) {
	err := try(k.Current)
	if err == nil {
		return KeyCurrent, nil
	}
	if k.Next != nil && !errors.Is(err, ErrBadKey) {
		if err2 := try(k.Next); err2 == nil {
			return KeyNext, nil
		}
	}
	return "", err
}

// Verify checks sig over msg with each key and returns the name of the
// one that verified. Any failure wraps ErrBadSignature (ErrBadKey when
// there is no current key).
func (k UpstreamKeys) Verify(msg []byte, sig string) (string, error) {
	return k.each(func(pub *rsa.PublicKey) error { return Verify(pub, msg, sig) })
}

// VerifyResponse is the package's VerifyResponse with each key: the raw
// bytes of data first with every key, and only then the re-canonicalized
// data. It also returns the name of the key that verified.
func (k UpstreamKeys) VerifyResponse(body []byte) (json.RawMessage, string, error) {
	var r Response
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, "", fmt.Errorf("decode response envelope: %w", err)
	}
	if len(r.Data) == 0 || string(r.Data) == "null" {
		return nil, "", fmt.Errorf("decode response envelope: missing data")
	}
	if r.Sign == "" {
		return r.Data, "", fmt.Errorf("%w: response is unsigned", ErrBadSignature)
	}
	if name, err := k.Verify(r.Data, r.Sign); err == nil {
		return r.Data, name, nil
	} else if errors.Is(err, ErrBadKey) {
		return r.Data, "", err
	}
	canon, err := CanonicalizeJSON(r.Data)
	if err != nil {
		return r.Data, "", fmt.Errorf("%w: response data is not a JSON object", ErrBadSignature)
	}
	name, err := k.Verify(canon, r.Sign)
	if err != nil {
		return r.Data, "", fmt.Errorf("response: %w", err)
	}
	return r.Data, name, nil
}

// VerifyNotification checks the signature over n's raw resp_data with each
// key and returns the name of the one that verified.
func (k UpstreamKeys) VerifyNotification(n Notification) (string, error) {
	name, err := k.Verify([]byte(n.RespData), n.Sign)
	if err != nil {
		return "", fmt.Errorf("notification: %w", err)
	}
	return name, nil
}

// KeyID names a public key without showing it: the first 16 hex digits of
// the SHA-256 of its X.509 SubjectPublicKeyInfo DER, for logs that say
// which key is configured. It is empty for a nil key.
func KeyID(pub *rsa.PublicKey) string {
	if pub == nil {
		return ""
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:8])
}
