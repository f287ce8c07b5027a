package openapitest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/internal/testenv"
	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/delivery"
)

// runtime is a language runtime that runs one of the thin clients.
type runtime struct {
	name   string
	bin    string
	runner string // in testdata
	client string // the client's file, which the runner loads
	// pkg is the Debian package that installs bin.
	pkg string
}

var runtimes = []runtime{
	{name: "python", bin: "python3", runner: "runner.py", client: filepath.Join(repoRoot, "sdk", "clients", "python", "paysidecar.py"), pkg: "python3"},
	{name: "node", bin: "node", runner: "runner.mjs", client: filepath.Join(repoRoot, "sdk", "clients", "node", "paysidecar.mjs"), pkg: "nodejs"},
	{name: "php", bin: "php", runner: "runner.php", client: filepath.Join(repoRoot, "sdk", "clients", "php", "Paysidecar.php"), pkg: "php-cli and php-curl"},
}

// lookup finds the runtime's binary, skipping the test when it is absent
// (failing instead under CI, which installs every runtime).
func (rt runtime) lookup(t *testing.T) string {
	t.Helper()
	return testenv.LookPath(t, "Debian package "+rt.pkg+"; runs the "+rt.name+" client", rt.bin)
}

// run runs the runtime's runner in mode on input and decodes its output
// into out.
func (rt runtime) run(t *testing.T, bin, mode string, input, out any) {
	t.Helper()
	in, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	// Reading the files the runner loads lets go test's cache notice when
	// they change.
	for _, f := range []string{rt.client, filepath.Join("testdata", rt.runner)} {
		if _, err := os.ReadFile(f); err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
	}
	file := filepath.Join(t.TempDir(), "input.json")
	if err := os.WriteFile(file, in, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, filepath.Join("testdata", rt.runner), rt.client, mode, file)
	// Leave no __pycache__ beside the Python client.
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s runner %s: %v\nstderr:\n%s", rt.name, mode, err, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("%s runner printed no JSON (%v):\n%s\nstderr:\n%s", rt.name, err, stdout.String(), stderr.String())
	}
}

// signV1 computes a Standard Webhooks v1 signature the way the spec
// describes it, independently of the sidecar's code.
func signV1(key []byte, id, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// verifyCase is one webhook delivery a client must accept or refuse.
type verifyCase struct {
	Name      string            `json:"name"`
	Secret    string            `json:"secret"`
	Headers   map[string]string `json:"headers"`
	BodyB64   string            `json:"body_b64"`
	Now       int64             `json:"now"`
	Tolerance int64             `json:"tolerance"`
	// Accept is the expected outcome; it is not sent to the runner.
	Accept bool `json:"-"`
}

type verifyResult struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	EventID string `json:"event_id"`
	Error   string `json:"error"`
}

const eventID = "evt_0c7a2f9d1b3e5a7c9e1f3a5c7e9b1d3f"

// webhookCases builds the deliveries every client is checked against.
func webhookCases(t *testing.T) []verifyCase {
	t.Helper()
	key := []byte("0123456789abcdef-paysidecar-test-key")
	secret := delivery.SecretPrefix + base64.StdEncoding.EncodeToString(key)
	other := delivery.SecretPrefix + base64.StdEncoding.EncodeToString([]byte("another-key-of-sufficient-length"))
	rawSecret := "raw-secret-without-the-prefix-0123"
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	body, err := json.Marshal(client.Event{
		ID: eventID, Type: client.EventPaymentSucceeded, CreatedAt: created,
		Data: client.EventData{Source: "notification", Payment: &client.Payment{
			Object: "payment", ID: "pay_1", Flow: client.FlowAlipayNative, OutTradeNo: "ORDER-1",
			AmountFen: 1999, Description: "测试商品 T-shirt", Status: client.StatusSucceeded, CreatedAt: created,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	now := int64(1735689600)
	ts := strconv.FormatInt(now, 10)
	good := signV1(key, eventID, ts, body)
	// The test's own HMAC must agree with the sidecar's signer.
	if got := delivery.Sign(key, eventID, time.Unix(now, 0), body); got != good {
		t.Fatalf("delivery.Sign = %s, the spec's algorithm gives %s", got, good)
	}
	tampered := bytes.Replace(body, []byte(`"amount_fen":1999`), []byte(`"amount_fen":1`), 1)
	if bytes.Equal(tampered, body) {
		t.Fatal("the tampered body equals the original")
	}
	rawGood := signV1([]byte(rawSecret), eventID, ts, body)
	goodBytes, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(good, "v1,"))
	old := strconv.FormatInt(now-301, 10)
	future := strconv.FormatInt(now+301, 10)
	h := func(id, ts, sig string) map[string]string {
		m := map[string]string{"content-type": "application/json"}
		if id != "" {
			m["webhook-id"] = id
		}
		if ts != "" {
			m["webhook-timestamp"] = ts
		}
		if sig != "" {
			m["webhook-signature"] = sig
		}
		return m
	}
	b64 := base64.StdEncoding.EncodeToString
	cases := []verifyCase{
		{Name: "valid", Secret: secret, Headers: h(eventID, ts, good), BodyB64: b64(body), Accept: true},
		{Name: "header names in other case", Secret: secret, Headers: map[string]string{"Webhook-Id": eventID, "Webhook-Timestamp": ts, "WEBHOOK-SIGNATURE": good}, BodyB64: b64(body), Accept: true},
		{Name: "second of several signatures matches", Secret: secret, Headers: h(eventID, ts, signV1([]byte("rotated-out-old-key-0123456789"), eventID, ts, body)+" "+good), BodyB64: b64(body), Accept: true},
		{Name: "raw secret without whsec_ prefix", Secret: rawSecret, Headers: h(eventID, ts, rawGood), BodyB64: b64(body), Accept: true},
		{Name: "timestamp at the edge of tolerance", Secret: secret, Headers: h(eventID, strconv.FormatInt(now-300, 10), signV1(key, eventID, strconv.FormatInt(now-300, 10), body)), BodyB64: b64(body), Accept: true},
		{Name: "tampered body", Secret: secret, Headers: h(eventID, ts, good), BodyB64: b64(tampered)},
		{Name: "another secret", Secret: other, Headers: h(eventID, ts, good), BodyB64: b64(body)},
		{Name: "another webhook-id", Secret: secret, Headers: h("evt_other", ts, good), BodyB64: b64(body)},
		{Name: "another timestamp", Secret: secret, Headers: h(eventID, strconv.FormatInt(now+1, 10), good), BodyB64: b64(body)},
		{Name: "stale timestamp", Secret: secret, Headers: h(eventID, old, signV1(key, eventID, old, body)), BodyB64: b64(body)},
		{Name: "future timestamp", Secret: secret, Headers: h(eventID, future, signV1(key, eventID, future, body)), BodyB64: b64(body)},
		{Name: "missing signature", Secret: secret, Headers: h(eventID, ts, ""), BodyB64: b64(body)},
		{Name: "missing id", Secret: secret, Headers: h("", ts, good), BodyB64: b64(body)},
		{Name: "unknown version", Secret: secret, Headers: h(eventID, ts, "v2,"+strings.TrimPrefix(good, "v1,")), BodyB64: b64(body)},
		{Name: "truncated signature", Secret: secret, Headers: h(eventID, ts, "v1,"+base64.StdEncoding.EncodeToString(goodBytes[:16])), BodyB64: b64(body)},
		{Name: "signature not base64", Secret: secret, Headers: h(eventID, ts, "v1,!!!"), BodyB64: b64(body)},
	}
	for i := range cases {
		cases[i].Now, cases[i].Tolerance = now, 300
	}
	return cases
}

// TestWebhookCasesAgreeWithTheSidecar checks the expected outcomes against
// the sidecar's own verifier, so the clients are held to the same rules.
func TestWebhookCasesAgreeWithTheSidecar(t *testing.T) {
	for _, c := range webhookCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			hdr := http.Header{}
			for k, v := range c.Headers {
				hdr.Set(k, v)
			}
			body, _ := base64.StdEncoding.DecodeString(c.BodyB64)
			err := delivery.VerifyAt(c.Secret, hdr, body, time.Duration(c.Tolerance)*time.Second, time.Unix(c.Now, 0))
			if (err == nil) != c.Accept {
				t.Errorf("delivery.VerifyAt: err = %v, want accept = %v", err, c.Accept)
			}
		})
	}
}

func TestClientsVerifyWebhooks(t *testing.T) {
	cases := webhookCases(t)
	for _, rt := range runtimes {
		t.Run(rt.name, func(t *testing.T) {
			bin := rt.lookup(t)
			var results []verifyResult
			rt.run(t, bin, "verify", cases, &results)
			if len(results) != len(cases) {
				t.Fatalf("got %d results for %d cases", len(results), len(cases))
			}
			for i, c := range cases {
				r := results[i]
				if r.Name != c.Name {
					t.Fatalf("result %d is for %q, want %q", i, r.Name, c.Name)
				}
				switch {
				case c.Accept && !r.OK:
					t.Errorf("%s: refused a valid delivery: %s", c.Name, r.Error)
				case c.Accept && r.EventID != eventID:
					t.Errorf("%s: parsed event id %q, want %q", c.Name, r.EventID, eventID)
				case !c.Accept && r.OK:
					t.Errorf("%s: accepted a delivery it must refuse", c.Name)
				}
			}
		})
	}
}

// recorded is one request the stub API received.
type recorded struct {
	Method, EscapedPath string
	Header              http.Header
	Body                []byte
}

// stubAPI answers the calls of the clients' scenario the way the sidecar
// would and records them.
type stubAPI struct {
	mu       sync.Mutex
	requests []recorded
	created  bool
}

func (s *stubAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.requests = append(s.requests, recorded{Method: r.Method, EscapedPath: r.URL.EscapedPath(), Header: r.Header.Clone(), Body: body})
	first := !s.created
	if r.Method == http.MethodPost && r.URL.Path == "/v1/payments" {
		s.created = true
	}
	s.mu.Unlock()
	answer := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/payments" && first:
		answer(http.StatusCreated, stubPayment("pay_1"))
	case r.Method == http.MethodPost && r.URL.Path == "/v1/payments":
		answer(http.StatusConflict, client.ErrorBody{Error: client.ErrorDetail{Code: "out_trade_no_conflict", Message: "out_trade_no is already used", Field: "out_trade_no"}})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/payments/"):
		answer(http.StatusOK, stubPayment(strings.TrimPrefix(r.URL.Path, "/v1/payments/")))
	case r.Method == http.MethodPost && r.URL.Path == "/v1/checkouts":
		answer(http.StatusCreated, stubCheckout())
	case r.Method == http.MethodPost && r.URL.Path == "/v1/checkouts/chk_1/pay":
		answer(http.StatusCreated, stubPayment("pay_2"))
	case r.Method == http.MethodGet && r.URL.Path == "/v1/checkouts/chk_1":
		answer(http.StatusOK, stubCheckout())
	case r.Method == http.MethodPost && r.URL.Path == "/v1/payments/pay_1/refunds":
		answer(http.StatusCreated, client.Refund{Object: "refund", ID: "re_1", PaymentID: "pay_1", OutRefundNo: "REFUND-1", AmountFen: 500, Status: client.StatusProcessing})
	default:
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "bad gateway\n")
	}
}

func stubPayment(id string) client.Payment {
	return client.Payment{
		Object: "payment", ID: id, Flow: client.FlowAlipayNative, OutTradeNo: "ORDER-1", AmountFen: 1999,
		Description: "测试商品 T-shirt", Status: client.StatusProcessing,
		PayParams: json.RawMessage(`{"qr_code":"http://127.0.0.1:8900/qr/abc","deep_link":"alipays://platformapi/startapp?saId=10000007&qrcode=http%3A%2F%2F127.0.0.1%3A8900%2Fqr%2Fabc"}`),
	}
}

func stubCheckout() client.Checkout {
	return client.Checkout{
		Object: "checkout", ID: "chk_1", Flow: "wechat-miniapp", OutTradeNo: "ORDER-2", AmountFen: 990, Description: "茶",
		Status: "open", Query: "checkout=chk_1", Links: client.CheckoutLinks{URLLink: "https://wxaurl.cn/abc"},
	}
}

type failure struct {
	Status int    `json:"status"`
	Code   string `json:"code"`
	Field  string `json:"field"`
}

type scenarioResult struct {
	Created  client.Payment  `json:"created"`
	Fetched  client.Payment  `json:"fetched"`
	Refund   client.Refund   `json:"refund"`
	Conflict failure         `json:"conflict"`
	Gateway  failure         `json:"gateway"`
	Checkout client.Checkout `json:"checkout"`
	Paid     client.Payment  `json:"paid"`
	Checked  client.Checkout `json:"checked"`
}

func TestClientsCallTheAPI(t *testing.T) {
	payment := client.CreatePaymentRequest{
		Flow: client.FlowAlipayNative, OutTradeNo: "ORDER-1", AmountFen: 1999, Description: "测试商品 T-shirt",
		Metadata: map[string]string{"cart": "42"},
	}
	refund := client.CreateRefundRequest{OutRefundNo: "REFUND-1", AmountFen: 500, Reason: "尺码不合适"}
	checkout := client.CreateCheckoutRequest{Flow: "wechat-miniapp", OutTradeNo: "ORDER-2", AmountFen: 990, Description: "茶", ExpiresInSeconds: 900}
	pay := client.PayCheckoutRequest{Code: "code-1"}
	const token = "tok-123"
	for _, rt := range runtimes {
		t.Run(rt.name, func(t *testing.T) {
			bin := rt.lookup(t)
			stub := &stubAPI{}
			srv := httptest.NewServer(stub)
			defer srv.Close()
			var got scenarioResult
			rt.run(t, bin, "calls", map[string]any{
				"base_url": srv.URL + "/", "token": token, "payment": payment, "refund": refund,
				"idempotency_key": "idem-1", "refund_key": "idem-2", "odd_id": "pay 1/2",
				"checkout": checkout, "checkout_key": "idem-3", "pay": pay,
			}, &got)

			if got.Created.ID != "pay_1" || got.Created.AmountFen != 1999 || got.Created.Description != payment.Description {
				t.Errorf("created = %+v", got.Created)
			}
			if !json.Valid(got.Created.PayParams) || !strings.Contains(string(got.Created.PayParams), "alipays://platformapi/startapp") {
				t.Errorf("created.pay_params = %s", got.Created.PayParams)
			}
			if got.Fetched.ID != "pay 1/2" {
				t.Errorf("fetched id = %q, want the id with a space and a slash", got.Fetched.ID)
			}
			if got.Refund.ID != "re_1" || got.Refund.AmountFen != 500 {
				t.Errorf("refund = %+v", got.Refund)
			}
			if want := (failure{http.StatusConflict, "out_trade_no_conflict", "out_trade_no"}); got.Conflict != want {
				t.Errorf("conflict error = %+v, want %+v", got.Conflict, want)
			}
			if want := (failure{Status: http.StatusBadGateway, Code: "http_502"}); got.Gateway != want {
				t.Errorf("error without an error body = %+v, want %+v", got.Gateway, want)
			}
			if got.Checkout.ID != "chk_1" || got.Checkout.Links.URLLink != "https://wxaurl.cn/abc" || got.Paid.ID != "pay_2" || got.Checked.Query != "checkout=chk_1" {
				t.Errorf("checkout = %+v, paid %+v, checked %+v", got.Checkout, got.Paid, got.Checked)
			}

			stub.mu.Lock()
			reqs := stub.requests
			stub.mu.Unlock()
			want := []struct {
				method, path, idemKey string
				body                  any
			}{
				{http.MethodPost, "/v1/payments", "idem-1", &payment},
				{http.MethodGet, "/v1/payments/pay%201%2F2", "", nil},
				{http.MethodPost, "/v1/payments/pay_1/refunds", "idem-2", &refund},
				{http.MethodPost, "/v1/payments", "", &payment},
				{http.MethodGet, "/v1/refunds/re_gateway", "", nil},
				{http.MethodPost, "/v1/checkouts", "idem-3", &checkout},
				{http.MethodPost, "/v1/checkouts/chk_1/pay", "", &pay},
				{http.MethodGet, "/v1/checkouts/chk_1", "", nil},
			}
			if len(reqs) != len(want) {
				t.Fatalf("the client sent %d requests, want %d: %+v", len(reqs), len(want), reqs)
			}
			for i, w := range want {
				r := reqs[i]
				if r.Method != w.method || r.EscapedPath != w.path {
					t.Errorf("request %d = %s %s, want %s %s", i, r.Method, r.EscapedPath, w.method, w.path)
				}
				if got := r.Header.Get("Authorization"); got != "Bearer "+token {
					t.Errorf("request %d Authorization = %q", i, got)
				}
				if got := r.Header.Get("Idempotency-Key"); got != w.idemKey {
					t.Errorf("request %d Idempotency-Key = %q, want %q", i, got, w.idemKey)
				}
				if w.body == nil {
					if len(r.Body) != 0 {
						t.Errorf("request %d has a body: %s", i, r.Body)
					}
					continue
				}
				if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("request %d Content-Type = %q", i, ct)
				}
				// Decode strictly into a fresh value of the same type, as the
				// sidecar does, and compare with what was meant.
				fresh := newOf(w.body)
				dec := json.NewDecoder(bytes.NewReader(r.Body))
				dec.DisallowUnknownFields()
				if err := dec.Decode(fresh); err != nil {
					t.Errorf("request %d body %s: %v", i, r.Body, err)
					continue
				}
				if a, b := mustJSON(t, fresh), mustJSON(t, w.body); a != b {
					t.Errorf("request %d body = %s, want %s", i, a, b)
				}
			}
		})
	}
}

func newOf(v any) any {
	switch v.(type) {
	case *client.CreatePaymentRequest:
		return &client.CreatePaymentRequest{}
	case *client.CreateRefundRequest:
		return &client.CreateRefundRequest{}
	case *client.CreateCheckoutRequest:
		return &client.CreateCheckoutRequest{}
	case *client.PayCheckoutRequest:
		return &client.PayCheckoutRequest{}
	}
	panic("unexpected body type")
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
