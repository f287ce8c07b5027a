// Package jsonstr reads the JSON objects the flows receive as strings:
// channel details inside notifications (wx_response, alipay_response).
package jsonstr

import (
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
