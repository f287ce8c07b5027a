package delivery_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/delivery"
)

// The example of the Standard Webhooks specification: an independent
// implementation must produce exactly this signature.
const (
	specSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTS     = 1614265330
	specBody   = `{"test": 2432232314}`
	specSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignMatchesSpecification(t *testing.T) {
	key, err := delivery.ParseSecret(specSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := delivery.Sign(key, specID, time.Unix(specTS, 0), []byte(specBody)); got != specSig {
		t.Fatalf("Sign = %s, want %s", got, specSig)
	}
}

func TestParseSecret(t *testing.T) {
	tests := []struct {
		name    string
		secret  string
		wantLen int
		wantErr bool
	}{
		{"whsec base64", specSecret, 24, false},
		{"raw string", "a-raw-secret-of-enough-bytes", 28, false},
		{"raw too short", "short", 0, true},
		{"whsec too short", "whsec_c2hvcnQ=", 0, true},
		{"whsec not base64", "whsec_not*base64!", 0, true},
		{"empty", "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := delivery.ParseSecret(tt.secret)
			if tt.wantErr {
				if !errors.Is(err, delivery.ErrBadSecret) {
					t.Fatalf("err = %v, want ErrBadSecret", err)
				}
				if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
					t.Errorf("error %q reveals the secret", err)
				}
				return
			}
			if err != nil || len(key) != tt.wantLen {
				t.Fatalf("ParseSecret = %d bytes, %v; want %d bytes", len(key), err, tt.wantLen)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(specTS, 0)
	headers := func(id, ts, sig string) http.Header {
		h := http.Header{}
		if id != "" {
			h.Set(delivery.HeaderID, id)
		}
		if ts != "" {
			h.Set(delivery.HeaderTimestamp, ts)
		}
		if sig != "" {
			h.Set(delivery.HeaderSignature, sig)
		}
		return h
	}
	const ts = "1614265330"
	tests := []struct {
		name    string
		secret  string
		h       http.Header
		body    string
		now     time.Time
		wantErr error
	}{
		{"valid", specSecret, headers(specID, ts, specSig), specBody, now, nil},
		{"valid among several", specSecret, headers(specID, ts, "v1,AAAA v2,xyz "+specSig), specBody, now, nil},
		{"within tolerance", specSecret, headers(specID, ts, specSig), specBody, now.Add(4 * time.Minute), nil},
		{"tampered body", specSecret, headers(specID, ts, specSig), `{"test": 2432232315}`, now, delivery.ErrNoMatchingSignature},
		{"other id", specSecret, headers("msg_other", ts, specSig), specBody, now, delivery.ErrNoMatchingSignature},
		{"wrong secret", "whsec_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", headers(specID, ts, specSig), specBody, now, delivery.ErrNoMatchingSignature},
		{"wrong version", specSecret, headers(specID, ts, "v2,"+strings.TrimPrefix(specSig, "v1,")), specBody, now, delivery.ErrNoMatchingSignature},
		{"too old", specSecret, headers(specID, ts, specSig), specBody, now.Add(6 * time.Minute), delivery.ErrTimestamp},
		{"from the future", specSecret, headers(specID, ts, specSig), specBody, now.Add(-6 * time.Minute), delivery.ErrTimestamp},
		{"bad timestamp", specSecret, headers(specID, "soon", specSig), specBody, now, delivery.ErrTimestamp},
		{"missing id", specSecret, headers("", ts, specSig), specBody, now, delivery.ErrMissingHeaders},
		{"missing signature", specSecret, headers(specID, ts, ""), specBody, now, delivery.ErrMissingHeaders},
		{"bad secret", "x", headers(specID, ts, specSig), specBody, now, delivery.ErrBadSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := delivery.VerifyAt(tt.secret, tt.h, []byte(tt.body), 0, tt.now)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("VerifyAt = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("VerifyAt = %v, want %v", err, tt.wantErr)
			}
		})
	}
	// Verify uses the real clock: a fresh signature verifies, the spec's
	// years-old one does not.
	key, _ := delivery.ParseSecret(specSecret)
	fresh := time.Now()
	h := headers("evt_1", strconvUnix(fresh), delivery.Sign(key, "evt_1", fresh, []byte("{}")))
	if err := delivery.Verify(specSecret, h, []byte("{}"), time.Minute); err != nil {
		t.Errorf("Verify fresh = %v", err)
	}
	if err := delivery.Verify(specSecret, headers(specID, ts, specSig), []byte(specBody), time.Minute); !errors.Is(err, delivery.ErrTimestamp) {
		t.Errorf("Verify stale = %v, want ErrTimestamp", err)
	}
}

func TestSchedule(t *testing.T) {
	s := delivery.Schedule{time.Second, 10 * time.Second, 5 * time.Second}
	tests := []struct {
		failed int
		r      float64
		want   time.Duration
		ok     bool
	}{
		{1, 0, 0, true},
		{1, 0.5, 500 * time.Millisecond, true},
		{1, 0.999999, 999999 * time.Microsecond, true},
		{2, 0, time.Second, true},
		{2, 0.5, 5500 * time.Millisecond, true},
		{3, 0.5, 5 * time.Second, true}, // a shrinking step has no jitter
		{4, 0.5, 0, false},
		{0, 0.5, 0, false},
	}
	for _, tt := range tests {
		got, ok := s.Delay(tt.failed, tt.r)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Delay(%d, %v) = %s, %v; want %s, %v", tt.failed, tt.r, got, ok, tt.want, tt.ok)
		}
	}
	lo, hi := delivery.Schedule(delivery.DefaultSchedule).Bounds()
	if lo < 24*time.Hour {
		t.Errorf("default schedule may give up after %s, want at least 24h", lo)
	}
	if lo != 31*time.Hour+52*time.Minute+35*time.Second || hi != 39*time.Hour+52*time.Minute+35*time.Second {
		t.Errorf("default bounds = %s..%s, as documented 31h52m35s..39h52m35s", lo, hi)
	}
	for _, bad := range []delivery.Schedule{nil, {time.Second, 0}, {-time.Second}} {
		if bad.Validate() == nil {
			t.Errorf("Validate(%v) = nil", bad)
		}
	}
}
