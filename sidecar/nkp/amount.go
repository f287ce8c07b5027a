package nkp

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Fen is an amount of money in fen, the smallest unit of the renminbi.
// Inside paysidecar every amount is a Fen; the upstream's "0.10" yuan
// strings exist only on the wire, and the conversion between the two
// happens here and nowhere else.
type Fen int64

// ErrBadAmount is wrapped by every error that rejects an amount.
var ErrBadAmount = errors.New("bad amount")

// MaxFen is the largest amount the conversion accepts: a generous bound that
// keeps every value exactly representable and far from integer overflow.
const MaxFen Fen = 1_000_000_000_000_00 // one trillion yuan

// Yuan formats f as the upstream's yuan string with exactly two decimals,
// for example Fen(10).Yuan() == "0.10" and Fen(12345).Yuan() == "123.45".
// Negative amounts are formatted with a leading minus sign; callers that send
// amounts upstream validate positivity first.
func (f Fen) Yuan() string {
	sign := ""
	v := int64(f)
	if v < 0 {
		sign = "-"
		if v == math.MinInt64 {
			// Cannot be negated; unreachable for validated amounts.
			return "-92233720368547758.08"
		}
		v = -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}

// String returns the yuan form of f; it makes Fen print well in logs.
func (f Fen) String() string { return f.Yuan() }

// ParseYuan converts a yuan string such as "0.10", "12", "12.3" or "12.30"
// into fen. It refuses anything that is not exactly representable in fen:
// more than two decimals, exponents, signs other than a leading minus,
// spaces, empty strings, and values beyond MaxFen.
func ParseYuan(s string) (Fen, error) {
	orig := s
	if s == "" {
		return 0, fmt.Errorf("%w: empty", ErrBadAmount)
	}
	neg := false
	if s[0] == '-' {
		neg = true
		s = s[1:]
	}
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" || !allDigits(intPart) || (hasDot && (frac == "" || !allDigits(frac))) {
		return 0, fmt.Errorf("%w: %q is not a decimal yuan amount", ErrBadAmount, orig)
	}
	if len(frac) > 2 {
		// Trailing zeros beyond the second decimal are still exact.
		trimmed := strings.TrimRight(frac[2:], "0")
		if trimmed != "" {
			return 0, fmt.Errorf("%w: %q has more than two decimals", ErrBadAmount, orig)
		}
		frac = frac[:2]
	}
	for len(frac) < 2 {
		frac += "0"
	}
	if len(intPart) > 15 {
		return 0, fmt.Errorf("%w: %q is too large", ErrBadAmount, orig)
	}
	yuan, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: %v", ErrBadAmount, orig, err)
	}
	cents, _ := strconv.ParseInt(frac, 10, 64)
	v := Fen(yuan*100 + cents)
	if v > MaxFen {
		return 0, fmt.Errorf("%w: %q is too large", ErrBadAmount, orig)
	}
	if neg {
		v = -v
	}
	return v, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// MarshalJSON writes f as the upstream's yuan string.
func (f Fen) MarshalJSON() ([]byte, error) {
	return []byte(`"` + f.Yuan() + `"`), nil
}

// UnmarshalJSON reads a yuan amount sent as a JSON string ("0.10") or, as
// some upstream answers do, as a bare JSON number (0.10).
func (f *Fen) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if len(s) >= 2 && s[0] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return fmt.Errorf("%w: %v", ErrBadAmount, err)
		}
		s = str
	}
	if s == "" {
		*f = 0
		return nil
	}
	v, err := ParseYuan(s)
	if err != nil {
		return err
	}
	*f = v
	return nil
}
