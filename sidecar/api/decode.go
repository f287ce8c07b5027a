package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// readBody reads the whole body, bounded by limit, and refuses anything
// that is not JSON.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, "", "send application/json, not %q", ct)
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, badRequest(CodeInvalidJSON, "", "cannot read the body: %v", err)
	}
	if int64(len(body)) > limit {
		return nil, errorf(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "", "the body is larger than %d bytes", limit)
	}
	return body, nil
}

// decodeStrict decodes one JSON object into v: unknown fields, wrong
// types, trailing data and an empty body are refused with a code and the
// field at fault.
func decodeStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest(CodeInvalidJSON, "", "the body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		switch {
		case errors.As(err, &typeErr):
			field := typeErr.Field
			return badRequest(CodeInvalidField, field, "%s must be %s, not %s", nonEmpty(field, "the body"), typeName(typeErr.Type.Kind().String()), typeErr.Value)
		case errors.As(err, &syntaxErr):
			return badRequest(CodeInvalidJSON, "", "malformed JSON at byte %d: %v", syntaxErr.Offset, err)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return badRequest(CodeUnknownField, field, "unknown field %q", field)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return badRequest(CodeInvalidJSON, "", "malformed JSON: unexpected end of body")
		default:
			return badRequest(CodeInvalidJSON, "", "malformed JSON: %v", err)
		}
	}
	if dec.More() {
		return badRequest(CodeInvalidJSON, "", "only one JSON object may be sent")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest(CodeInvalidJSON, "", "only one JSON object may be sent")
	}
	return nil
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func typeName(kind string) string {
	switch kind {
	case "int", "int64", "int32", "uint", "uint64":
		return "an integer"
	case "string":
		return "a string"
	case "struct", "map":
		return "an object"
	case "slice":
		return "an array"
	case "bool":
		return "a boolean"
	case "ptr":
		return "an object"
	}
	return fmt.Sprintf("of type %s", kind)
}
