package nkp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Canonicalize returns the canonical string that is signed for data: empty
// values (null, "", {}, []) at the first level are dropped, the remaining
// first-level keys are sorted in byte order, and the object is serialized as
// compact JSON with non-ASCII characters written as-is and "/", "<", ">",
// "&" left unescaped. Nested objects are expected to travel as JSON strings
// and are therefore not re-sorted; a nested map that is passed anyway is
// written with its keys sorted, as Go's encoding/json would.
//
// Numbers keep their literal text when given as json.Number, which is how
// CanonicalizeJSON decodes them, so "0.00" stays "0.00". Keys must be valid
// UTF-8; string values that are not are written with U+FFFD in place of
// each bad byte.
func Canonicalize(data map[string]any) ([]byte, error) {
	keys := make([]string, 0, len(data))
	for k, v := range data {
		if isEmpty(v) {
			continue
		}
		if !utf8.ValidString(k) {
			return nil, fmt.Errorf("canonicalize: key %q is not valid UTF-8", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		writeString(&buf, k)
		buf.WriteByte(':')
		if err := writeValue(&buf, data[k]); err != nil {
			return nil, fmt.Errorf("canonicalize key %q: %w", k, err)
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// CanonicalizeJSON parses raw as a JSON object, keeping numbers as their
// literal text, and returns its canonical string. A server uses it to
// re-canonicalize what a client transmitted before verifying the signature.
func CanonicalizeJSON(raw []byte) ([]byte, error) {
	m, err := DecodeObject(raw)
	if err != nil {
		return nil, err
	}
	return Canonicalize(m)
}

// DecodeObject parses raw as a JSON object, keeping numbers as json.Number
// so that their literal text survives a round trip.
func DecodeObject(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode JSON object: %w", err)
	}
	if m == nil {
		return nil, fmt.Errorf("decode JSON object: not an object")
	}
	// Only white space may follow the object. Token reports io.EOF for
	// that and an error or a token for anything else, including a stray
	// "]" or "}".
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("decode JSON object: trailing data")
	}
	return m, nil
}

// EncodeNested serializes v as compact JSON with the same escaping rules as
// the canonical string. Nested objects such as wx_data travel as such
// strings inside data.
func EncodeNested(v any) (string, error) {
	var buf bytes.Buffer
	if err := writeValue(&buf, v); err != nil {
		return "", fmt.Errorf("encode nested object: %w", err)
	}
	return buf.String(), nil
}

func isEmpty(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case string:
		return t == ""
	case map[string]any:
		return len(t) == 0
	case []any:
		return len(t) == 0
	case json.RawMessage:
		s := string(bytes.TrimSpace(t))
		return s == "" || s == "null" || s == `""` || s == "{}" || s == "[]"
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map, reflect.Slice:
		return rv.Len() == 0
	case reflect.Pointer, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

func writeValue(buf *bytes.Buffer, v any) error {
	switch t := v.(type) {
	case nil:
		buf.WriteString("null")
	case string:
		writeString(buf, t)
	case bool:
		buf.WriteString(strconv.FormatBool(t))
	case json.Number:
		if !isNumberLiteral(string(t)) {
			return fmt.Errorf("invalid number %q", string(t))
		}
		buf.WriteString(string(t))
	case float64:
		if math.IsInf(t, 0) || math.IsNaN(t) {
			return fmt.Errorf("unsupported number %v", t)
		}
		buf.WriteString(strconv.FormatFloat(t, 'f', -1, 64))
	case float32:
		return writeValue(buf, float64(t))
	case int:
		buf.WriteString(strconv.FormatInt(int64(t), 10))
	case int32:
		buf.WriteString(strconv.FormatInt(int64(t), 10))
	case int64:
		buf.WriteString(strconv.FormatInt(t, 10))
	case uint64:
		buf.WriteString(strconv.FormatUint(t, 10))
	case Fen:
		writeString(buf, t.Yuan())
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			if !utf8.ValidString(k) {
				// Two such keys could be written alike, and no receiver
				// could rebuild the string that was signed.
				return fmt.Errorf("key %q is not valid UTF-8", k)
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, k)
			buf.WriteByte(':')
			if err := writeValue(buf, t[k]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeValue(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case json.RawMessage:
		var c bytes.Buffer
		if err := json.Compact(&c, t); err != nil {
			return fmt.Errorf("invalid raw JSON: %w", err)
		}
		// Re-encode so that escaping follows the canonical rules.
		dec := json.NewDecoder(&c)
		dec.UseNumber()
		var x any
		if err := dec.Decode(&x); err != nil {
			return fmt.Errorf("invalid raw JSON: %w", err)
		}
		return writeValue(buf, x)
	default:
		// Structs and other types go through encoding/json once and are
		// then written with the canonical escaping.
		b, err := json.Marshal(t)
		if err != nil {
			return fmt.Errorf("marshal %T: %w", v, err)
		}
		return writeValue(buf, json.RawMessage(b))
	}
	return nil
}

// isNumberLiteral reports whether s is exactly one JSON number: valid JSON
// that starts like a number and has no white space around it, so that a
// json.Number holding a string, an object or padded text is refused.
func isNumberLiteral(s string) bool {
	if s == "" || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
		return false
	}
	return !strings.ContainsAny(s, " \t\r\n") && json.Valid([]byte(s))
}

const hexDigits = "0123456789abcdef"

// writeString writes s as a JSON string: quotes, backslashes and control
// characters are escaped; everything else, including "/", "<", ">", "&",
// U+2028, U+2029 and all non-ASCII text, is written as-is. Invalid UTF-8 is
// replaced by U+FFFD, as every JSON encoder must.
func writeString(buf *bytes.Buffer, s string) {
	buf.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch c {
			case '"':
				buf.WriteString(`\"`)
			case '\\':
				buf.WriteString(`\\`)
			case '\n':
				buf.WriteString(`\n`)
			case '\r':
				buf.WriteString(`\r`)
			case '\t':
				buf.WriteString(`\t`)
			case '\b':
				buf.WriteString(`\b`)
			case '\f':
				buf.WriteString(`\f`)
			default:
				if c < 0x20 {
					buf.WriteString(`\u00`)
					buf.WriteByte(hexDigits[c>>4])
					buf.WriteByte(hexDigits[c&0xf])
				} else {
					buf.WriteByte(c)
				}
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf.WriteString("\ufffd")
		} else {
			buf.WriteString(s[i : i+size])
		}
		i += size
	}
	buf.WriteByte('"')
}
