package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/pluginhost"
)

func TestDecodeStrict(t *testing.T) {
	cases := []struct {
		body, code, field string
	}{
		{`{"flow":"alipay-native","amount_fen":1}`, "", ""},
		{``, CodeInvalidJSON, ""},
		{`   `, CodeInvalidJSON, ""},
		{`{"flow":`, CodeInvalidJSON, ""},
		{`{"flow":"a"} {"flow":"b"}`, CodeInvalidJSON, ""},
		{`{"flow":"a"}]`, CodeInvalidJSON, ""},
		{`{"amount_fen":"1"}`, CodeInvalidField, "amount_fen"},
		{`{"amount_fen":1.5}`, CodeInvalidField, "amount_fen"},
		{`{"amount_fen":1e3}`, CodeInvalidField, "amount_fen"},
		{`{"buyer":{"openid":1}}`, CodeInvalidField, "buyer.openid"},
		{`{"metadata":{"k":2}}`, CodeInvalidField, "metadata"},
		{`{"amount":1}`, CodeUnknownField, "amount"},
		{`{"buyer":{"union":"x"}}`, CodeUnknownField, "union"},
		{`[]`, CodeInvalidField, ""},
	}
	for _, c := range cases {
		t.Run(c.body, func(t *testing.T) {
			var req client.CreatePaymentRequest
			err := decodeStrict([]byte(c.body), &req)
			if c.code == "" {
				if err != nil {
					t.Fatalf("refused a valid body: %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != c.code || e.Field != c.field || e.Status != http.StatusBadRequest || e.Message == "" {
				t.Fatalf("got %#v, want %s field %q", err, c.code, c.field)
			}
		})
	}
}

func TestRequestHashIgnoresSpelling(t *testing.T) {
	a := requestHash([]byte(`{"a":1,"b":"x"}`))
	if b := requestHash([]byte(" {\"b\": \"x\",\n \"a\":1} ")); a != b {
		t.Fatal("the same request in another key order or spacing hashes differently")
	}
	if c := requestHash([]byte(`{"a":2,"b":"x"}`)); a == c {
		t.Fatal("different requests hash the same")
	}
}

func TestUpstreamErrorMapping(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{&nkp.CallError{Kind: nkp.KindTimeout}, http.StatusGatewayTimeout, CodeUpstreamTimeout},
		{&nkp.CallError{Kind: nkp.KindBadSignature}, http.StatusBadGateway, CodeUpstreamBadSignature},
		{&nkp.CallError{Kind: nkp.KindStatus, StatusCode: 500}, http.StatusBadGateway, CodeUpstreamUnavailable},
		{&nkp.CallError{Kind: nkp.KindTransport}, http.StatusBadGateway, CodeUpstreamUnavailable},
		{&nkp.CallError{Kind: nkp.KindDecode}, http.StatusBadGateway, CodeUpstreamUnavailable},
		{&nkp.CallError{Kind: nkp.KindRequest}, http.StatusInternalServerError, CodeInternal},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), http.StatusGatewayTimeout, CodeUpstreamTimeout},
	}
	for _, c := range cases {
		var e *Error
		if !errors.As(upstreamError(c.err), &e) || e.Status != c.status || e.Code != c.code {
			t.Errorf("%v: got %+v, want %d %s", c.err, e, c.status, c.code)
		}
	}
}

func TestPluginErrorMapping(t *testing.T) {
	cases := []struct {
		err         error
		status      int
		code, field string
	}{
		{fmt.Errorf("x: %w", pluginhost.ErrUnavailable), http.StatusServiceUnavailable, CodePluginUnavailable, ""},
		{fmt.Errorf("x: %w", plugin.ErrTransport), http.StatusServiceUnavailable, CodePluginUnavailable, ""},
		{fmt.Errorf("x: %w", pluginhost.ErrUnknownFlow), http.StatusBadRequest, CodeUnknownFlow, "flow"},
		{plugin.Errorf(plugin.CodeInvalidBuyer, "openid", "no"), http.StatusBadRequest, CodeMissingBuyer, "buyer.openid"},
		{plugin.Errorf(plugin.CodeInvalidBuyer, "", "no"), http.StatusBadRequest, CodeMissingBuyer, "buyer"},
		{plugin.Errorf(plugin.CodeInvalidRequest, "client_ip", "no"), http.StatusBadRequest, CodeInvalidField, "client_ip"},
		{plugin.Unsupported("alipay-native", "ExchangeCode"), http.StatusBadRequest, CodeUnsupported, "flow"},
		{plugin.Errorf(plugin.CodeCodeInvalid, "", "40163"), http.StatusBadRequest, CodeCodeInvalid, "code"},
		{plugin.Errorf(plugin.CodeCodeExchangeFailed, "", "x"), http.StatusBadGateway, CodeCodeExchangeFailed, ""},
		{plugin.Errorf(plugin.CodeChannelUnavailable, "", "x"), http.StatusBadGateway, CodeUpstreamUnavailable, ""},
		{plugin.Errorf(plugin.CodeInternal, "", "x"), http.StatusBadGateway, CodePluginError, ""},
		{errors.New("plain"), http.StatusBadGateway, CodePluginError, ""},
	}
	for _, c := range cases {
		var e *Error
		if !errors.As(pluginError(c.err), &e) || e.Status != c.status || e.Code != c.code || e.Field != c.field {
			t.Errorf("%v: got %+v, want %d %s %q", c.err, e, c.status, c.code, c.field)
		}
	}
}

func TestKeepAnswer(t *testing.T) {
	cases := []struct {
		status int
		v      any
		err    error
		keep   bool
	}{
		{http.StatusCreated, client.Payment{}, nil, true},
		{http.StatusOK, client.Payment{}, nil, true},
		{http.StatusAccepted, client.Payment{}, nil, true},
		{http.StatusAccepted, provisional{value: client.Payment{}}, nil, false},
		{0, nil, &Error{Status: 422, Code: CodeUpstreamRejected}, true},
		{0, nil, &Error{Status: 400, Code: CodeInvalidJSON}, false},
		{0, nil, &Error{Status: 503, Code: CodePluginUnavailable}, false},
		{0, nil, &Error{Status: 504, Code: CodeUpstreamTimeout}, false},
		{0, nil, errors.New("store down"), false},
	}
	for _, c := range cases {
		if got := keepAnswer(c.status, c.v, c.err); got != c.keep {
			t.Errorf("keepAnswer(%d, %T, %v) = %v", c.status, c.v, c.err, got)
		}
	}
}
