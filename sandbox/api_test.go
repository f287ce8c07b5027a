package sandbox_test

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

func TestDevKeys(t *testing.T) {
	a, err := sandbox.DevKeys()
	if err != nil {
		t.Fatal(err)
	}
	b, err := sandbox.DevKeys()
	if err != nil {
		t.Fatal(err)
	}
	pairs := map[string][2]sandbox.DevKeyPair{"upstream": {a.Upstream, b.Upstream}, "merchant": {a.Merchant, b.Merchant}, "wechat": {a.WeChat, b.WeChat}}
	seen := map[string]bool{}
	for name, p := range pairs {
		if p[0].PrivateBase64 != p[1].PrivateBase64 || p[0].PublicBase64 != p[1].PublicBase64 {
			t.Errorf("%s: DevKeys is not fixed", name)
		}
		if seen[p[0].PublicBase64] {
			t.Errorf("%s: key reused for another role", name)
		}
		seen[p[0].PublicBase64] = true
		der, err := base64.StdEncoding.DecodeString(p[0].PrivateBase64)
		if err != nil {
			t.Fatalf("%s: private key is not base64: %v", name, err)
		}
		if _, err := x509.ParsePKCS8PrivateKey(der); err != nil {
			t.Errorf("%s: private key is not PKCS#8 DER: %v", name, err)
		}
		pub, err := nkp.ParsePublicKey(p[0].PublicBase64)
		if err != nil || !pub.Equal(&p[0].Private.PublicKey) || !pub.Equal(p[0].Public) {
			t.Errorf("%s: public key does not match the private key (%v)", name, err)
		}
		sig, err := nkp.Sign(p[0].Private, []byte("x"))
		if err != nil || nkp.Verify(p[0].Public, []byte("x"), sig) != nil {
			t.Errorf("%s: sign/verify round trip failed: %v", name, err)
		}
	}
}

// TestAuthentication proves that only a known sys_id with a valid signature
// reaches an endpoint, and that refusals are signed answers with a clear
// description.
func TestAuthentication(t *testing.T) {
	inst, _ := start(t)
	keys := inst.Keys
	wrongKey := keys.WeChat.Private
	tests := []struct {
		name     string
		sysID    string
		product  string
		key      *rsa.PrivateKey
		mutate   func(body []byte) []byte
		wantCode string
		wantDesc string
	}{
		{name: "valid", sysID: sandbox.DevSysID, product: sandbox.DevProductID, key: keys.Merchant.Private, wantCode: nkp.CodeProcessing},
		{name: "unknown sys_id", sysID: "6666999999999999", product: sandbox.DevProductID, key: keys.Merchant.Private, wantCode: nkp.CodeBadParams, wantDesc: sandbox.DescUnknownSysID},
		{name: "wrong key", sysID: sandbox.DevSysID, product: sandbox.DevProductID, key: wrongKey, wantCode: nkp.CodeBadParams, wantDesc: sandbox.DescBadSignature},
		{name: "data changed after signing", sysID: sandbox.DevSysID, product: sandbox.DevProductID, key: keys.Merchant.Private,
			mutate:   func(b []byte) []byte { return bytes.Replace(b, []byte(`"1.00"`), []byte(`"9.00"`), 1) },
			wantCode: nkp.CodeBadParams, wantDesc: sandbox.DescBadSignature},
		{name: "sign removed", sysID: sandbox.DevSysID, product: sandbox.DevProductID, key: keys.Merchant.Private,
			mutate: func(b []byte) []byte {
				var m map[string]json.RawMessage
				_ = json.Unmarshal(b, &m)
				delete(m, "sign")
				out, _ := json.Marshal(m)
				return out
			},
			wantCode: nkp.CodeBadParams, wantDesc: sandbox.DescBadSignature},
		{name: "missing product_id", sysID: sandbox.DevSysID, key: keys.Merchant.Private, wantCode: nkp.CodeBadParams, wantDesc: "product_id"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, err := nkp.EncodeRequest(tc.key, tc.sysID, tc.product, order("AUTH"+string(rune('A'+i))))
			if err != nil {
				t.Fatal(err)
			}
			if tc.mutate != nil {
				body = tc.mutate(body)
			}
			status, data := post(t, inst, nkp.PathJSPay, body)
			if status != http.StatusOK {
				t.Fatalf("HTTP %d", status)
			}
			wantCode(t, data, tc.wantCode, tc.wantDesc)
		})
	}
	// Only the valid request created an order.
	if st := inst.Stats(t, sandbox.DevHuifuID); st.Orders != 1 || st.Requests[nkp.PathJSPay] != len(tests) {
		t.Fatalf("stats = %+v, want 1 order out of %d requests", st, len(tests))
	}
}

// post sends a raw body and returns the HTTP status and the data of the
// answer after checking its signature with the upstream key.
func post(t *testing.T, inst *sandboxtest.Instance, path string, body []byte) (int, map[string]any) {
	t.Helper()
	resp, err := inst.HTTP.Post(inst.URL+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	data, err := nkp.VerifyResponse(inst.Keys.Upstream.Public, raw)
	if err != nil {
		t.Fatalf("answer to %s (HTTP %d) does not verify: %v: %s", path, resp.StatusCode, err, raw)
	}
	m, err := nkp.DecodeObject(data)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, m
}

// TestMalformedRequests proves that bad input gets the upstream's signed
// error shape with a suitable HTTP status and changes nothing.
func TestMalformedRequests(t *testing.T) {
	inst, _ := start(t, sandboxtest.WithConfig(func(c *sandbox.Config) { c.MaxBodyBytes = 4096 }))
	valid, err := nkp.EncodeRequest(inst.Keys.Merchant.Private, sandbox.DevSysID, sandbox.DevProductID, order("MAL1"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		wantDesc   string
	}{
		{"unknown path", "POST", "/v2/trade/nothing", string(valid), 404, "unknown API path"},
		{"wrong method", "GET", nkp.PathJSPay, "", 405, "not allowed"},
		{"empty body", "POST", nkp.PathJSPay, "", 400, "malformed"},
		{"not JSON", "POST", nkp.PathJSPay, "hello", 400, "malformed"},
		{"array", "POST", nkp.PathJSPay, "[1,2]", 400, "malformed"},
		{"data missing", "POST", nkp.PathJSPay, `{"sys_id":"x","sign":"y"}`, 400, "missing data"},
		{"data not an object", "POST", nkp.PathJSPay, `{"sys_id":"x","data":"str","sign":"y"}`, 400, "malformed"},
		{"sys_id a number", "POST", nkp.PathJSPay, `{"sys_id":12,"data":{},"sign":"y"}`, 400, "malformed"},
		{"sys_id missing", "POST", nkp.PathJSPay, `{"data":{"a":"b"},"sign":"y"}`, 400, "sys_id"},
		{"truncated", "POST", nkp.PathJSPay, string(valid[:len(valid)/2]), 400, "malformed"},
		{"too big", "POST", nkp.PathJSPay, `{"sys_id":"` + strings.Repeat("x", 5000) + `"}`, 413, "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, inst.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := inst.HTTP.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("HTTP %d, want %d: %s", resp.StatusCode, tc.wantStatus, raw)
			}
			data, err := nkp.VerifyResponse(inst.Keys.Upstream.Public, raw)
			if err != nil {
				t.Fatalf("error answer is not signed: %v", err)
			}
			m, _ := nkp.DecodeObject(data)
			wantCode(t, m, nkp.CodeBadParams, tc.wantDesc)
		})
	}
	if st := inst.Stats(t, ""); st.Orders != 0 {
		t.Fatalf("malformed requests created %d orders", st.Orders)
	}
}

// TestRandomInputNeverCrashes throws deterministic garbage, near-valid
// envelopes and wrongly typed fields at every endpoint: each answer must be
// a signed upstream error or a signed business answer, never a crash.
func TestRandomInputNeverCrashes(t *testing.T) {
	inst, _ := start(t)
	paths := []string{nkp.PathJSPay, nkp.PathPaymentQuery, nkp.PathClose, nkp.PathCloseQuery, nkp.PathRefund, nkp.PathRefundQuery,
		nkp.PathFileQuery, nkp.PathMerchantEnt, nkp.PathMerchantIndv, nkp.PathMerchantStatus, nkp.PathMerchantQuery,
		nkp.PathBusiOpen, nkp.PathRealname, nkp.PathRealnameQuery}
	values := []any{nil, "", "x", 1, 1.5, -1, true, []any{}, []any{"a"}, map[string]any{}, map[string]any{"a": 1},
		"1e2", "0.001", "20250615", "99999999", "{}", "{", `{"openid":1}`, strings.Repeat("z", 300), "\u0000", "日本"}
	fields := []string{"req_date", "req_seq_id", "huifu_id", "goods_desc", "trade_type", "trans_amt", "ord_amt", "wx_data",
		"alipay_data", "time_expire", "notify_url", "org_req_date", "org_req_seq_id", "org_nkp_seq_id", "org_hf_seq_id",
		"out_ord_id", "bill_type", "file_date", "upper_huifu_id", "pay_way", "apply_no", "reg_name"}
	rng := rand.New(rand.NewPCG(1, 2))
	client := inst.NKPClient()
	for i := 0; i < 150; i++ {
		path := paths[rng.IntN(len(paths))]
		data := map[string]any{}
		for j := rng.IntN(8); j > 0; j-- {
			data[fields[rng.IntN(len(fields))]] = values[rng.IntN(len(values))]
		}
		if rng.IntN(3) == 0 {
			data = with(order("RND"), fields[rng.IntN(len(fields))], values[rng.IntN(len(values))])
		}
		out, err := client.Call(testCtx(t), path, data)
		if err != nil {
			t.Fatalf("iteration %d, %s %v: %v", i, path, data, err)
		}
		if code, _ := out["resp_code"].(string); code == "" || code == nkp.CodeSystem {
			t.Fatalf("iteration %d, %s %v: resp_code %q (%v)", i, path, data, code, out["resp_desc"])
		}
	}
	for i := 0; i < 100; i++ {
		body := make([]byte, rng.IntN(200))
		for j := range body {
			body[j] = byte(rng.IntN(256))
		}
		if rng.IntN(2) == 0 {
			body = append([]byte(`{"sys_id":"`+sandbox.DevSysID+`","data":`), body...)
		}
		status, _ := post(t, inst, paths[rng.IntN(len(paths))], body)
		if status != http.StatusBadRequest && status != http.StatusOK {
			t.Fatalf("garbage %q: HTTP %d", body, status)
		}
	}
}

// FuzzAPI runs random bodies through the handler; the seeds run as part of
// the normal test suite.
func FuzzAPI(f *testing.F) {
	keys, err := sandbox.DevKeys()
	if err != nil {
		f.Fatal(err)
	}
	valid, _ := nkp.EncodeRequest(keys.Merchant.Private, sandbox.DevSysID, sandbox.DevProductID, order("FUZZ"))
	for _, s := range []string{"", "{}", "null", string(valid), `{"sys_id":"a","data":{"trans_amt":1e999}}`, `{"data":{"a":[` + strings.Repeat("[", 500) + `]}}`} {
		f.Add(s)
	}
	srv, err := sandbox.New(sandbox.Config{}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = srv.Close() })
	ts := newLoopback(f, srv.Handler())
	f.Fuzz(func(t *testing.T, body string) {
		resp, err := ts.Client().Post(ts.URL+nkp.PathJSPay, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if _, err := nkp.VerifyResponse(keys.Upstream.Public, raw); err != nil {
			t.Fatalf("HTTP %d answer does not verify: %v", resp.StatusCode, err)
		}
	})
}

// TestDouGongDialect proves that both dialects are accepted on input and
// that answers use the configured one.
func TestDouGongDialect(t *testing.T) {
	inst, _ := start(t, sandboxtest.WithProfile(nkp.ProfileDouGong))
	out := placeOrder(t, inst, order("DG1"))
	seq, _ := out["nkp_seq_id"].(string) // the client translated hf_seq_id back
	if seq == "" {
		t.Fatalf("answer has no serial: %v", out)
	}
	// Raw answer must carry hf_seq_id, not nkp_seq_id.
	body, _ := nkp.EncodeRequest(inst.Keys.Merchant.Private, sandbox.DevSysID, sandbox.DevProductID,
		map[string]any{"huifu_id": sandbox.DevHuifuID, "org_req_date": day0, "org_hf_seq_id": seq})
	_, raw := post(t, inst, nkp.PathPaymentQuery, body)
	wantCode(t, raw, nkp.CodeAccepted, "")
	if raw["hf_seq_id"] != seq || raw["nkp_seq_id"] != nil || raw["org_hf_seq_id"] != seq {
		t.Fatalf("dougong answer = %v, want hf_seq_id %s and no nkp_seq_id", raw, seq)
	}
	// The NKP name is accepted as well.
	body, _ = nkp.EncodeRequest(inst.Keys.Merchant.Private, sandbox.DevSysID, sandbox.DevProductID,
		map[string]any{"huifu_id": sandbox.DevHuifuID, "org_req_date": day0, "org_nkp_seq_id": seq})
	_, raw = post(t, inst, nkp.PathPaymentQuery, body)
	wantCode(t, raw, nkp.CodeAccepted, "")
}
