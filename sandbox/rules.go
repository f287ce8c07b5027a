package sandbox

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// CodeBusinessFailed is the resp_code of DouGong's business refusals
// ("业务执行失败"): the request was well formed, but the merchant may not do
// it. The details are in resp_desc, and for a refusal by the channel in
// bank_code and bank_message.
const CodeBusinessFailed = "90000000"

// Refusals the sandbox shares with the real service. Each resp_desc starts
// with the upstream's own words, given here, and goes on with the details
// in English.
const (
	// DescReqDateNotToday refuses a req_date that is not today in Beijing
	// time (resp_code 10000000).
	DescReqDateNotToday = "请求日期必须为当天"
	// DescNotUnderSysID refuses a huifu_id (or upper_huifu_id) that is
	// neither the sys_id nor one of its merchants (CodeBusinessFailed).
	DescNotUnderSysID = "商户号与系统号不匹配"
	// DescOnboardingInReview refuses a trade or an application for a
	// merchant whose onboarding is still under review (CodeBusinessFailed).
	DescOnboardingInReview = "商户入驻审核中"
	// DescOnboardingRefused refuses a trade or an application for a
	// merchant whose onboarding was refused (CodeBusinessFailed).
	DescOnboardingRefused = "商户入驻审核未通过"
	// DescWeChatRealname refuses a WeChat trade for a merchant whose
	// WeChat real-name authorization is not complete (CodeBusinessFailed).
	DescWeChatRealname = "商户微信实名认证未完成"
	// DescAlipayRealname refuses an Alipay trade for a merchant whose
	// Alipay real-name authorization is not complete (CodeBusinessFailed).
	DescAlipayRealname = "商户支付宝实名认证未完成"
	// DescSubAppIDNotBound is WeChat's refusal of a sub_appid that is not
	// bound to the merchant; it comes with CodeBusinessFailed, trans_stat
	// F, bank_code BankCodeParamError and this text as bank_message.
	DescSubAppIDNotBound = "sub_mch_id与sub_appid不匹配"
	// BankCodeParamError is WeChat's error code for a bad parameter.
	BankCodeParamError = "PARAM_ERROR"
)

// AnySubAppID in a merchant's bound sub_appids accepts every app id. It is
// the default of every merchant, so that any configured app id works until
// a test binds a list.
const AnySubAppID = "*"

// DefaultReqDateSkew is how far the clocks of a client and the sandbox may
// be apart around midnight: a req_date is accepted when it is the Beijing
// date of any moment within this much of the sandbox's now.
const DefaultReqDateSkew = 5 * time.Minute

// Rules tunes the refusals the sandbox shares with the real service. The
// zero value is what make run and the tests use.
type Rules struct {
	// StrictMerchants refuses a huifu_id the sandbox does not know.
	// Without it, the first trade for an unknown huifu_id registers it as
	// a fully authorized merchant under the calling sys_id, so any merchant
	// id works out of the box.
	StrictMerchants bool
	// ReqDateSkew widens "today" around midnight; 0 means
	// DefaultReqDateSkew.
	ReqDateSkew time.Duration
}

// undated are the endpoints whose data has no req_date of its own: they
// name the original request by org_req_date.
var undated = []string{nkp.PathPaymentQuery, nkp.PathRefundQuery, nkp.PathCloseQuery}

// withRules wraps every endpoint with the checks all calls meet: req_date is
// today, and huifu_id and upper_huifu_id belong to the caller's sys_id. A
// refused call changes nothing.
func (s *Server) withRules(routes map[string]apiHandler) map[string]apiHandler {
	out := make(map[string]apiHandler, len(routes))
	for path, h := range routes {
		dated := !slices.Contains(undated, path)
		out[path] = func(c *apiCall) (map[string]any, error) {
			if err := s.checkCall(c, dated); err != nil {
				return nil, err
			}
			return h(c)
		}
	}
	return out
}

func (s *Server) checkCall(c *apiCall, dated bool) error {
	if d, ok := c.data["req_date"].(string); ok && dated {
		if err := s.checkReqDate(d, c.now); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range []string{"huifu_id", "upper_huifu_id"} {
		h, _ := c.data[k].(string)
		if h != "" && !s.underLocked(c.sysID, h) {
			return &apiError{status: http.StatusOK, code: CodeBusinessFailed,
				desc: fmt.Sprintf("%s (%s %s is not a merchant of sys_id %s)", DescNotUnderSysID, k, h, c.sysID)}
		}
	}
	return nil
}

// checkReqDate refuses a well-formed req_date that is not today in Beijing
// time, give or take the skew. A malformed one is left to the endpoint,
// which names the field.
func (s *Server) checkReqDate(d string, now time.Time) error {
	if _, err := time.ParseInLocation(nkp.DateLayout, d, cst()); err != nil || len(d) != 8 {
		return nil
	}
	skew := s.cfg.Rules.ReqDateSkew
	if skew <= 0 {
		skew = DefaultReqDateSkew
	}
	for _, t := range []time.Time{now, now.Add(-skew), now.Add(skew)} {
		if t.In(cst()).Format(nkp.DateLayout) == d {
			return nil
		}
	}
	return errParams("%s (req_date %s is not today, %s in Beijing time)", DescReqDateNotToday, d, now.In(cst()).Format(nkp.DateLayout))
}

// underLocked reports whether huifu may be named by a call from sysID: it
// is sysID itself, a merchant registered under sysID or under one of
// sysID's merchants, or, unless StrictMerchants is set, a merchant the
// sandbox does not know yet.
func (s *Server) underLocked(sysID, huifu string) bool {
	if huifu == sysID {
		return true
	}
	m := s.l.merchants[huifu]
	if m == nil {
		return !s.cfg.Rules.StrictMerchants
	}
	for range 16 {
		if m.sysID == sysID || m.upper == sysID {
			return true
		}
		up := s.l.merchants[m.upper]
		if up == nil || up == m {
			return false
		}
		m = up
	}
	return false
}

// adoptLocked registers an unknown huifu_id as a fully authorized merchant
// under sysID, as if it had been onboarded and authorized long ago.
func (s *Server) adoptLocked(sysID, huifu string, now time.Time) *merchant {
	m := &merchant{huifuID: huifu, sysID: sysID, upper: sysID, kind: merchantTypeEnt, name: "Sandbox merchant " + huifu,
		created: now, realname: map[string]*application{}, subAppIDs: []string{AnySubAppID}}
	m.onboard = s.decidedApplicationLocked(huifu, ApplyOnboard, nkp.StatSuccess, now)
	m.busiOpen = s.decidedApplicationLocked(huifu, ApplyBusiOpen, nkp.StatSuccess, now)
	m.realname[payWayWeChat] = s.decidedApplicationLocked(huifu, ApplyRealnameWeChat, nkp.StatSuccess, now)
	m.realname[payWayAlipay] = s.decidedApplicationLocked(huifu, ApplyRealnameAlipay, nkp.StatSuccess, now)
	s.l.merchants[huifu] = m
	s.l.merchantList = append(s.l.merchantList, m)
	return m
}

// decidedApplicationLocked files an application of kind that already has
// stat.
func (s *Server) decidedApplicationLocked(huifu, kind, stat string, now time.Time) *application {
	a := s.newApplicationLocked(huifu, kind, now)
	a.stat = stat
	return a
}

// onboardedLocked refuses a merchant whose onboarding is not approved.
func (s *Server) onboardedLocked(m *merchant, now time.Time) error {
	s.reviewLocked(m.onboard, now)
	switch {
	case m.onboard == nil || m.onboard.stat == nkp.StatSuccess:
		return nil
	case m.onboard.stat == nkp.StatFailure:
		return errBusiness("%s (the onboarding of %s, apply_no %s, was refused)", DescOnboardingRefused, m.huifuID, m.onboard.applyNo)
	}
	return errBusiness("%s (the onboarding of %s, apply_no %s, is under review)", DescOnboardingInReview, m.huifuID, m.onboard.applyNo)
}

// tradeAllowedLocked applies the merchant's standing to an order of
// tradeType: onboarding approved, real-name authorization complete for the
// channel (WeChat for T_*, Alipay for A_*), and a sub_appid bound to the
// merchant. An unknown merchant is
// adopted (checkCall has already refused it under StrictMerchants).
func (s *Server) tradeAllowedLocked(sysID, huifu, tradeType, subAppID string, now time.Time) error {
	m := s.l.merchants[huifu]
	if m == nil {
		m = s.adoptLocked(sysID, huifu, now)
	}
	if err := s.onboardedLocked(m, now); err != nil {
		return err
	}
	var payWay, desc string
	switch {
	case strings.HasPrefix(tradeType, "T_"): // WeChat: T_JSAPI, T_MINIAPP
		payWay, desc = payWayWeChat, DescWeChatRealname
	case strings.HasPrefix(tradeType, "A_"): // Alipay: A_NATIVE
		payWay, desc = payWayAlipay, DescAlipayRealname
	default:
		// Other channels have no real-name authorization of their own.
		return nil
	}
	rn := m.realname[payWay]
	s.reviewLocked(rn, now)
	if rn == nil || rn.stat != nkp.StatSuccess {
		stat := notAppliedTransState
		if rn != nil {
			stat = rn.stat
		}
		return errBusiness("%s (merchant %s, real-name apply_stat %s)", desc, huifu, stat)
	}
	if payWay == payWayWeChat && subAppID != "" && !slices.Contains(m.subAppIDs, AnySubAppID) && !slices.Contains(m.subAppIDs, subAppID) {
		e := errBusiness("%s (sub_appid %s is not bound to merchant %s)", DescSubAppIDNotBound, subAppID, huifu)
		e.extra = map[string]any{"trans_stat": nkp.StatFailure, "bank_code": BankCodeParamError, "bank_message": DescSubAppIDNotBound}
		return e
	}
	return nil
}

func errBusiness(format string, args ...any) *apiError {
	return &apiError{status: http.StatusOK, code: CodeBusinessFailed, desc: fmt.Sprintf(format, args...)}
}

// Path of the merchant control.
const ControlMerchants = "/_sandbox/merchants"

// MerchantState is a merchant's standing as the trade rules see it.
type MerchantState struct {
	HuifuID string `json:"huifu_id"`
	// SysID is the sys_id the merchant was registered under.
	SysID string `json:"sys_id"`
	// UpperHuifuID is the merchant (or service provider) it belongs to.
	UpperHuifuID string `json:"upper_huifu_id"`
	// OnboardStat is the state of its onboarding: P, S or F.
	OnboardStat    string `json:"onboard_stat"`
	OnboardApplyNo string `json:"onboard_apply_no"`
	// WxRealnameStat and AliRealnameStat are the states of its WeChat and
	// Alipay real-name authorization: I (never applied), P, S or F.
	WxRealnameStat  string `json:"wx_realname_stat"`
	AliRealnameStat string `json:"ali_realname_stat"`
	// SubAppIDs are the WeChat app ids bound to it; AnySubAppID accepts
	// every one.
	SubAppIDs []string `json:"sub_appids"`
}

// MerchantRequest registers a merchant or changes its standing. Empty
// fields leave the standing as it is; a new merchant starts fully
// authorized under SysID (DevSysID by default) with AnySubAppID.
type MerchantRequest struct {
	HuifuID string `json:"huifu_id"`
	// SysID and UpperHuifuID move the merchant under another sys_id or
	// upper merchant; UpperHuifuID defaults to SysID.
	SysID        string `json:"sys_id,omitempty"`
	UpperHuifuID string `json:"upper_huifu_id,omitempty"`
	// OnboardStat is P (under review until decided by
	// /_sandbox/applications/settle or this control), S or F.
	OnboardStat string `json:"onboard_stat,omitempty"`
	// WxRealnameStat and AliRealnameStat are I (never applied), P (held
	// like OnboardStat), S or F.
	WxRealnameStat  string `json:"wx_realname_stat,omitempty"`
	AliRealnameStat string `json:"ali_realname_stat,omitempty"`
	// SubAppIDs replaces the bound app ids when not nil; an empty list
	// binds none, so every sub_appid is refused.
	SubAppIDs *[]string `json:"sub_appids,omitempty"`
}

func (s *Server) ruleControlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+ControlMerchants, s.serveMerchants)
	mux.HandleFunc("POST "+ControlMerchants, s.serveSetMerchant)
}

func (m *merchant) state(s *Server, now time.Time) MerchantState {
	stat := func(a *application) (string, string) {
		if a == nil {
			return notAppliedTransState, ""
		}
		s.reviewLocked(a, now)
		return a.stat, a.applyNo
	}
	v := MerchantState{HuifuID: m.huifuID, SysID: m.sysID, UpperHuifuID: m.upper, SubAppIDs: append([]string{}, m.subAppIDs...)}
	v.OnboardStat, v.OnboardApplyNo = stat(m.onboard)
	v.WxRealnameStat, _ = stat(m.realname[payWayWeChat])
	v.AliRealnameStat, _ = stat(m.realname[payWayAlipay])
	return v
}

func (s *Server) serveMerchants(w http.ResponseWriter, r *http.Request) {
	huifu := r.URL.Query().Get("huifu_id")
	s.mu.Lock()
	now := s.now()
	out := []MerchantState{}
	for _, m := range s.l.merchantList {
		if huifu == "" || m.huifuID == huifu {
			out = append(out, m.state(s, now))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) serveSetMerchant(w http.ResponseWriter, r *http.Request) {
	var req MerchantRequest
	if !decodeControl(w, r, &req) {
		return
	}
	if msg := req.validate(); msg != "" {
		controlFail(w, http.StatusBadRequest, "bad_request", msg)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	m := s.l.merchants[req.HuifuID]
	if m == nil {
		sys := req.SysID
		if sys == "" {
			sys = DevSysID
		}
		m = s.adoptLocked(sys, req.HuifuID, now)
	}
	if req.SysID != "" {
		m.sysID, m.upper = req.SysID, req.SysID
	}
	if req.UpperHuifuID != "" {
		m.upper = req.UpperHuifuID
	}
	if req.OnboardStat != "" {
		m.onboard = s.heldApplicationLocked(m.huifuID, ApplyOnboard, req.OnboardStat, now)
	}
	for payWay, st := range map[string]string{payWayWeChat: req.WxRealnameStat, payWayAlipay: req.AliRealnameStat} {
		switch st {
		case "":
		case notAppliedTransState:
			delete(m.realname, payWay)
		default:
			kind, _ := realnameKind(payWay)
			m.realname[payWay] = s.heldApplicationLocked(m.huifuID, kind, st, now)
		}
	}
	if req.SubAppIDs != nil {
		m.subAppIDs = append([]string{}, *req.SubAppIDs...)
	}
	writeJSON(w, http.StatusOK, m.state(s, now))
}

// heldApplicationLocked files an application with stat; a processing one
// waits for a control instead of ReviewDelay.
func (s *Server) heldApplicationLocked(huifu, kind, stat string, now time.Time) *application {
	a := s.decidedApplicationLocked(huifu, kind, stat, now)
	a.held = stat == nkp.StatProcessing
	return a
}

func (req MerchantRequest) validate() string {
	if !seqPattern.MatchString(req.HuifuID) {
		return "huifu_id is required: letters and digits"
	}
	decided := []string{nkp.StatProcessing, nkp.StatSuccess, nkp.StatFailure}
	if req.OnboardStat != "" && !slices.Contains(decided, req.OnboardStat) {
		return "onboard_stat must be P, S or F"
	}
	for name, st := range map[string]string{"wx_realname_stat": req.WxRealnameStat, "ali_realname_stat": req.AliRealnameStat} {
		if st != "" && st != notAppliedTransState && !slices.Contains(decided, st) {
			return name + " must be I, P, S or F"
		}
	}
	return ""
}
