package nkp

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"
)

// fuzzSeeds are inputs worth starting from: the golden data and the
// corners of the canonical string.
func fuzzSeeds() [][]byte {
	seeds := [][]byte{
		[]byte(`{}`),
		[]byte(`{"a":null,"b":"","c":{},"d":[],"e":0}`),
		[]byte(`{"a":"\u001f\u001F\u2028\ud800\ud83c\udf75","b":"\/<>&"}`),
		[]byte("{\"a\":\"\xff\xc3\",\"\xfe\":1}"),
		[]byte(`{"n":[0.00,1.10,-0,1e5,1E+2,12345678901234567890]}`),
		[]byte(`{"a":{"z":1,"a":[{"y":"","x":null}]},"a":2}`),
		[]byte(`{"a":1}]`),
		[]byte(`{"a":1} `),
	}
	for _, in := range goldenInputs {
		seeds = append(seeds, []byte(in.data))
	}
	return seeds
}

// dropEmpty removes the first-level values the canonical string leaves out.
func dropEmpty(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch t := v.(type) {
		case nil:
			continue
		case string:
			if t == "" {
				continue
			}
		case map[string]any:
			if len(t) == 0 {
				continue
			}
		case []any:
			if len(t) == 0 {
				continue
			}
		}
		out[k] = v
	}
	return out
}

func FuzzCanonicalizeJSON(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		canon, err := CanonicalizeJSON(data)
		if err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		if !json.Valid(canon) || !utf8.Valid(canon) {
			t.Fatalf("canonical string %q of %q is not valid UTF-8 JSON", canon, data)
		}
		again, err := CanonicalizeJSON(canon)
		if err != nil {
			t.Fatalf("canonical string %q does not canonicalize: %v", canon, err)
		}
		if !bytes.Equal(again, canon) {
			t.Fatalf("not idempotent: %q gives %q, then %q", data, canon, again)
		}
		// The canonical string means what the input meant, less the empty
		// first-level values.
		in, err := DecodeObject(data)
		if err != nil {
			t.Fatal(err)
		}
		out, err := DecodeObject(canon)
		if err != nil {
			t.Fatal(err)
		}
		if want := dropEmpty(in); !reflect.DeepEqual(out, want) {
			t.Fatalf("canonical string %q means %v, want %v", canon, out, want)
		}
	})
}

func FuzzVerifyTamper(f *testing.F) {
	key := merchantKey(f)
	pub := merchantPub(f)
	for i, s := range fuzzSeeds() {
		f.Add(s, uint(i*7), byte(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, pos uint, b byte) {
		// Arbitrary input never panics the verifiers.
		_, _ = VerifyResponse(pub, data)
		if r, _, err := DecodeRequest(data); err == nil {
			_ = VerifyRequest(pub, r)
		}
		_ = Notification{RespData: string(data), Sign: string(data)}.Verify(pub)

		canon, err := CanonicalizeJSON(data)
		if err != nil {
			return
		}
		sig, err := Sign(key, canon)
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(pub, canon, sig); err != nil {
			t.Fatalf("fresh signature does not verify: %v", err)
		}
		body := func(d []byte) []byte {
			return []byte(`{"data":` + string(d) + `,"sign":"` + sig + `"}`)
		}
		if got, err := VerifyResponse(pub, body(canon)); err != nil || !bytes.Equal(got, canon) {
			t.Fatalf("VerifyResponse of the signed data = %q, %v", got, err)
		}

		// Change one byte of the signed data.
		i := int(pos % uint(len(canon)))
		tampered := bytes.Clone(canon)
		if b == tampered[i] {
			b ^= 0x01
		}
		tampered[i] = b
		if err := Verify(pub, tampered, sig); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("signature still verifies after byte %d of %q became %q: %v", i, canon, b, err)
		}
		if err := (Notification{Sign: sig, RespData: string(tampered)}).Verify(pub); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("notification still verifies after byte %d of %q became %q: %v", i, canon, b, err)
		}
		// The re-canonicalizing verifiers may accept a change only when it
		// does not change the meaning, such as the case of a hex digit in
		// a \u escape.
		same := func() bool {
			c, err := CanonicalizeJSON(tampered)
			return err == nil && bytes.Equal(c, canon)
		}
		if _, err := VerifyResponse(pub, body(tampered)); err == nil && !same() {
			t.Fatalf("VerifyResponse accepts %q, signed as %q", tampered, canon)
		}
		if err := VerifyRequest(pub, Request{Data: tampered, Sign: sig}); err == nil && !same() {
			t.Fatalf("VerifyRequest accepts %q, signed as %q", tampered, canon)
		}

		// Change one character of the signature.
		j := int(pos % uint(len(sig)))
		badSig := []byte(sig)
		c := b
		if c == badSig[j] {
			c ^= 0x01
		}
		badSig[j] = c
		if err := Verify(pub, canon, string(badSig)); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("signature %q still verifies after character %d became %q: %v", badSig, j, c, err)
		}
	})
}
