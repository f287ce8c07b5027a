package sandbox

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// Results a settling control accepts.
const (
	// ResultPaid settles a payment as paid.
	ResultPaid = "paid"
	// ResultSucceeded settles a refund or a merchant application as
	// succeeded.
	ResultSucceeded = "succeeded"
	// ResultFailed settles a payment, a refund or an application as failed.
	ResultFailed = "failed"
)

// Paths of the simulation controls.
const (
	ControlSettlePayment     = "/_sandbox/payments/settle"
	ControlSettleRefund      = "/_sandbox/refunds/settle"
	ControlOrders            = "/_sandbox/orders"
	ControlRefunds           = "/_sandbox/refunds"
	ControlAutoSettle        = "/_sandbox/autosettle"
	ControlFaults            = "/_sandbox/faults"
	ControlNotifications     = "/_sandbox/notifications"
	ControlWeChatCodes       = "/_sandbox/wechat/codes"
	ControlStats             = "/_sandbox/stats"
	ControlSettleApplication = "/_sandbox/applications/settle"
	ControlBillDifferences   = "/_sandbox/bills/differences"
)

// SettleRequest settles a payment or a refund, named by huifu_id and either
// req_date with req_seq_id or nkp_seq_id.
type SettleRequest struct {
	HuifuID  string `json:"huifu_id"`
	ReqDate  string `json:"req_date,omitempty"`
	ReqSeqID string `json:"req_seq_id,omitempty"`
	NkpSeqID string `json:"nkp_seq_id,omitempty"`
	// Result is ResultPaid or ResultFailed for a payment, ResultSucceeded
	// or ResultFailed for a refund.
	Result string `json:"result"`
	// BankCode and BankMessage describe a failure; defaults are
	// BankCodePayFailed and BankCodeRefundFailed.
	BankCode    string `json:"bank_code,omitempty"`
	BankMessage string `json:"bank_message,omitempty"`
}

// Filter selects orders, refunds or notifications; empty fields match
// everything.
type Filter struct {
	HuifuID  string `json:"huifu_id,omitempty"`
	ReqDate  string `json:"req_date,omitempty"`
	ReqSeqID string `json:"req_seq_id,omitempty"`
	NkpSeqID string `json:"nkp_seq_id,omitempty"`
	// Kind selects notifications of KindPayment or KindRefund.
	Kind string `json:"kind,omitempty"`
}

func (f Filter) match(huifu, date, seq, nkpSeq, kind string) bool {
	return (f.HuifuID == "" || f.HuifuID == huifu) && (f.ReqDate == "" || f.ReqDate == date) &&
		(f.ReqSeqID == "" || f.ReqSeqID == seq) && (f.NkpSeqID == "" || f.NkpSeqID == nkpSeq) &&
		(f.Kind == "" || f.Kind == kind)
}

func filterOf(r *http.Request) Filter {
	q := r.URL.Query()
	return Filter{HuifuID: q.Get("huifu_id"), ReqDate: q.Get("req_date"), ReqSeqID: q.Get("req_seq_id"), NkpSeqID: q.Get("nkp_seq_id"), Kind: q.Get("kind")}
}

// MintCodeRequest asks for a WeChat code for a user of an app.
type MintCodeRequest struct {
	AppID string `json:"appid"`
	// User names the WeChat user; DefaultWeChatUser when empty. The same
	// app id and user always map to the same openid.
	User string `json:"user,omitempty"`
}

// SettleApplicationRequest decides a merchant application.
type SettleApplicationRequest struct {
	ApplyNo string `json:"apply_no"`
	// Result is ResultSucceeded or ResultFailed.
	Result string `json:"result"`
}

// ControlError is the body of a refused control call.
type ControlError struct {
	// Code is bad_request, not_found or conflict.
	Code string `json:"code"`
	// Message says what is wrong.
	Message string `json:"message"`
}

// Error implements error.
func (e *ControlError) Error() string { return e.Code + ": " + e.Message }

func controlFail(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]*ControlError{"error": {Code: code, Message: msg}})
}

func decodeControl(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		controlFail(w, http.StatusBadRequest, "bad_request", "malformed JSON: "+err.Error())
		return false
	}
	return true
}

func (s *Server) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /_sandbox/{$}", s.serveControlIndex)
	mux.HandleFunc("POST "+ControlSettlePayment, s.serveSettlePayment)
	mux.HandleFunc("POST "+ControlSettleRefund, s.serveSettleRefund)
	mux.HandleFunc("GET "+ControlOrders, s.serveOrders)
	mux.HandleFunc("GET "+ControlRefunds, s.serveRefunds)
	mux.HandleFunc("GET "+ControlAutoSettle, getSetting(s, &s.auto))
	mux.HandleFunc("PUT "+ControlAutoSettle, putSetting(s, &s.auto))
	mux.HandleFunc("GET "+ControlFaults, getSetting(s, &s.faults))
	mux.HandleFunc("PUT "+ControlFaults, putSetting(s, &s.faults))
	mux.HandleFunc("GET "+ControlNotifications, s.serveNotifications)
	mux.HandleFunc("POST "+ControlWeChatCodes, s.serveMintCode)
	mux.HandleFunc("GET "+ControlStats, s.serveStats)
	mux.HandleFunc("POST "+ControlSettleApplication, s.serveSettleApplication)
	s.ruleControlRoutes(mux)
	s.signingKeyRoutes(mux)
	s.wechatControlRoutes(mux)
	mux.HandleFunc("GET "+ControlBillDifferences, s.serveBillDifferences)
	mux.HandleFunc("POST "+ControlBillDifferences, s.serveAddBillDifference)
	mux.HandleFunc("DELETE "+ControlBillDifferences, s.serveClearBillDifferences)
	mux.HandleFunc("/_sandbox/", func(w http.ResponseWriter, r *http.Request) {
		controlFail(w, http.StatusNotFound, "not_found", "no control "+r.Method+" "+r.URL.Path+"; see GET /_sandbox/")
	})
}

func (s *Server) serveControlIndex(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"controls": []string{
			"POST " + ControlSettlePayment, "POST " + ControlSettleRefund,
			"GET " + ControlOrders, "GET " + ControlRefunds,
			"GET|PUT " + ControlAutoSettle, "GET|PUT " + ControlFaults,
			"GET " + ControlNotifications, "POST " + ControlWeChatCodes,
			"GET " + ControlStats, "POST " + ControlSettleApplication,
			"GET|POST " + ControlMerchants, "GET|PUT " + ControlSigningKey,
			"POST " + ControlWeChatTokens, "POST " + ControlWeChatApps, "GET " + ControlWeChatAuthorizations,
			"GET|POST|DELETE " + ControlBillDifferences,
		},
	})
}

func (s *Server) serveSettlePayment(w http.ResponseWriter, r *http.Request) {
	var req SettleRequest
	if !decodeControl(w, r, &req) {
		return
	}
	if req.Result != ResultPaid && req.Result != ResultFailed {
		controlFail(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("result must be %q or %q", ResultPaid, ResultFailed))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	o := s.findOrderLocked(req.HuifuID, req.ReqDate, req.ReqSeqID, req.NkpSeqID, "", now)
	if o == nil {
		controlFail(w, http.StatusNotFound, "not_found", "no such order")
		return
	}
	if err := s.settlePaymentLocked(o, req.Result == ResultPaid, req.BankCode, req.BankMessage, now); err != nil {
		controlFail(w, http.StatusConflict, "conflict", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, o.view(s.baseURL(r)))
}

func (s *Server) serveSettleRefund(w http.ResponseWriter, r *http.Request) {
	var req SettleRequest
	if !decodeControl(w, r, &req) {
		return
	}
	if req.Result != ResultSucceeded && req.Result != ResultFailed {
		controlFail(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("result must be %q or %q", ResultSucceeded, ResultFailed))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rf := s.findRefundLocked(req.HuifuID, req.ReqDate, req.ReqSeqID, req.NkpSeqID)
	if rf == nil {
		controlFail(w, http.StatusNotFound, "not_found", "no such refund")
		return
	}
	if err := s.settleRefundLocked(rf, req.Result == ResultSucceeded, req.BankCode, req.BankMessage, s.now()); err != nil {
		controlFail(w, http.StatusConflict, "conflict", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, rf.view())
}

func (s *Server) serveOrders(w http.ResponseWriter, r *http.Request) {
	f := filterOf(r)
	base := s.baseURL(r)
	s.mu.Lock()
	now := s.now()
	out := []Order{}
	for _, o := range s.l.orderList {
		if f.match(o.huifu, o.date, o.seq, o.nkpSeqID, "") {
			expireLocked(o, now)
			out = append(out, o.view(base))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) serveRefunds(w http.ResponseWriter, r *http.Request) {
	f := filterOf(r)
	s.mu.Lock()
	out := []Refund{}
	for _, rf := range s.l.refundList {
		if f.match(rf.huifu, rf.date, rf.seq, rf.nkpSeqID, "") {
			out = append(out, rf.view())
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// getSetting answers a GET with the run-time setting *v.
func getSetting[T any](s *Server, v *T) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		cur := *v
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, cur)
	}
}

// putSetting answers a PUT by validating the body and replacing *v with
// it; an invalid body changes nothing.
func putSetting[T any, P interface {
	*T
	Validate() error
}](s *Server, v *T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var next T
		if !decodeControl(w, r, &next) {
			return
		}
		if err := P(&next).Validate(); err != nil {
			controlFail(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
		s.mu.Lock()
		*v = next
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, next)
	}
}

func (s *Server) serveNotifications(w http.ResponseWriter, r *http.Request) {
	f := filterOf(r)
	s.mu.Lock()
	out := []NotificationRecord{}
	for _, n := range s.l.notes {
		if f.match(n.HuifuID, n.ReqDate, n.ReqSeqID, "", n.Kind) {
			out = append(out, n.clone())
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) serveMintCode(w http.ResponseWriter, r *http.Request) {
	var req MintCodeRequest
	if !decodeControl(w, r, &req) {
		return
	}
	if _, ok := s.cfg.WeChatApps[req.AppID]; !ok {
		controlFail(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("unknown WeChat app id %q", req.AppID))
		return
	}
	s.mu.Lock()
	c := s.mintCodeLocked(req.AppID, req.User, defaultWeChatScope)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) serveStats(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	st := s.statsLocked(r.URL.Query().Get("huifu_id"), s.now())
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) serveSettleApplication(w http.ResponseWriter, r *http.Request) {
	var req SettleApplicationRequest
	if !decodeControl(w, r, &req) {
		return
	}
	if req.Result != ResultSucceeded && req.Result != ResultFailed {
		controlFail(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("result must be %q or %q", ResultSucceeded, ResultFailed))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.l.apps[req.ApplyNo]
	if a == nil {
		controlFail(w, http.StatusNotFound, "not_found", "no such application")
		return
	}
	s.reviewLocked(a, s.now())
	if a.stat != nkp.StatProcessing {
		controlFail(w, http.StatusConflict, "conflict", "application is already decided (apply_stat "+a.stat+")")
		return
	}
	a.stat = nkp.StatFailure
	if req.Result == ResultSucceeded {
		a.stat = nkp.StatSuccess
	}
	writeJSON(w, http.StatusOK, a.view())
}
