package upstream

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Member is one member of an Object.
type Member struct {
	// Key is the member's name.
	Key string
	// Value is any value encoding/json can write.
	Value any
}

// Object is a JSON object whose members are written in the order they were
// added, for nested fields whose members the upstream or a channel expects
// in a given order. The zero value is an empty object.
type Object []Member

// Set appends the member key with value v and returns the object, so that
// calls chain. Setting a key twice writes it twice; do not.
func (o Object) Set(key string, v any) Object { return append(o, Member{Key: key, Value: v}) }

// MarshalJSON implements json.Marshaler, members in order, "<", ">" and "&"
// unescaped.
func (o Object) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := JSON(m.Key)
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		v, err := JSON(m.Value)
		if err != nil {
			return nil, fmt.Errorf("member %s: %w", m.Key, err)
		}
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// JSON encodes v as compact JSON without escaping "<", ">" and "&", so
// that what the upstream or the front end receives is byte for byte what
// was meant (a WeChat package such as "prepay_id=wx…" or a deep link with
// "&" keeps its characters). Struct fields keep their declared order and
// Object members the order they were added; map keys are sorted, as
// encoding/json sorts them.
func JSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// Encode returns the JSON string of a nested field such as wx_data: v
// encoded by JSON. Use a struct or an Object when the order of members
// matters.
func Encode(v any) (string, error) {
	b, err := JSON(v)
	if err != nil {
		return "", fmt.Errorf("encode nested object: %w", err)
	}
	return string(b), nil
}
