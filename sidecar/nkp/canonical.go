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
// "&" left unescaped. This is what the official DouGong SDKs sign: they
// sort the first level only.
//
// Nested objects usually travel as JSON strings (wx_data, alipay_data,
// acct_split_bunch, risk_check_data, ...), which are written byte for byte
// as the caller built them. A nested object given as json.RawMessage keeps
// its members in the order written, duplicates included; only white space
// and escaping are normalized. A struct keeps its field order. A nested Go
// map has no order of its own, so its keys are sorted.
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
// literal text and nested objects in the order written, and returns its
// canonical string. A server uses it to re-canonicalize what a client
// transmitted before verifying the signature: an official SDK signs nested
// objects in the order its caller built them, so re-sorting them would
// refuse a valid request.
func CanonicalizeJSON(raw []byte) ([]byte, error) {
	m, err := DecodeData(raw)
	if err != nil {
		return nil, err
	}
	return Canonicalize(m)
}

// DecodeData parses raw as a JSON object the way a signer reads data: the
// first-level values are decoded (numbers as json.Number), while nested
// objects and arrays stay json.RawMessage, so that Canonicalize writes them
// with their members in the order written. A duplicate first-level key
// keeps its last value.
func DecodeData(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var members map[string]json.RawMessage
	if err := dec.Decode(&members); err != nil {
		return nil, fmt.Errorf("decode JSON object: %w", err)
	}
	if members == nil {
		return nil, fmt.Errorf("decode JSON object: not an object")
	}
	if err := noTrailingData(dec); err != nil {
		return nil, err
	}
	m := make(map[string]any, len(members))
	for k, v := range members {
		if c := firstByte(v); c == '{' || c == '[' {
			m[k] = v
			continue
		}
		scalar := json.NewDecoder(bytes.NewReader(v))
		scalar.UseNumber()
		var x any
		if err := scalar.Decode(&x); err != nil {
			return nil, fmt.Errorf("decode JSON object: member %q: %w", k, err)
		}
		m[k] = x
	}
	return m, nil
}

// firstByte returns the first byte of raw that is not JSON white space, or
// 0.
func firstByte(raw []byte) byte {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}

// noTrailingData reports an error unless only white space follows the value
// dec has decoded. Token reports io.EOF for that and an error or a token for
// anything else, including a stray "]" or "}".
func noTrailingData(dec *json.Decoder) error {
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("decode JSON object: trailing data")
	}
	return nil
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
	if err := noTrailingData(dec); err != nil {
		return nil, err
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
		var c bytes.Buffer
		if len(bytes.TrimSpace(t)) == 0 {
			return true
		}
		if json.Compact(&c, t) != nil {
			return false // invalid: writeValue reports it
		}
		s := c.String()
		return s == "null" || s == `""` || s == "{}" || s == "[]"
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
		return writeRaw(buf, t)
	default:
		// Structs and other types go through encoding/json once and are
		// then written with the canonical escaping, members in the order
		// encoding/json gives them (a struct's field order).
		b, err := json.Marshal(t)
		if err != nil {
			return fmt.Errorf("marshal %T: %w", v, err)
		}
		return writeRaw(buf, b)
	}
	return nil
}

// writeRaw writes one JSON value given as text with the canonical escaping
// and no white space, keeping the members of every object in the order
// written (duplicates included) and numbers as their literal text.
func writeRaw(buf *bytes.Buffer, raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	// open holds, for every object or array not yet closed, whether it is
	// an object and how many tokens it has had: in an object, keys are the
	// even ones.
	type container struct {
		object bool
		n      int
	}
	var open []container
	done := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("invalid raw JSON: %w", err)
		}
		if done {
			return fmt.Errorf("invalid raw JSON: trailing data")
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			buf.WriteByte(byte(d))
			open = open[:len(open)-1]
			done = len(open) == 0
			continue
		}
		if len(open) > 0 {
			c := &open[len(open)-1]
			if c.n > 0 && (!c.object || c.n%2 == 0) {
				buf.WriteByte(',')
			}
			c.n++
			if c.object && c.n%2 == 1 {
				writeString(buf, tok.(string))
				buf.WriteByte(':')
				continue
			}
		}
		switch t := tok.(type) {
		case json.Delim:
			buf.WriteByte(byte(t))
			open = append(open, container{object: t == '{'})
			continue
		case string:
			writeString(buf, t)
		case json.Number:
			buf.WriteString(string(t))
		case bool:
			buf.WriteString(strconv.FormatBool(t))
		case nil:
			buf.WriteString("null")
		}
		done = len(open) == 0
	}
	if !done {
		return fmt.Errorf("invalid raw JSON: no value")
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
