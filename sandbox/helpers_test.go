package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// t0 is the fixed start of the test clock: 2025-06-15 10:00:00 CST.
var t0 = time.Date(2025, 6, 15, 10, 0, 0, 0, time.FixedZone("CST", 8*3600))

const day0 = "20250615"

// start runs a sandbox on a manual clock at t0.
func start(t *testing.T, opts ...sandboxtest.Option) (*sandboxtest.Instance, *sandboxtest.Clock) {
	t.Helper()
	clock := sandboxtest.NewClock(t0)
	inst := sandboxtest.Start(t, append([]sandboxtest.Option{sandboxtest.WithClock(clock.Now)}, opts...)...)
	return inst, clock
}

func testCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// call sends data to path with the dev merchant's client and returns the
// verified answer, failing the test on a transport or signature error.
func call(t *testing.T, inst *sandboxtest.Instance, path string, data map[string]any) map[string]any {
	t.Helper()
	out, err := inst.NKPClient().Call(testCtx(t), path, data)
	if err != nil {
		t.Fatalf("call %s: %v", path, err)
	}
	return out
}

// wantCode fails the test unless out carries resp_code code and, when
// descPart is not empty, a resp_desc containing it.
func wantCode(t *testing.T, out map[string]any, code, descPart string) {
	t.Helper()
	if out["resp_code"] != code {
		t.Fatalf("resp_code = %v (%v), want %s", out["resp_code"], out["resp_desc"], code)
	}
	if descPart != "" && !strings.Contains(out["resp_desc"].(string), descPart) {
		t.Fatalf("resp_desc = %q, want it to mention %q", out["resp_desc"], descPart)
	}
}

// order returns the data of a valid T_JSAPI order for seq.
func order(seq string) map[string]any {
	return map[string]any{
		"req_date":   day0,
		"req_seq_id": seq,
		"huifu_id":   sandbox.DevHuifuID,
		"goods_desc": "sandbox goods",
		"trade_type": upstream.TradeWeChatJSAPI,
		"trans_amt":  "1.00",
		"wx_data":    `{"sub_appid":"wxsub0001","sub_openid":"oSubUser0001"}`,
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// placeOrder places a valid order and fails the test unless it is accepted.
func placeOrder(t *testing.T, inst *sandboxtest.Instance, data map[string]any) map[string]any {
	t.Helper()
	out := call(t, inst, nkp.PathJSPay, data)
	wantCode(t, out, nkp.CodeProcessing, "")
	return out
}

// received is one notification a receiver got.
type received struct {
	contentType string
	form        url.Values
}

// receiver is a notify_url endpoint whose answers a test programs.
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(n int, w http.ResponseWriter, r *http.Request)
}

// newReceiver starts a receiver; answer gets the 1-based count of the
// request. A nil answer acknowledges everything properly.
func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{answer: answer}
	if rc.answer == nil {
		rc.answer = ack
	}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		rc.mu.Lock()
		rc.got = append(rc.got, received{contentType: r.Header.Get("Content-Type"), form: form})
		n := len(rc.got)
		rc.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		rc.answer(n, w, r)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// ack acknowledges a notification as a correct receiver does.
func ack(_ int, w http.ResponseWriter, r *http.Request) {
	_, _ = io.WriteString(w, nkp.NotifyAck(reqSeqOf(r)))
}

// reqSeqOf reads req_seq_id from the resp_data of a notification request
// whose form was already parsed by the receiver.
func reqSeqOf(r *http.Request) string {
	_ = r.ParseForm()
	var d map[string]any
	_ = json.Unmarshal([]byte(r.PostForm.Get(nkp.FormRespData)), &d)
	s, _ := d["req_seq_id"].(string)
	return s
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// callErr sends data and returns the client error, which the test expects.
func callErr(t *testing.T, c *nkp.Client, path string, data map[string]any) *nkp.CallError {
	t.Helper()
	_, err := c.Call(testCtx(t), path, data)
	var ce *nkp.CallError
	if !errors.As(err, &ce) {
		t.Fatalf("call %s: error = %v, want a *nkp.CallError", path, err)
	}
	return ce
}

// newLoopback serves h on 127.0.0.1 until the test ends.
func newLoopback(tb testing.TB, h http.Handler) *httptest.Server {
	ts := httptest.NewServer(h)
	tb.Cleanup(ts.Close)
	return ts
}
