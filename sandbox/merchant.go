package sandbox

import (
	"fmt"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// Kinds of merchant application.
const (
	ApplyOnboard        = "onboard"
	ApplyBusiOpen       = "busi_open"
	ApplyRealnameWeChat = "realname_wechat"
	ApplyRealnameAlipay = "realname_alipay"
)

const (
	merchantTypeEnt      = "ENT"
	merchantTypeIndv     = "INDV"
	payWayWeChat         = "W"
	payWayAlipay         = "A"
	authorizedStat       = "AUTHORIZED"
	unauthorizedStat     = "UNAUTHORIZED"
	notAppliedTransState = nkp.StatInitial
)

// merchant is a merchant onboarded through the API (or the dev merchant).
type merchant struct {
	huifuID  string
	sysID    string // the sys_id it was registered under
	upper    string
	kind     string // ENT or INDV
	name     string
	created  time.Time
	onboard  *application
	busiOpen *application
	realname map[string]*application // pay_way -> latest application
	// subAppIDs are the WeChat app ids bound to the merchant; AnySubAppID
	// accepts every one.
	subAppIDs []string
}

// application is an onboarding, business-opening or real-name application.
// It stays processing until ReviewDelay has passed by Config.Clock or a
// control decides it.
type application struct {
	applyNo string
	huifuID string
	kind    string
	stat    string
	created time.Time
	held    bool // processing until a control decides it, whatever ReviewDelay says
}

// Application is a merchant application as the controls show it.
type Application struct {
	ApplyNo   string    `json:"apply_no"`
	HuifuID   string    `json:"huifu_id"`
	Kind      string    `json:"kind"`
	ApplyStat string    `json:"apply_stat"`
	CreatedAt time.Time `json:"created_at"`
}

func (a *application) view() Application {
	return Application{ApplyNo: a.applyNo, HuifuID: a.huifuID, Kind: a.kind, ApplyStat: a.stat, CreatedAt: a.created}
}

// reviewLocked lets a processing application succeed once ReviewDelay has
// passed.
func (s *Server) reviewLocked(a *application, now time.Time) {
	if a != nil && !a.held && a.stat == nkp.StatProcessing && now.Sub(a.created) >= s.cfg.ReviewDelay {
		a.stat = nkp.StatSuccess
	}
}

// seedDevMerchant registers DevHuifuID as a fully onboarded merchant.
func (s *Server) seedDevMerchant() {
	now := s.now()
	m := &merchant{huifuID: DevHuifuID, sysID: DevSysID, upper: DevHuifuID, kind: merchantTypeEnt, name: "Sandbox Dev Merchant",
		created: now, realname: map[string]*application{}, subAppIDs: []string{AnySubAppID}}
	for _, k := range []string{ApplyOnboard, ApplyBusiOpen, ApplyRealnameWeChat, ApplyRealnameAlipay} {
		a := s.newApplicationLocked(m.huifuID, k, now)
		a.stat = nkp.StatSuccess
		switch k {
		case ApplyOnboard:
			m.onboard = a
		case ApplyBusiOpen:
			m.busiOpen = a
		case ApplyRealnameWeChat:
			m.realname[payWayWeChat] = a
		case ApplyRealnameAlipay:
			m.realname[payWayAlipay] = a
		}
	}
	s.l.merchants[m.huifuID] = m
	s.l.merchantList = append(s.l.merchantList, m)
}

func (s *Server) newApplicationLocked(huifu, kind string, now time.Time) *application {
	n := s.l.next()
	a := &application{
		applyNo: fmt.Sprintf("SBXAPPLY%s%010d", now.Format(nkp.DateLayout), n),
		huifuID: huifu, kind: kind, stat: nkp.StatProcessing, created: now,
	}
	s.l.apps[a.applyNo] = a
	return a
}

// onboard registers a new merchant under upper and answers its huifu_id
// and the apply_no of its onboarding.
func (s *Server) onboard(c *apiCall, kind, reqDate, reqSeq, upper, name string) (map[string]any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := serial{upper, reqDate, reqSeq}
	if s.l.serials[key] {
		return nil, errDuplicate(reqSeq)
	}
	n := s.l.next()
	m := &merchant{
		huifuID: fmt.Sprintf("66660002%08d", n), sysID: c.sysID, upper: upper, kind: kind, name: name,
		created: c.now, realname: map[string]*application{}, subAppIDs: []string{AnySubAppID},
	}
	m.onboard = s.newApplicationLocked(m.huifuID, ApplyOnboard, c.now)
	s.l.serials[key] = true
	s.l.merchants[m.huifuID] = m
	s.l.merchantList = append(s.l.merchantList, m)
	return map[string]any{
		"resp_code":  nkp.CodeAccepted,
		"resp_desc":  "merchant registered, under review",
		"req_date":   reqDate,
		"req_seq_id": reqSeq,
		"huifu_id":   m.huifuID,
		"apply_no":   m.onboard.applyNo,
		"apply_stat": m.onboard.stat,
	}, nil
}

// merchantEnt onboards an enterprise merchant.
func (s *Server) merchantEnt(c *apiCall) (map[string]any, error) {
	f := &form{data: c.data}
	reqDate := f.date("req_date", true)
	reqSeq := f.seq("req_seq_id")
	upper := f.req("upper_huifu_id")
	name := f.req("reg_name")
	f.req("license_code")
	f.req("legal_name")
	f.req("contact_mobile_no")
	f.opt("short_name")
	f.jsonObject("card_info")
	if f.err != nil {
		return nil, f.err
	}
	return s.onboard(c, merchantTypeEnt, reqDate, reqSeq, upper, name)
}

// merchantIndv onboards an individual merchant.
func (s *Server) merchantIndv(c *apiCall) (map[string]any, error) {
	f := &form{data: c.data}
	reqDate := f.date("req_date", true)
	reqSeq := f.seq("req_seq_id")
	upper := f.req("upper_huifu_id")
	name := f.req("name")
	f.req("cert_no")
	f.req("mobile_no")
	f.jsonObject("card_info")
	if f.err != nil {
		return nil, f.err
	}
	return s.onboard(c, merchantTypeIndv, reqDate, reqSeq, upper, name)
}

// merchantFields reads the fields every merchant call has (req_date,
// req_seq_id, huifu_id) and the required extra ones.
func (s *Server) merchantFields(c *apiCall, extra ...string) (*form, string) {
	f := &form{data: c.data}
	f.date("req_date", true)
	f.seq("req_seq_id")
	huifu := f.req("huifu_id")
	for _, e := range extra {
		f.req(e)
	}
	return f, huifu
}

// merchantStatus answers the state of an application: the one named by
// apply_no, or the merchant's onboarding.
func (s *Server) merchantStatus(c *apiCall) (map[string]any, error) {
	f, huifu := s.merchantFields(c)
	applyNo := f.opt("apply_no")
	if f.err != nil {
		return nil, f.err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.l.merchants[huifu]
	if m == nil {
		return nil, errNotFound("merchant")
	}
	a := m.onboard
	if applyNo != "" {
		a = s.l.apps[applyNo]
		if a == nil || a.huifuID != huifu {
			return nil, errNotFound("application")
		}
	}
	s.reviewLocked(a, c.now)
	return map[string]any{
		"resp_code":  nkp.CodeAccepted,
		"resp_desc":  "query succeeded",
		"huifu_id":   huifu,
		"apply_no":   a.applyNo,
		"apply_type": a.kind,
		"apply_stat": a.stat,
	}, nil
}

// merchantQuery answers a merchant's details and the state of its
// applications.
func (s *Server) merchantQuery(c *apiCall) (map[string]any, error) {
	f, huifu := s.merchantFields(c)
	if f.err != nil {
		return nil, f.err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.l.merchants[huifu]
	if m == nil {
		return nil, errNotFound("merchant")
	}
	stat := func(a *application) string {
		if a == nil {
			return notAppliedTransState
		}
		s.reviewLocked(a, c.now)
		return a.stat
	}
	return map[string]any{
		"resp_code":         nkp.CodeAccepted,
		"resp_desc":         "query succeeded",
		"huifu_id":          m.huifuID,
		"upper_huifu_id":    m.upper,
		"merchant_type":     m.kind,
		"reg_name":          m.name,
		"reg_date":          m.created.In(cst()).Format(nkp.DateLayout),
		"audit_stat":        stat(m.onboard),
		"busi_open_stat":    stat(m.busiOpen),
		"wx_realname_stat":  stat(m.realname[payWayWeChat]),
		"ali_realname_stat": stat(m.realname[payWayAlipay]),
	}, nil
}

// busiOpen applies for WeChat and Alipay business on a merchant.
func (s *Server) busiOpen(c *apiCall) (map[string]any, error) {
	f, huifu := s.merchantFields(c)
	f.jsonList("wx_conf_list")
	f.jsonList("ali_conf_list")
	if f.err != nil {
		return nil, f.err
	}
	return s.apply(c, huifu, ApplyBusiOpen, "")
}

// realname applies for WeChat (pay_way W) or Alipay (pay_way A) real-name
// authorization.
func (s *Server) realname(c *apiCall) (map[string]any, error) {
	f, huifu := s.merchantFields(c, "pay_way")
	payWay := f.opt("pay_way")
	if f.err != nil {
		return nil, f.err
	}
	kind, err := realnameKind(payWay)
	if err != nil {
		return nil, err
	}
	return s.apply(c, huifu, kind, payWay)
}

func realnameKind(payWay string) (string, error) {
	switch payWay {
	case payWayWeChat:
		return ApplyRealnameWeChat, nil
	case payWayAlipay:
		return ApplyRealnameAlipay, nil
	}
	return "", errParams("pay_way must be %s (WeChat) or %s (Alipay)", payWayWeChat, payWayAlipay)
}

// apply files an application of kind for huifu.
func (s *Server) apply(c *apiCall, huifu, kind, payWay string) (map[string]any, error) {
	reqDate, _ := c.data["req_date"].(string)
	reqSeq, _ := c.data["req_seq_id"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	key := serial{huifu, reqDate, reqSeq}
	if s.l.serials[key] {
		return nil, errDuplicate(reqSeq)
	}
	m := s.l.merchants[huifu]
	if m == nil {
		return nil, errNotFound("merchant")
	}
	if err := s.onboardedLocked(m, c.now); err != nil {
		return nil, err
	}
	a := s.newApplicationLocked(huifu, kind, c.now)
	if payWay != "" {
		m.realname[payWay] = a
	} else {
		m.busiOpen = a
	}
	s.l.serials[key] = true
	return map[string]any{
		"resp_code":  nkp.CodeProcessing,
		"resp_desc":  "application accepted, under review",
		"huifu_id":   huifu,
		"req_date":   reqDate,
		"req_seq_id": reqSeq,
		"apply_no":   a.applyNo,
		"apply_stat": a.stat,
	}, nil
}

// realnameQuery answers the state of a merchant's real-name authorization
// for pay_way.
func (s *Server) realnameQuery(c *apiCall) (map[string]any, error) {
	f, huifu := s.merchantFields(c, "pay_way")
	payWay := f.opt("pay_way")
	if f.err != nil {
		return nil, f.err
	}
	if _, err := realnameKind(payWay); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.l.merchants[huifu]
	if m == nil {
		return nil, errNotFound("merchant")
	}
	out := map[string]any{
		"resp_code":      nkp.CodeAccepted,
		"resp_desc":      "query succeeded",
		"huifu_id":       huifu,
		"pay_way":        payWay,
		"apply_stat":     notAppliedTransState,
		"authorize_stat": unauthorizedStat,
	}
	if a := m.realname[payWay]; a != nil {
		s.reviewLocked(a, c.now)
		out["apply_no"] = a.applyNo
		out["apply_stat"] = a.stat
		if a.stat == nkp.StatSuccess {
			out["authorize_stat"] = authorizedStat
		}
	}
	return out, nil
}
