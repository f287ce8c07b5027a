package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/pluginhost"
)

// upstreamError maps a failed upstream call to the API's answer: 504 when
// the call ran out of time, 502 for every other upstream trouble, with
// upstream_bad_signature for an answer that was unsigned or wrongly signed.
func upstreamError(err error) error {
	var ce *nkp.CallError
	if !errors.As(err, &ce) {
		if errors.Is(err, context.DeadlineExceeded) {
			return &Error{Status: http.StatusGatewayTimeout, Code: CodeUpstreamTimeout, Message: "the upstream did not answer in time", Err: err}
		}
		return &Error{Status: http.StatusBadGateway, Code: CodeUpstreamUnavailable, Message: "the upstream call failed", Err: err}
	}
	switch ce.Kind {
	case nkp.KindTimeout:
		return &Error{Status: http.StatusGatewayTimeout, Code: CodeUpstreamTimeout, Message: "the upstream did not answer in time; the outcome is checked by query", Err: err}
	case nkp.KindBadSignature:
		return &Error{Status: http.StatusBadGateway, Code: CodeUpstreamBadSignature, Message: "the upstream's answer is unsigned or its signature does not verify; it was not trusted", Err: err}
	case nkp.KindStatus:
		return &Error{Status: http.StatusBadGateway, Code: CodeUpstreamUnavailable, Message: fmt.Sprintf("the upstream answered HTTP %d", ce.StatusCode), Err: err}
	case nkp.KindRequest:
		return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "the upstream request could not be built", Err: err}
	}
	return &Error{Status: http.StatusBadGateway, Code: CodeUpstreamUnavailable, Message: "the upstream could not be reached or answered garbage", Err: err}
}

// pluginError maps a failed flow plugin call to the API's answer.
func pluginError(err error) error {
	switch {
	case errors.Is(err, pluginhost.ErrUnknownFlow):
		return &Error{Status: http.StatusBadRequest, Code: CodeUnknownFlow, Field: "flow", Message: "this flow is not enabled", Err: err}
	case errors.Is(err, pluginhost.ErrUnavailable), errors.Is(err, plugin.ErrTransport):
		return &Error{Status: http.StatusServiceUnavailable, Code: CodePluginUnavailable, Message: "the flow plugin is restarting; retry shortly", Err: err}
	}
	var pe *plugin.Error
	if !errors.As(err, &pe) {
		return &Error{Status: http.StatusBadGateway, Code: CodePluginError, Message: "the flow plugin failed", Err: err}
	}
	field := pe.Field
	switch pe.Code {
	case plugin.CodeInvalidBuyer:
		return &Error{Status: http.StatusBadRequest, Code: CodeMissingBuyer, Field: nonEmpty(prefixField("buyer", field), "buyer"), Message: pe.Message}
	case plugin.CodeInvalidRequest:
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidField, Field: field, Message: pe.Message}
	case plugin.CodeUnsupported:
		return &Error{Status: http.StatusBadRequest, Code: CodeUnsupported, Field: "flow", Message: pe.Message}
	case plugin.CodeCodeInvalid:
		return &Error{Status: http.StatusBadRequest, Code: CodeCodeInvalid, Field: nonEmpty(field, "code"), Message: pe.Message}
	case plugin.CodeCodeExchangeFailed:
		return &Error{Status: http.StatusBadGateway, Code: CodeCodeExchangeFailed, Message: pe.Message}
	case plugin.CodeChannelUnavailable:
		return &Error{Status: http.StatusBadGateway, Code: CodeUpstreamUnavailable, Message: pe.Message}
	}
	return &Error{Status: http.StatusBadGateway, Code: CodePluginError, Message: pe.Message, Err: err}
}

func prefixField(prefix, field string) string {
	if field == "" || strings.HasPrefix(field, prefix) {
		return field
	}
	return prefix + "." + field
}

type authorizeRequest struct {
	Flow        string `json:"flow"`
	RedirectURI string `json:"redirect_uri"`
	Scope       string `json:"scope"`
	State       string `json:"state"`
}

func (s *Server) authorizeURL(ctx context.Context, _ *http.Request, body []byte) (int, any, error) {
	var req authorizeRequest
	if err := decodeStrict(body, &req); err != nil {
		return 0, nil, err
	}
	if req.RedirectURI == "" {
		return 0, nil, badRequest(CodeMissingField, "redirect_uri", "redirect_uri is required")
	}
	if err := s.checkFlow(&req.Flow, plugin.CapAuthorizeURL); err != nil {
		return 0, nil, err
	}
	flow, err := s.flows.Flow(req.Flow)
	if err != nil {
		return 0, nil, pluginError(err)
	}
	u, err := flow.AuthorizeURL(ctx, plugin.AuthorizeInput{RedirectURI: req.RedirectURI, Scope: req.Scope, State: req.State})
	if err != nil {
		return 0, nil, pluginError(err)
	}
	return http.StatusOK, map[string]string{"url": u}, nil
}

type exchangeRequest struct {
	Flow  string `json:"flow"`
	Code  string `json:"code"`
	AppID string `json:"app_id"`
}

func (s *Server) exchangeCode(ctx context.Context, _ *http.Request, body []byte) (int, any, error) {
	var req exchangeRequest
	if err := decodeStrict(body, &req); err != nil {
		return 0, nil, err
	}
	if err := s.checkFlow(&req.Flow, plugin.CapExchangeCode); err != nil {
		return 0, nil, err
	}
	if req.Code == "" {
		return 0, nil, badRequest(CodeMissingField, "code", "code is required")
	}
	flow, err := s.flows.Flow(req.Flow)
	if err != nil {
		return 0, nil, pluginError(err)
	}
	id, err := flow.ExchangeCode(ctx, plugin.ExchangeInput{Code: req.Code, AppID: req.AppID})
	if err != nil {
		return 0, nil, pluginError(err)
	}
	return http.StatusOK, map[string]string{"openid": id.OpenID, "unionid": id.UnionID, "app_id": id.AppID}, nil
}

func (s *Server) statements(ctx context.Context, r *http.Request) (int, any, error) {
	q := r.URL.Query()
	date := q.Get("date")
	if _, err := time.Parse(nkp.DateLayout, date); err != nil {
		return 0, nil, badRequest(CodeInvalidField, "date", "date must be yyyyMMdd")
	}
	bill := q.Get("bill_type")
	if bill == "" {
		bill = nkp.BillTrade
	}
	known := false
	for _, b := range nkp.BillTypes {
		known = known || b == bill
	}
	if !known {
		return 0, nil, badRequest(CodeInvalidField, "bill_type", "bill_type must be one of %s", strings.Join(nkp.BillTypes, ", "))
	}
	merchant := q.Get("merchant_id")
	if merchant == "" {
		merchant = s.cfg.MerchantID
	} else if !merchantPattern.MatchString(merchant) {
		return 0, nil, badRequest(CodeInvalidField, "merchant_id", "merchant_id must be digits")
	}
	now := s.now()
	resp, err := s.upstream.FileQuery(ctx, nkp.FileQueryRequest{
		ReqDate: nkp.ReqDate(now), ReqSeqID: nkp.NewReqSeqID(now), HuifuID: merchant, FileDate: date, BillType: bill,
	})
	if err != nil {
		return 0, nil, upstreamError(err)
	}
	if !resp.Accepted() {
		return 0, nil, errorf(http.StatusUnprocessableEntity, CodeUpstreamRejected, "", "upstream refused: %s %s", resp.RespCode, resp.RespDesc)
	}
	files := resp.FileDetails
	if files == nil {
		files = []nkp.FileDetail{}
	}
	tasks := resp.TaskDetails
	if tasks == nil {
		tasks = []nkp.TaskDetail{}
	}
	return http.StatusOK, map[string]any{"date": date, "bill_type": bill, "files": files, "tasks": tasks}, nil
}

// passthrough signs an arbitrary data object for an allowed upstream path
// and answers the verified data. The sidecar fills huifu_id, req_date and
// req_seq_id when they are absent.
func (s *Server) passthrough(ctx context.Context, r *http.Request, body []byte) (int, any, error) {
	path := "/" + r.PathValue("path")
	allowed := false
	for _, p := range s.cfg.Passthrough {
		allowed = allowed || p == path
	}
	if !allowed {
		return 0, nil, errorf(http.StatusForbidden, CodePathNotAllowed, "", "upstream path %s is not in upstream.passthrough", path)
	}
	data, err := nkp.DecodeObject(body)
	if err != nil {
		return 0, nil, badRequest(CodeInvalidJSON, "", "send the upstream data as one JSON object")
	}
	if _, ok := data["sign"]; ok {
		return 0, nil, badRequest(CodeInvalidField, "sign", "do not sign: the sidecar signs every call")
	}
	now := s.now()
	if _, ok := data["huifu_id"]; !ok {
		data["huifu_id"] = s.cfg.MerchantID
	}
	if _, ok := data["req_date"]; !ok {
		data["req_date"] = nkp.ReqDate(now)
	}
	if _, ok := data["req_seq_id"]; !ok {
		data["req_seq_id"] = nkp.NewReqSeqID(now)
	}
	out, err := s.upstream.Call(ctx, path, data)
	if err != nil {
		return 0, nil, upstreamError(err)
	}
	return http.StatusOK, map[string]any{"data": out}, nil
}
