package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// Descriptions of the errors that refuse a request before it reaches an
// endpoint. They all come with resp_code 10000000 (nkp.CodeBadParams).
const (
	DescUnknownSysID = "unknown sys_id"
	DescBadSignature = "signature verification failed"
)

// apiError refuses a call with a resp_code and a resp_desc.
type apiError struct {
	status int // HTTP status; 200 for business refusals
	code   string
	desc   string
	extra  map[string]any // more fields of the answer, such as bank_code
}

func (e *apiError) Error() string { return e.code + " " + e.desc }

func errParams(format string, args ...any) *apiError {
	return &apiError{status: http.StatusOK, code: nkp.CodeBadParams, desc: fmt.Sprintf(format, args...)}
}

func errDuplicate(seq string) *apiError {
	return &apiError{status: http.StatusOK, code: nkp.CodeDuplicate, desc: fmt.Sprintf("duplicate transaction: req_seq_id %s was already used today by this merchant", seq)}
}

func errNotFound(what string) *apiError {
	return &apiError{status: http.StatusOK, code: nkp.CodeNotFound, desc: what + " not found"}
}

func errSystem(desc string) *apiError {
	return &apiError{status: http.StatusInternalServerError, code: nkp.CodeSystem, desc: desc}
}

func errHTTP(status int, desc string) *apiError {
	return &apiError{status: status, code: nkp.CodeBadParams, desc: desc}
}

// apiCall is one authenticated call, with data already in NKP names.
type apiCall struct {
	path  string
	sysID string
	data  map[string]any
	now   time.Time
	base  string
}

type apiHandler func(c *apiCall) (map[string]any, error)

func (s *Server) apiRoutes() map[string]apiHandler {
	return map[string]apiHandler{
		nkp.PathJSPay:          s.jspay,
		nkp.PathPaymentQuery:   s.paymentQuery,
		nkp.PathClose:          s.closeOrder,
		nkp.PathCloseQuery:     s.closeQuery,
		nkp.PathRefund:         s.refund,
		nkp.PathRefundQuery:    s.refundQuery,
		nkp.PathFileQuery:      s.fileQuery,
		nkp.PathMerchantEnt:    s.merchantEnt,
		nkp.PathMerchantIndv:   s.merchantIndv,
		nkp.PathMerchantStatus: s.merchantStatus,
		nkp.PathMerchantQuery:  s.merchantQuery,
		nkp.PathBusiOpen:       s.busiOpen,
		nkp.PathRealname:       s.realname,
		nkp.PathRealnameQuery:  s.realnameQuery,
	}
}

// serveAPI handles every request under /v2/: it checks the method, the
// size, the envelope and the signature, then runs the endpoint and answers
// in the signed upstream envelope.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	handler, known := s.routes[r.URL.Path]
	var body []byte
	var err error
	if known && r.Method == http.MethodPost {
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	}
	var env nkp.Request
	var data map[string]any
	if err == nil && body != nil {
		env, data, err = nkp.DecodeRequest(body)
	}
	huifu, _ := data["huifu_id"].(string)
	if huifu == "" {
		huifu, _ = data["upper_huifu_id"].(string)
	}
	s.countRequest(r.URL.Path, huifu)

	var maxErr *http.MaxBytesError
	switch {
	case !known:
		s.writeAPI(w, http.StatusNotFound, errorData(errHTTP(http.StatusNotFound, "unknown API path "+r.URL.Path), nil), apiFault{})
		return
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		s.writeAPI(w, http.StatusMethodNotAllowed, errorData(errHTTP(http.StatusMethodNotAllowed, "method "+r.Method+" not allowed, use POST"), nil), apiFault{})
		return
	case errors.As(err, &maxErr):
		s.writeAPI(w, http.StatusRequestEntityTooLarge, errorData(errHTTP(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", s.cfg.MaxBodyBytes)), nil), apiFault{})
		return
	case err != nil:
		s.writeAPI(w, http.StatusBadRequest, errorData(errHTTP(http.StatusBadRequest, "malformed request: "+err.Error()), nil), apiFault{})
		return
	}
	if env.SysID == "" {
		s.writeAPI(w, http.StatusBadRequest, errorData(errHTTP(http.StatusBadRequest, "sys_id is required"), data), apiFault{})
		return
	}
	pub, ok := s.cfg.Merchants[env.SysID]
	if !ok {
		s.log.Info("sandbox refused a request from an unknown sys_id", "path", r.URL.Path, "sys_id", env.SysID)
		s.writeAPI(w, http.StatusOK, errorData(errParams("%s %s", DescUnknownSysID, env.SysID), data), apiFault{})
		return
	}
	if err := nkp.VerifyRequest(pub, env); err != nil {
		s.log.Info("sandbox refused a request with a bad signature", "path", r.URL.Path, "sys_id", env.SysID)
		s.writeAPI(w, http.StatusOK, errorData(errParams("%s", DescBadSignature), data), apiFault{})
		return
	}
	if env.ProductID == "" {
		s.writeAPI(w, http.StatusOK, errorData(errParams("product_id is required"), data), apiFault{})
		return
	}
	nkp.ProfileDouGong.FromWire(data)

	fault := s.drawAPIFault(r.URL.Path)
	if fault.latency > 0 && !sleep(r.Context(), fault.latency) {
		return
	}
	if fault.status500 && fault.before {
		s.writeAPI(w, http.StatusInternalServerError, errorData(errSystem("system busy, try again later"), data), apiFault{})
		return
	}
	call := &apiCall{path: r.URL.Path, sysID: env.SysID, data: data, now: s.now(), base: s.baseURL(r)}
	out, err := handler(call)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			s.log.Error("sandbox endpoint failed", "path", r.URL.Path, "error", err)
			ae = errSystem("system error")
		}
		out = errorData(ae, data)
		if fault.status500 {
			s.writeAPI(w, http.StatusInternalServerError, errorData(errSystem("system busy, try again later"), data), apiFault{})
			return
		}
		s.writeAPI(w, ae.status, out, fault)
		return
	}
	if fault.status500 {
		s.writeAPI(w, http.StatusInternalServerError, errorData(errSystem("system busy, try again later"), data), apiFault{})
		return
	}
	s.writeAPI(w, http.StatusOK, out, fault)
}

func (s *Server) countRequest(path, huifu string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.l.requests[huifu]
	if m == nil {
		m = map[string]int{}
		s.l.requests[huifu] = m
	}
	m[path]++
}

// errorData is the data of an error answer: resp_code, resp_desc and, when
// the request carried them, its identifying fields.
func errorData(e *apiError, req map[string]any) map[string]any {
	out := map[string]any{"resp_code": e.code, "resp_desc": e.desc}
	for k, v := range e.extra {
		out[k] = v
	}
	for _, k := range []string{"huifu_id", "req_date", "req_seq_id"} {
		if v, ok := req[k].(string); ok && v != "" {
			out[k] = v
		}
	}
	return out
}

// apiFault is what the fault injection decided for one answer.
type apiFault struct {
	latency   time.Duration
	status500 bool
	before    bool
	badSign   bool
	unsigned  bool
}

func (s *Server) drawAPIFault(path string) apiFault {
	s.mu.Lock()
	f := s.faults.API
	s.mu.Unlock()
	if len(f.Paths) > 0 && !slices.Contains(f.Paths, path) {
		return apiFault{}
	}
	n := strconv.FormatUint(s.apiSeq.Add(1), 10)
	return apiFault{
		latency:   time.Duration(f.LatencyMS) * time.Millisecond,
		status500: s.hit(f.Status500Rate, "api", "status500", n),
		before:    f.BeforeProcessing,
		badSign:   s.hit(f.BadSignatureRate, "api", "bad_signature", n),
		unsigned:  s.hit(f.UnsignedRate, "api", "unsigned", n),
	}
}

// writeAPI signs data in the configured dialect and writes it in the
// upstream envelope, applying the signature faults.
func (s *Server) writeAPI(w http.ResponseWriter, status int, data map[string]any, f apiFault) {
	s.cfg.Profile.ToWire(data)
	canon, err := nkp.Canonicalize(data)
	var body []byte
	if err == nil {
		switch {
		case f.unsigned:
			body = append(append([]byte(`{"data":`), canon...), '}')
		case f.badSign:
			body, err = nkp.EncodeRawResponse(s.cfg.WeChatKey, canon)
		default:
			body, err = nkp.EncodeRawResponse(s.signingKey(), canon)
		}
	}
	if err != nil {
		s.log.Error("sandbox could not sign an answer", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// form reads the fields of a request's data. The first problem found is
// kept in err and every later read is skipped, so an answer names one
// field.
type form struct {
	data map[string]any
	err  *apiError
}

// opt returns the string field name, "" when absent; a field of another
// type is an error.
func (f *form) opt(name string) string {
	if f.err != nil {
		return ""
	}
	v, ok := f.data[name]
	if !ok || v == nil {
		return ""
	}
	str, ok := v.(string)
	if !ok {
		f.err = errParams("%s must be a string", name)
		return ""
	}
	return str
}

// req returns the string field name and records an error when it is
// absent or empty.
func (f *form) req(name string) string {
	v := f.opt(name)
	if f.err == nil && strings.TrimSpace(v) == "" {
		f.err = errParams("%s is required", name)
	}
	return v
}

// date returns a yyyyMMdd field.
func (f *form) date(name string, required bool) string {
	var v string
	if required {
		v = f.req(name)
	} else {
		v = f.opt(name)
	}
	if f.err == nil && v != "" {
		if _, err := time.ParseInLocation(nkp.DateLayout, v, cst()); err != nil || len(v) != 8 {
			f.err = errParams("%s must be a date in yyyyMMdd form", name)
		}
	}
	return v
}

var seqPattern = regexp.MustCompile(`^[A-Za-z0-9_\-]{1,64}$`)

// seq returns a required request serial: 1 to 64 letters, digits, "_" or
// "-".
func (f *form) seq(name string) string {
	v := f.req(name)
	if f.err == nil && !seqPattern.MatchString(v) {
		f.err = errParams("%s must be 1 to 64 letters, digits, '_' or '-'", name)
	}
	return v
}

// oneOf records an error unless at least one of names has a value.
func (f *form) oneOf(names ...string) {
	if f.err != nil {
		return
	}
	for _, n := range names {
		if f.opt(n) != "" {
			return
		}
	}
	if f.err == nil {
		f.err = errParams("one of %s is required", strings.Join(names, ", "))
	}
}

var amountPattern = regexp.MustCompile(`^(0|[1-9][0-9]{0,14})\.[0-9]{2}$`)

// amount returns a required yuan amount: a JSON string with exactly two
// decimals, at least 0.01.
func (f *form) amount(name string) nkp.Fen {
	if f.err != nil {
		return 0
	}
	if v, ok := f.data[name]; ok && v != nil {
		if _, isStr := v.(string); !isStr {
			f.err = errParams("%s must be a string of yuan with two decimals, such as \"0.10\"", name)
			return 0
		}
	}
	v := f.req(name)
	if f.err != nil {
		return 0
	}
	if !amountPattern.MatchString(v) {
		f.err = errParams("%s %q is not a yuan amount with exactly two decimals, such as \"0.10\"", name, v)
		return 0
	}
	amt, err := nkp.ParseYuan(v)
	if err != nil {
		f.err = errParams("%s: %v", name, err)
		return 0
	}
	if amt < 1 {
		f.err = errParams("%s must be at least 0.01", name)
		return 0
	}
	return amt
}

// jsonObject returns an optional field that must be a JSON object carried
// as a string, as nested objects travel on the wire.
func (f *form) jsonObject(name string) (string, map[string]any) {
	if f.err != nil {
		return "", nil
	}
	if v, ok := f.data[name]; ok && v != nil {
		if _, isStr := v.(string); !isStr {
			f.err = errParams("%s must be a JSON object sent as a string", name)
			return "", nil
		}
	}
	v := f.opt(name)
	if v == "" {
		return "", nil
	}
	m, err := nkp.DecodeObject([]byte(v))
	if err != nil {
		f.err = errParams("%s must be a JSON object sent as a string", name)
		return "", nil
	}
	return v, m
}

// jsonList checks an optional field that must be a JSON array or object
// carried as a string, such as wx_conf_list.
func (f *form) jsonList(name string) {
	if f.err != nil {
		return
	}
	if v, ok := f.data[name]; ok && v != nil {
		if _, isStr := v.(string); !isStr {
			f.err = errParams("%s must be JSON sent as a string", name)
			return
		}
	}
	v := strings.TrimSpace(f.opt(name))
	if v != "" && (!json.Valid([]byte(v)) || (v[0] != '[' && v[0] != '{')) {
		f.err = errParams("%s must be a JSON array or object sent as a string", name)
	}
}

// notifyURL returns an optional notify_url, checked against the upstream's
// rules.
func (f *form) notifyURL(name string, strict bool) string {
	v := f.opt(name)
	if f.err != nil || v == "" {
		return v
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(v) > 512 {
		f.err = errParams("%s must be an absolute http or https URL", name)
		return ""
	}
	if strict {
		if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
			f.err = errParams("%s must not carry a query string", name)
			return ""
		}
		port, err := strconv.Atoi(u.Port())
		if err != nil || port < 8000 || port > 9005 {
			f.err = errParams("%s must name a port between 8000 and 9005", name)
			return ""
		}
	}
	return v
}

// timestamp parses a yyyyMMddHHmmss field in China Standard Time.
func (f *form) timestamp(name string) (time.Time, bool) {
	v := f.opt(name)
	if f.err != nil || v == "" {
		return time.Time{}, false
	}
	t, err := time.ParseInLocation(nkp.TimestampLayout, v, cst())
	if err != nil || len(v) != 14 {
		f.err = errParams("%s must be a time in yyyyMMddHHmmss form", name)
		return time.Time{}, false
	}
	return t, true
}

// encodeNested writes v as a JSON string for a nested field.
func encodeNested(v any) string {
	s, err := nkp.EncodeNested(v)
	if err != nil {
		b, _ := json.Marshal(v)
		return string(b)
	}
	return s
}
