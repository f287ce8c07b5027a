// Package jsonstr reads and writes the JSON objects the flows exchange as
// strings: channel details inside notifications (wx_response,
// alipay_response) and the pay parameters handed to the front end.
package jsonstr

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
)

// ScalarMembers returns the string, number and boolean members of the JSON
// object raw as strings; numbers keep their literal text. Nested objects,
// arrays and nulls are left out.
func ScalarMembers(raw string) (map[string]string, error) {
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("trailing data after the JSON object")
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		switch t := v.(type) {
		case string:
			out[k] = t
		case json.Number:
			out[k] = t.String()
		case bool:
			if t {
				out[k] = "true"
			} else {
				out[k] = "false"
			}
		}
	}
	return out, nil
}

// Marshal encodes v as compact JSON without escaping <, > and &, so that
// what the front end receives is byte for byte what the channel signed.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
