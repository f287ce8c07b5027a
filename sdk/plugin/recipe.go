package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/paysidecar/paysidecar/sdk/upstream"
)

// A PayRecipe says how the host builds an order's pay parameters from the
// verified upstream answer by itself, without calling PayParams. A flow
// whose PayParams is a fixed function of the answer's fields and of what
// it knew when shaping the order returns one from ShapeOrder
// (OrderShape.PayParams), which saves the create one call to the plugin.
// The host builds the object with Build, and a flow's own PayParams can
// return the Build of the same recipe, so that both ways give the same
// bytes. A host that does not know an operation in a recipe (Check fails)
// calls PayParams instead; so does every other path that builds pay
// parameters later, from a kept answer.
type PayRecipe struct {
	// Kind says which front end API the object is for (PayParams.Kind).
	Kind string
	// Root is the object, or any other JSON value, the front end gets.
	Root PayValue
}

// PayOp names how a PayValue is made.
type PayOp string

// The operations of a PayRecipe. Each reads at most one field of the
// upstream answer (PayValue.Field).
const (
	// PayObject is a JSON object of PayValue.Members, in their order.
	PayObject PayOp = "object"
	// PayLiteral is the JSON value in PayValue.Literal, as it is.
	PayLiteral PayOp = "literal"
	// PayURL is the field as a JSON string: an http or https URL with a
	// host, spaces around it trimmed.
	PayURL PayOp = "url"
	// PayEscapedURL is PayValue.Prefix followed by the query-escaped URL
	// of PayURL, as a JSON string: a link that carries the URL, such as
	// a deep link to an app's scanner.
	PayEscapedURL PayOp = "escaped_url"
	// PayInfo is the field read as WeChat's pay_info
	// (upstream.ParsePayInfo, appId required): the object
	// getBrandWCPayRequest takes, members in WeChat's order.
	PayInfo PayOp = "pay_info"
	// PayRequestPayment is the field read as WeChat's pay_info with
	// appId optional and left out: the object wx.requestPayment takes.
	PayRequestPayment PayOp = "request_payment"
)

// PayValue is one JSON value of a PayRecipe.
type PayValue struct {
	// Op says how the value is made.
	Op PayOp
	// Field is the upstream answer's field the value is read from
	// (PayURL, PayEscapedURL, PayInfo, PayRequestPayment).
	Field string
	// Prefix comes before the escaped URL (PayEscapedURL).
	Prefix string
	// Literal is a JSON value (PayLiteral).
	Literal []byte
	// Members are the object's members (PayObject).
	Members []PayMember
}

// PayMember is one member of a PayObject value.
type PayMember struct {
	// Name is the member's name.
	Name string
	// Value is the member's value.
	Value PayValue
}

// maxRecipeDepth bounds how deeply a recipe's objects nest.
const maxRecipeDepth = 8

// Check reports whether r is a recipe this SDK can build: every operation
// known, every field named where one is read, every literal valid JSON,
// member names given and not repeated, objects nested at most a few
// levels deep.
func (r PayRecipe) Check() error {
	if r.Kind == "" {
		return errors.New("pay recipe: no kind")
	}
	return r.Root.check(0)
}

func (v PayValue) check(depth int) error {
	switch v.Op {
	case PayObject:
		if depth >= maxRecipeDepth {
			return errors.New("pay recipe: objects nested too deeply")
		}
		seen := make(map[string]bool, len(v.Members))
		for _, m := range v.Members {
			if m.Name == "" || seen[m.Name] {
				return fmt.Errorf("pay recipe: member name %q empty or repeated", m.Name)
			}
			seen[m.Name] = true
			if err := m.Value.check(depth + 1); err != nil {
				return err
			}
		}
	case PayLiteral:
		if !json.Valid(v.Literal) {
			return errors.New("pay recipe: a literal is not JSON")
		}
	case PayURL, PayEscapedURL, PayInfo, PayRequestPayment:
		if v.Field == "" {
			return fmt.Errorf("pay recipe: %s names no field", v.Op)
		}
	default:
		return fmt.Errorf("pay recipe: unknown operation %q", v.Op)
	}
	return nil
}

// Build makes the pay parameters from the string fields of the verified
// upstream answer (PayParamsInput.Upstream). A field missing or malformed
// is an *Error with CodeInvalidRequest naming it; a recipe that fails
// Check is one with CodeInternal.
func (r PayRecipe) Build(fields map[string]string) (PayParams, error) {
	if err := r.Check(); err != nil {
		return PayParams{}, Errorf(CodeInternal, "", "%v", err)
	}
	v, err := r.Root.build(fields)
	if err != nil {
		return PayParams{}, err
	}
	b, err := upstream.JSON(v)
	if err != nil {
		return PayParams{}, Errorf(CodeInternal, "", "encode pay params: %v", err)
	}
	return PayParams{Kind: r.Kind, JSON: b}, nil
}

func (v PayValue) build(fields map[string]string) (any, error) {
	switch v.Op {
	case PayObject:
		o := make(upstream.Object, 0, len(v.Members))
		for _, m := range v.Members {
			mv, err := m.Value.build(fields)
			if err != nil {
				return nil, err
			}
			o = o.Set(m.Name, mv)
		}
		return o, nil
	case PayLiteral:
		return json.RawMessage(v.Literal), nil
	case PayURL:
		return answerURL(fields, v.Field)
	case PayEscapedURL:
		u, err := answerURL(fields, v.Field)
		if err != nil {
			return nil, err
		}
		return v.Prefix + url.QueryEscape(u), nil
	case PayInfo, PayRequestPayment:
		pi, err := upstream.ParsePayInfo(fields[v.Field], v.Op == PayInfo)
		if err != nil {
			return nil, Errorf(CodeInvalidRequest, v.Field, "%v", err)
		}
		if v.Op == PayInfo {
			return pi, nil
		}
		return upstream.Object{}.
			Set("timeStamp", pi.TimeStamp).
			Set("nonceStr", pi.NonceStr).
			Set("package", pi.Package).
			Set("signType", pi.SignType).
			Set("paySign", pi.PaySign), nil
	}
	return nil, Errorf(CodeInternal, "", "pay recipe: unknown operation %q", v.Op)
}

// answerURL returns the field of the answer as an http or https URL.
func answerURL(fields map[string]string, field string) (string, error) {
	s := strings.TrimSpace(fields[field])
	if s == "" {
		return "", Errorf(CodeInvalidRequest, field, "the upstream answer carries no %s", field)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || !utf8.ValidString(s) {
		return "", Errorf(CodeInvalidRequest, field, "%s is not an http or https URL", field)
	}
	return s, nil
}
