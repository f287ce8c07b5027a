package nkp

import (
	"context"
	"crypto/rsa"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// upstream is an httptest server that speaks the protocol with the
// package's own envelopes. It records the last request it received.
type upstream struct {
	t       *testing.T
	srv     *httptest.Server
	key     *rsa.PrivateKey
	merch   *rsa.PublicKey
	handler func(w http.ResponseWriter, r *http.Request, data map[string]any)

	mu       sync.Mutex
	lastPath string
	lastBody []byte
}

func newUpstream(t *testing.T, handler func(w http.ResponseWriter, r *http.Request, data map[string]any)) *upstream {
	t.Helper()
	u := &upstream{t: t, key: upstreamKey(t), merch: merchantPub(t), handler: handler}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	u.mu.Lock()
	u.lastPath, u.lastBody = r.URL.Path, body
	u.mu.Unlock()
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		http.Error(w, "want a JSON POST", http.StatusMethodNotAllowed)
		return
	}
	req, data, err := DecodeRequest(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := VerifyRequest(u.merch, req); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	u.handler(w, r, data)
}

// reply writes a response signed by the upstream key.
func (u *upstream) reply(w http.ResponseWriter, data map[string]any) {
	body, err := EncodeResponse(u.key, data)
	if err != nil {
		u.t.Errorf("encode response: %v", err)
		http.Error(w, "encode", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (u *upstream) last() (string, map[string]any) {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, data, err := DecodeRequest(u.lastBody)
	if err != nil {
		u.t.Fatalf("upstream got an undecodable body: %v", err)
	}
	return u.lastPath, data
}

func (u *upstream) client(p Profile) *Client {
	return &Client{
		BaseURL:     u.srv.URL + "/",
		SysID:       "6666000100000000",
		ProductID:   "PAYUN",
		Profile:     p,
		Key:         merchantKey(u.t),
		UpstreamKey: upstreamPub(u.t),
		HTTP:        u.srv.Client(),
	}
}

func TestClientJSPay(t *testing.T) {
	u := newUpstream(t, nil)
	u.handler = func(w http.ResponseWriter, r *http.Request, data map[string]any) {
		u.reply(w, map[string]any{
			"resp_code": CodeAccepted, "resp_desc": "成功", "trans_stat": StatProcessing,
			"req_seq_id": data["req_seq_id"], "req_date": data["req_date"], "huifu_id": data["huifu_id"],
			"trans_amt": data["trans_amt"], "nkp_seq_id": "002900TOP1A", "pay_info": `{"appId":"wx1","package":"prepay_id=wx2"}`,
		})
	}
	c := u.client(ProfileNKP)
	got, err := c.JSPay(context.Background(), JSPayRequest{
		ReqDate: "20250101", ReqSeqID: "r1", HuifuID: "6666000123456789", GoodsDesc: "测试<&>",
		TradeType: "T_JSAPI", TransAmt: 10, WxData: `{"sub_appid":"wx1","sub_openid":"o1"}`,
	})
	if err != nil {
		t.Fatalf("JSPay: %v", err)
	}
	if got.RespCode != CodeAccepted || !got.Accepted() || got.TransStat != StatProcessing || got.TransAmt != 10 ||
		got.NkpSeqID != "002900TOP1A" || got.ReqSeqID != "r1" || got.PayInfo != `{"appId":"wx1","package":"prepay_id=wx2"}` {
		t.Errorf("JSPay answer = %+v", got)
	}
	path, sent := u.last()
	if path != PathJSPay {
		t.Errorf("path = %q, want %q", path, PathJSPay)
	}
	if sent["trans_amt"] != "0.10" || sent["goods_desc"] != "测试<&>" || sent["wx_data"] != `{"sub_appid":"wx1","sub_openid":"o1"}` {
		t.Errorf("upstream got %v", sent)
	}
	if _, ok := sent["time_expire"]; ok {
		t.Error("an empty optional field was sent")
	}
}

func TestClientDouGongRenames(t *testing.T) {
	u := newUpstream(t, nil)
	u.handler = func(w http.ResponseWriter, r *http.Request, data map[string]any) {
		u.reply(w, map[string]any{
			"resp_code": CodeAccepted, "resp_desc": "ok", "trans_stat": StatSuccess,
			"org_req_date": data["org_req_date"], "org_hf_seq_id": data["org_hf_seq_id"],
			"hf_seq_id": "HF123", "trans_amt": "1.10", "refunded_amt": 0.10,
		})
	}
	tests := []struct {
		profile           Profile
		sentOrg, otherOrg string
	}{
		{ProfileDouGong, "org_hf_seq_id", "org_nkp_seq_id"},
		{ProfileNKP, "org_nkp_seq_id", "org_hf_seq_id"},
	}
	for _, tt := range tests {
		t.Run(string(tt.profile), func(t *testing.T) {
			got, err := u.client(tt.profile).QueryPayment(context.Background(), PaymentQueryRequest{
				HuifuID: "6666000123456789", OrgReqDate: "20250101", OrgNkpSeqID: "HF000",
			})
			if err != nil {
				t.Fatalf("QueryPayment: %v", err)
			}
			_, sent := u.last()
			if sent[tt.sentOrg] != "HF000" {
				t.Errorf("upstream got %v, want %s=HF000", sent, tt.sentOrg)
			}
			if _, ok := sent[tt.otherOrg]; ok {
				t.Errorf("upstream got %s too: %v", tt.otherOrg, sent)
			}
			if tt.profile == ProfileDouGong {
				// The DouGong answer's hf_seq_id and org_hf_seq_id come
				// back under the NKP names.
				if got.NkpSeqID != "HF123" || got.OrgNkpSeqID != "HF000" {
					t.Errorf("answer = %+v, want NkpSeqID HF123 and OrgNkpSeqID HF000", got)
				}
			} else if got.NkpSeqID != "" {
				t.Errorf("NKP profile translated hf_seq_id: %+v", got)
			}
			if got.TransAmt != 110 || got.RefundedAmt != 10 || got.TransStat != StatSuccess {
				t.Errorf("answer = %+v", got)
			}
		})
	}
}

func TestClientCallErrors(t *testing.T) {
	unsigned := func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
		_, _ = io.WriteString(w, `{"data":{"resp_code":"00000000"}}`)
	}
	tests := []struct {
		name       string
		handler    func(u *upstream) func(http.ResponseWriter, *http.Request, map[string]any)
		wantKind   ErrorKind
		wantStatus int
	}{
		{
			name: "HTTP 500",
			handler: func(u *upstream) func(http.ResponseWriter, *http.Request, map[string]any) {
				return func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
					http.Error(w, "boom", http.StatusInternalServerError)
				}
			},
			wantKind: KindStatus, wantStatus: http.StatusInternalServerError,
		},
		{
			name: "HTTP 500 with a signed body",
			handler: func(u *upstream) func(http.ResponseWriter, *http.Request, map[string]any) {
				return func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
					body, _ := EncodeResponse(u.key, map[string]any{"resp_code": CodeSystem})
					w.WriteHeader(http.StatusInternalServerError)
					_, _ = w.Write(body)
				}
			},
			wantKind: KindStatus, wantStatus: http.StatusInternalServerError,
		},
		{
			name: "signed by another key",
			handler: func(u *upstream) func(http.ResponseWriter, *http.Request, map[string]any) {
				return func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
					body, _ := EncodeResponse(merchantKey(u.t), map[string]any{"resp_code": CodeAccepted})
					_, _ = w.Write(body)
				}
			},
			wantKind: KindBadSignature,
		},
		{
			name: "tampered after signing",
			handler: func(u *upstream) func(http.ResponseWriter, *http.Request, map[string]any) {
				return func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
					body, _ := EncodeResponse(u.key, map[string]any{"resp_code": CodeAccepted, "trans_stat": StatFailure})
					_, _ = w.Write([]byte(strings.Replace(string(body), `"F"`, `"S"`, 1)))
				}
			},
			wantKind: KindBadSignature,
		},
		{
			name:     "unsigned",
			handler:  func(*upstream) func(http.ResponseWriter, *http.Request, map[string]any) { return unsigned },
			wantKind: KindBadSignature,
		},
		{
			name: "not JSON",
			handler: func(u *upstream) func(http.ResponseWriter, *http.Request, map[string]any) {
				return func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
					_, _ = io.WriteString(w, `<html>gateway</html>`)
				}
			},
			wantKind: KindDecode,
		},
		{
			name: "too large",
			handler: func(u *upstream) func(http.ResponseWriter, *http.Request, map[string]any) {
				return func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
					u.reply(w, map[string]any{"resp_code": CodeAccepted, "pad": strings.Repeat("x", 2048)})
				}
			},
			wantKind: KindDecode,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUpstream(t, nil)
			u.handler = tt.handler(u)
			c := u.client(ProfileNKP)
			c.MaxResponseBytes = 1024
			out, err := c.Call(context.Background(), PathPaymentQuery, map[string]any{"huifu_id": "h"})
			var ce *CallError
			if !errors.As(err, &ce) {
				t.Fatalf("Call = %v, %v; want a *CallError", out, err)
			}
			if out != nil {
				t.Errorf("Call returned data with its error: %v", out)
			}
			if ce.Kind != tt.wantKind || ce.StatusCode != tt.wantStatus || ce.Path != PathPaymentQuery {
				t.Errorf("CallError = %+v, want kind %s, status %d", ce, tt.wantKind, tt.wantStatus)
			}
			if !ce.Sent() {
				t.Error("Sent() = false for a request that reached the upstream")
			}
			if tt.wantKind == KindBadSignature && !errors.Is(err, ErrBadSignature) {
				t.Errorf("error %v does not wrap ErrBadSignature", err)
			}
		})
	}
}

func TestClientTimeout(t *testing.T) {
	release := make(chan struct{})
	u := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	// Runs before the server's own cleanup closes it.
	t.Cleanup(func() { close(release) })

	t.Run("context deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := u.client(ProfileNKP).Call(ctx, PathJSPay, map[string]any{"a": "b"})
		var ce *CallError
		if !errors.As(err, &ce) || ce.Kind != KindTimeout {
			t.Fatalf("Call error = %v, want kind %s", err, KindTimeout)
		}
		if !ce.Sent() {
			t.Error("Sent() = false after a timeout; the upstream may have acted")
		}
	})
	t.Run("client timeout", func(t *testing.T) {
		c := u.client(ProfileNKP)
		c.Timeout = 100 * time.Millisecond
		_, err := c.Call(context.Background(), PathJSPay, map[string]any{"a": "b"})
		var ce *CallError
		if !errors.As(err, &ce) || ce.Kind != KindTimeout {
			t.Fatalf("Call error = %v, want kind %s", err, KindTimeout)
		}
		if !ce.Sent() {
			t.Error("Sent() = false after a timeout; the upstream may have acted")
		}
	})
	t.Run("HTTP client timeout", func(t *testing.T) {
		c := u.client(ProfileNKP)
		hc := *u.srv.Client()
		hc.Timeout = 100 * time.Millisecond
		c.HTTP = &hc
		_, err := c.Call(context.Background(), PathJSPay, map[string]any{"a": "b"})
		var ce *CallError
		if !errors.As(err, &ce) || ce.Kind != KindTimeout {
			t.Fatalf("Call error = %v, want kind %s", err, KindTimeout)
		}
	})
}

func TestClientTransportAndRequestErrors(t *testing.T) {
	// A listener that is closed at once gives a port that refuses.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c := &Client{BaseURL: url, Key: merchantKey(t), UpstreamKey: upstreamPub(t)}
	_, err := c.Call(context.Background(), PathJSPay, map[string]any{"a": "b"})
	var ce *CallError
	if !errors.As(err, &ce) || ce.Kind != KindTransport {
		t.Fatalf("Call to a closed port = %v, want kind %s", err, KindTransport)
	}

	c = &Client{BaseURL: url, UpstreamKey: upstreamPub(t)}
	_, err = c.Call(context.Background(), PathJSPay, map[string]any{"a": "b"})
	if !errors.As(err, &ce) || ce.Kind != KindRequest || ce.Sent() {
		t.Fatalf("Call without a key = %v, want kind %s and Sent() false", err, KindRequest)
	}
	if !errors.Is(err, ErrBadKey) {
		t.Errorf("error %v does not wrap ErrBadKey", err)
	}

	c = &Client{BaseURL: url, Key: merchantKey(t)}
	err = c.Do(context.Background(), PathJSPay, make(chan int), nil)
	if !errors.As(err, &ce) || ce.Kind != KindRequest {
		t.Fatalf("Do with an unencodable request = %v, want kind %s", err, KindRequest)
	}
}

func TestCallErrorText(t *testing.T) {
	tests := []struct {
		err  *CallError
		want string
	}{
		{&CallError{Path: PathJSPay, Kind: KindStatus, StatusCode: 502, Err: errors.New("Bad Gateway")}, "upstream /v2/trade/payment/jspay: HTTP 502: Bad Gateway"},
		{&CallError{Path: PathJSPay, Kind: KindBadSignature, Err: ErrBadSignature}, "upstream /v2/trade/payment/jspay: bad_signature: bad signature"},
		{&CallError{Path: PathClose, Kind: KindTimeout, Err: context.DeadlineExceeded}, "upstream /v2/trade/payment/scanpay/close: timeout: context deadline exceeded"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
		if !errors.Is(tt.err, tt.err.Err) {
			t.Errorf("%v does not unwrap to %v", tt.err, tt.err.Err)
		}
	}
}

func TestClientTypedCalls(t *testing.T) {
	u := newUpstream(t, nil)
	u.handler = func(w http.ResponseWriter, r *http.Request, data map[string]any) {
		out := map[string]any{"resp_code": CodeAccepted, "resp_desc": "ok", "huifu_id": data["huifu_id"]}
		switch r.URL.Path {
		case PathClose, PathCloseQuery:
			out["trans_stat"], out["org_trans_stat"] = StatSuccess, "C"
		case PathRefund, PathRefundQuery:
			out["ord_amt"], out["trans_stat"] = data["ord_amt"], StatProcessing
		case PathFileQuery:
			out["file_details"] = []any{map[string]any{"download_url": "https://files.example/a.csv", "file_name": "a.csv"}}
			out["task_details"] = []any{map[string]any{"task_stat": "S"}}
		}
		u.reply(w, out)
	}
	c := u.client(ProfileNKP)
	ctx := context.Background()

	cl, err := c.Close(ctx, CloseRequest{ReqDate: "20250101", ReqSeqID: "c1", HuifuID: "h", OrgReqDate: "20250101", OrgReqSeqID: "r1"})
	if err != nil || cl.TransStat != StatSuccess || cl.OrgTransStat != "C" || cl.HuifuID != "h" {
		t.Errorf("Close = %+v, %v", cl, err)
	}
	if p, _ := u.last(); p != PathClose {
		t.Errorf("Close path = %s", p)
	}
	if _, err := c.CloseQuery(ctx, CloseQueryRequest{HuifuID: "h", OrgReqDate: "20250101"}); err != nil {
		t.Errorf("CloseQuery: %v", err)
	}
	if p, _ := u.last(); p != PathCloseQuery {
		t.Errorf("CloseQuery path = %s", p)
	}
	rf, err := c.Refund(ctx, RefundRequest{ReqDate: "20250102", ReqSeqID: "f1", HuifuID: "h", OrdAmt: 5, OrgReqDate: "20250101", OrgReqSeqID: "r1"})
	if err != nil || rf.OrdAmt != 5 || rf.TransStat != StatProcessing {
		t.Errorf("Refund = %+v, %v", rf, err)
	}
	if p, sent := u.last(); p != PathRefund || sent["ord_amt"] != "0.05" {
		t.Errorf("Refund sent %s %v", p, sent)
	}
	if _, err := c.QueryRefund(ctx, RefundQueryRequest{HuifuID: "h", OrgReqDate: "20250102", OrgReqSeqID: "f1"}); err != nil {
		t.Errorf("QueryRefund: %v", err)
	}
	if p, _ := u.last(); p != PathRefundQuery {
		t.Errorf("QueryRefund path = %s", p)
	}
	fq, err := c.FileQuery(ctx, FileQueryRequest{ReqDate: "20250102", ReqSeqID: "q1", HuifuID: "h", FileDate: "20250101", BillType: BillTrade})
	if err != nil || len(fq.FileDetails) != 1 || fq.FileDetails[0].FileName != "a.csv" || len(fq.TaskDetails) != 1 || fq.TaskDetails[0].TaskStat != "S" {
		t.Errorf("FileQuery = %+v, %v", fq, err)
	}
	if p, _ := u.last(); p != PathFileQuery {
		t.Errorf("FileQuery path = %s", p)
	}
}

func TestClientObservesEveryCall(t *testing.T) {
	answer := map[string]any{"resp_code": CodeAccepted}
	status := http.StatusOK
	u := newUpstream(t, nil)
	u.handler = func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
		if status != http.StatusOK {
			http.Error(w, "boom", status)
			return
		}
		u.reply(w, answer)
	}
	type seen struct{ path, outcome string }
	var got []seen
	c := u.client(ProfileNKP)
	c.Observe = func(_ context.Context, path, outcome string, elapsed time.Duration) {
		if elapsed <= 0 {
			t.Errorf("elapsed = %v", elapsed)
		}
		got = append(got, seen{path, outcome})
	}
	ctx := context.Background()
	tests := []struct {
		answer  map[string]any
		status  int
		outcome string
	}{
		{map[string]any{"resp_code": CodeAccepted}, http.StatusOK, OutcomeAccepted},
		{map[string]any{"resp_code": CodeProcessing}, http.StatusOK, OutcomeAccepted},
		{map[string]any{"resp_code": CodeBadParams}, http.StatusOK, OutcomeRejected},
		{map[string]any{"resp_code": CodeDuplicate}, http.StatusOK, OutcomeRejected},
		{nil, http.StatusInternalServerError, string(KindStatus)},
	}
	for _, tt := range tests {
		answer, status = tt.answer, tt.status
		_, _ = c.Call(ctx, PathJSPay, map[string]any{"req_seq_id": "1"})
	}
	if len(got) != len(tests) {
		t.Fatalf("observed %d calls, want %d", len(got), len(tests))
	}
	for i, tt := range tests {
		if got[i] != (seen{PathJSPay, tt.outcome}) {
			t.Errorf("call %d observed as %+v, want %s", i, got[i], tt.outcome)
		}
	}
}
