package nkp

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// ErrBadSignature is wrapped by every error that reports a signature which
// does not verify, is missing, or is not valid base64.
var ErrBadSignature = errors.New("bad signature")

// ErrBadKey is wrapped by every error that rejects key material. Such errors
// never contain the key itself.
var ErrBadKey = errors.New("bad key")

// ParsePrivateKey reads an RSA private key as the console hands it out
// (base64 of PKCS#8 DER, without PEM lines) or as PEM ("PRIVATE KEY" or
// "RSA PRIVATE KEY"). Whitespace and line breaks inside the base64 form are
// ignored.
func ParsePrivateKey(s string) (*rsa.PrivateKey, error) {
	der, err := keyDER(s, "PRIVATE KEY", "RSA PRIVATE KEY")
	if err != nil {
		return nil, fmt.Errorf("%w: private key: %v", ErrBadKey, err)
	}
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%w: private key is %T, not RSA", ErrBadKey, k)
		}
		return rk, nil
	}
	if rk, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return rk, nil
	}
	return nil, fmt.Errorf("%w: private key is neither PKCS#8 nor PKCS#1 RSA DER", ErrBadKey)
}

// ParsePublicKey reads an RSA public key as the console hands it out (base64
// of X.509 SubjectPublicKeyInfo DER) or as PEM ("PUBLIC KEY" or
// "RSA PUBLIC KEY").
func ParsePublicKey(s string) (*rsa.PublicKey, error) {
	der, err := keyDER(s, "PUBLIC KEY", "RSA PUBLIC KEY")
	if err != nil {
		return nil, fmt.Errorf("%w: public key: %v", ErrBadKey, err)
	}
	if k, err := x509.ParsePKIXPublicKey(der); err == nil {
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: public key is %T, not RSA", ErrBadKey, k)
		}
		return rk, nil
	}
	if rk, err := x509.ParsePKCS1PublicKey(der); err == nil {
		return rk, nil
	}
	return nil, fmt.Errorf("%w: public key is neither X.509 SubjectPublicKeyInfo nor PKCS#1 RSA DER", ErrBadKey)
}

func keyDER(s string, pemTypes ...string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty")
	}
	if strings.HasPrefix(s, "-----BEGIN") {
		block, _ := pem.Decode([]byte(s))
		if block == nil {
			return nil, errors.New("malformed PEM")
		}
		for _, t := range pemTypes {
			if block.Type == t {
				return block.Bytes, nil
			}
		}
		return nil, fmt.Errorf("unexpected PEM block type %q", block.Type)
	}
	compact := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\n', '\r', '\t':
			return -1
		}
		return r
	}, s)
	der, err := base64.StdEncoding.DecodeString(compact)
	if err != nil {
		return nil, errors.New("not base64 DER")
	}
	return der, nil
}

// Sign returns the standard base64 RSA PKCS#1 v1.5 signature over the
// SHA-256 digest of msg. The scheme is deterministic: the same key and
// message always give the same signature.
func Sign(key *rsa.PrivateKey, msg []byte) (string, error) {
	if key == nil {
		return "", fmt.Errorf("%w: no private key", ErrBadKey)
	}
	sum := sha256.Sum256(msg)
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// Verify checks a standard base64 RSA PKCS#1 v1.5 SHA-256 signature over
// msg. Any failure wraps ErrBadSignature.
func Verify(pub *rsa.PublicKey, msg []byte, sig string) error {
	if pub == nil {
		return fmt.Errorf("%w: no public key", ErrBadKey)
	}
	if sig == "" {
		return fmt.Errorf("%w: missing", ErrBadSignature)
	}
	// Strict decoding refuses non-zero padding bits, so that no second
	// spelling of a valid signature verifies.
	raw, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(sig))
	if err != nil {
		return fmt.Errorf("%w: not base64", ErrBadSignature)
	}
	sum := sha256.Sum256(msg)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], raw); err != nil {
		return fmt.Errorf("%w: does not verify", ErrBadSignature)
	}
	return nil
}

// KeyPair is an RSA key pair in the four forms paysidecar reads and writes.
type KeyPair struct {
	// PrivateBase64 is the PKCS#8 DER private key in standard base64, the
	// form the console hands out.
	PrivateBase64 string
	// PublicBase64 is the X.509 SubjectPublicKeyInfo DER public key in
	// standard base64.
	PublicBase64 string
	// PrivatePEM is the PKCS#8 private key as a "PRIVATE KEY" PEM block.
	PrivatePEM string
	// PublicPEM is the public key as a "PUBLIC KEY" PEM block.
	PublicPEM string
}

// GenerateKeyPair creates a new RSA key pair of the given size in bits
// (2048 when bits is zero).
func GenerateKeyPair(bits int) (KeyPair, *rsa.PrivateKey, error) {
	if bits == 0 {
		bits = 2048
	}
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return KeyPair{}, nil, fmt.Errorf("generate RSA key: %w", err)
	}
	kp, err := EncodeKeyPair(key)
	return kp, key, err
}

// EncodeKeyPair writes key in the four forms of KeyPair.
func EncodeKeyPair(key *rsa.PrivateKey) (KeyPair, error) {
	priv, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return KeyPair{}, fmt.Errorf("marshal private key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return KeyPair{}, fmt.Errorf("marshal public key: %w", err)
	}
	return KeyPair{
		PrivateBase64: base64.StdEncoding.EncodeToString(priv),
		PublicBase64:  base64.StdEncoding.EncodeToString(pub),
		PrivatePEM:    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv})),
		PublicPEM:     string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})),
	}, nil
}

// PublicKeyBase64 returns pub as standard base64 X.509 SubjectPublicKeyInfo
// DER.
func PublicKeyBase64(pub *rsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("marshal public key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(der), nil
}
