package nkp

import (
	"context"
	"crypto/rsa"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestUpstreamKeysDuringASwitchOver(t *testing.T) {
	cur, next := upstreamKey(t), merchantKey(t)
	_, other, err := GenerateKeyPair(2048)
	if err != nil {
		t.Fatal(err)
	}
	data := map[string]any{"req_seq_id": "s1", "resp_code": "00000000", "trans_amt": "0.01"}
	both := UpstreamKeys{Current: &cur.PublicKey, Next: &next.PublicKey}
	only := UpstreamKeys{Current: &cur.PublicKey}
	tests := []struct {
		name   string
		keys   UpstreamKeys
		signer *rsa.PrivateKey
		want   string
	}{
		{"current key, both configured", both, cur, KeyCurrent},
		{"next key, both configured", both, next, KeyNext},
		{"another key, both configured", both, other, ""},
		{"current key, one configured", only, cur, KeyCurrent},
		{"next key, one configured", only, next, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := SignNotification(tt.signer, "00000000", "ok", data)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tt.keys.VerifyNotification(n)
			if got != tt.want || (tt.want == "") != errors.Is(err, ErrBadSignature) {
				t.Errorf("notification: key %q, %v; want %q", got, err, tt.want)
			}
			body, err := EncodeResponse(tt.signer, data)
			if err != nil {
				t.Fatal(err)
			}
			_, got, err = tt.keys.VerifyResponse(body)
			if got != tt.want || (tt.want == "") != errors.Is(err, ErrBadSignature) {
				t.Errorf("answer: key %q, %v; want %q", got, err, tt.want)
			}
			// The re-canonicalizing fallback tries each key too.
			spaced := strings.Replace(string(body), `"data":{`, `"data": {`, 1)
			spaced = strings.Replace(spaced, `","`, `", "`, -1)
			_, got, err = tt.keys.VerifyResponse([]byte(spaced))
			if got != tt.want || (tt.want == "") != errors.Is(err, ErrBadSignature) {
				t.Errorf("re-spaced answer: key %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := (UpstreamKeys{Next: &next.PublicKey}).Verify([]byte("x"), "AAAA"); !errors.Is(err, ErrBadKey) {
		t.Errorf("no current key: %v, want ErrBadKey", err)
	}
}

func TestClientVerifiesWithTheNextKey(t *testing.T) {
	u := newUpstream(t, nil)
	u.handler = func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
		u.reply(w, map[string]any{"resp_code": "00000000", "trans_stat": "S"})
	}
	_, old, err := GenerateKeyPair(2048)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	c := &Client{BaseURL: u.srv.URL, SysID: "s", ProductID: "p", Profile: ProfileNKP, Key: merchantKey(t),
		UpstreamKey: &old.PublicKey, UpstreamNextKey: upstreamPub(t), Verified: func(k string) { seen = append(seen, k) }}
	if _, err := c.Call(context.Background(), PathPaymentQuery, map[string]any{"huifu_id": "h"}); err != nil {
		t.Fatalf("answer signed with the next key: %v", err)
	}
	if len(seen) != 1 || seen[0] != KeyNext {
		t.Errorf("verified with %v, want [next]", seen)
	}
	c.UpstreamNextKey = nil
	_, err = c.Call(context.Background(), PathPaymentQuery, map[string]any{"huifu_id": "h"})
	var ce *CallError
	if !errors.As(err, &ce) || ce.Kind != KindBadSignature {
		t.Errorf("without the next key: %v, want a bad signature", err)
	}
}

func TestKeyIDShowsNoKey(t *testing.T) {
	pub := upstreamPub(t)
	id := KeyID(pub)
	b64, err := PublicKeyBase64(pub)
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 16 || strings.Contains(b64, id) || id != KeyID(upstreamPub(t)) || id == KeyID(merchantPub(t)) {
		t.Errorf("KeyID = %q", id)
	}
	if KeyID(nil) != "" {
		t.Error("KeyID(nil) is not empty")
	}
}
