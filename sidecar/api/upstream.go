package api

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/payments"
)

// upstreamError maps a failed upstream call to the API's answer: 504 when
// the call ran out of time, 502 for every other upstream trouble, with
// upstream_bad_signature for an answer that was unsigned or wrongly signed.
func upstreamError(err error) error { return fromService(payments.UpstreamError(err, "")) }

// pluginError maps a failed flow plugin call to the API's answer.
func pluginError(err error) error { return fromService(payments.PluginError(err)) }

type authorizeRequest struct {
	Flow        string `json:"flow"`
	RedirectURI string `json:"redirect_uri"`
	Scope       string `json:"scope"`
	State       string `json:"state"`
	MerchantID  string `json:"merchant_id"`
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
	if err := checkText(map[string]string{"flow": req.Flow, "redirect_uri": req.RedirectURI, "scope": req.Scope, "state": req.State}); err != nil {
		return 0, nil, err
	}
	flow, err := s.flows.Flow(req.Flow)
	if err != nil {
		return 0, nil, pluginError(err)
	}
	if err := s.payments.CheckMerchant(req.MerchantID); err != nil {
		return 0, nil, fromService(err)
	}
	u, err := flow.AuthorizeURL(ctx, plugin.AuthorizeInput{RedirectURI: req.RedirectURI, Scope: req.Scope, State: req.State, MerchantID: req.MerchantID})
	if err != nil {
		return 0, nil, pluginError(err)
	}
	return http.StatusOK, map[string]string{"url": u}, nil
}

type exchangeRequest struct {
	Flow       string `json:"flow"`
	Code       string `json:"code"`
	AppID      string `json:"app_id"`
	MerchantID string `json:"merchant_id"`
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
	if err := checkText(map[string]string{"flow": req.Flow, "code": req.Code, "app_id": req.AppID}); err != nil {
		return 0, nil, err
	}
	flow, err := s.flows.Flow(req.Flow)
	if err != nil {
		return 0, nil, pluginError(err)
	}
	if err := s.payments.CheckMerchant(req.MerchantID); err != nil {
		return 0, nil, fromService(err)
	}
	id, err := flow.ExchangeCode(ctx, plugin.ExchangeInput{Code: req.Code, AppID: req.AppID, MerchantID: req.MerchantID})
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
	} else if !payments.ValidMerchantID(merchant) {
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
// (one of upstream.passthrough, or a built-in merchant endpoint) and
// answers the verified data. The sidecar fills huifu_id (except on
// onboarding, which names upper_huifu_id instead), req_date and req_seq_id
// when they are absent.
func (s *Server) passthrough(ctx context.Context, r *http.Request, body []byte) (int, any, error) {
	path := "/" + r.PathValue("path")
	if !builtinPassthrough(path) && !(*s.allowed.Load())[path] {
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
	if _, ok := data["huifu_id"]; !ok && !onboarding(path) {
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
