package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// The seed's onboarding, business-opening and real-name endpoints go
// through the passthrough with an empty allow-list, against the sandbox:
// a service provider onboards an enterprise and an individual merchant,
// follows the onboarding, opens business and applies for WeChat and Alipay
// real-name authorization. Any other path is still refused and never
// reaches the upstream.
func TestMerchantEndpointsNeedNoAllowList(t *testing.T) {
	sb := sandboxtest.Start(t)
	s, _, _ := testServer(t)
	s.upstream = sb.NKPClient()
	s.SetPassthrough(nil)
	h := s.Handler()
	call := func(path string, data map[string]any) (int, map[string]any) {
		t.Helper()
		body, _ := json.Marshal(data)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/upstream"+path, strings.NewReader(string(body))))
		var out struct {
			Data  map[string]any `json:"data"`
			Error *struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s: answer %q: %v", path, w.Body, err)
		}
		if w.Code == http.StatusOK && out.Data == nil {
			t.Fatalf("%s: 200 without data: %s", path, w.Body)
		}
		if w.Code == http.StatusForbidden && (out.Error == nil || out.Error.Code != CodePathNotAllowed) {
			t.Fatalf("%s: 403 for another reason: %s", path, w.Body)
		}
		return w.Code, out.Data
	}
	accepted := func(path string, out map[string]any) {
		t.Helper()
		if code, _ := out["resp_code"].(string); !(nkp.Result{RespCode: code}).Accepted() {
			t.Fatalf("%s: upstream answered %v", path, out)
		}
	}

	// Onboarding names the service provider; the passthrough adds no
	// huifu_id of its own to it.
	status, ent := call(nkp.PathMerchantEnt, map[string]any{
		"upper_huifu_id": sb.HuifuID, "reg_name": "Sandbox Trading Co.", "license_code": "91310000MA1FL0000X",
		"legal_name": "Zhang San", "contact_mobile_no": "13800000000",
	})
	if status != http.StatusOK {
		t.Fatalf("enterprise onboarding answered %d", status)
	}
	accepted(nkp.PathMerchantEnt, ent)
	status, indv := call(nkp.PathMerchantIndv, map[string]any{
		"upper_huifu_id": sb.HuifuID, "name": "Li Si", "cert_no": "110101199003070000", "mobile_no": "13900000000",
	})
	if status != http.StatusOK {
		t.Fatalf("individual onboarding answered %d", status)
	}
	accepted(nkp.PathMerchantIndv, indv)
	huifu, _ := ent["huifu_id"].(string)
	if huifu == "" || huifu == indv["huifu_id"] || huifu == sb.HuifuID {
		t.Fatalf("onboarding gave huifu_ids %v and %v", ent["huifu_id"], indv["huifu_id"])
	}

	_, st := call(nkp.PathMerchantStatus, map[string]any{"huifu_id": huifu})
	accepted(nkp.PathMerchantStatus, st)
	if st["apply_no"] != ent["apply_no"] || st["apply_stat"] != nkp.StatProcessing {
		t.Fatalf("onboarding status %v, want apply %v processing", st, ent["apply_no"])
	}
	// Business needs a finished onboarding, as upstream.
	applyNo, _ := ent["apply_no"].(string)
	if _, err := sb.Control.SettleApplication(context.Background(), applyNo, sandbox.ResultSucceeded); err != nil {
		t.Fatal(err)
	}
	_, open := call(nkp.PathBusiOpen, map[string]any{"huifu_id": huifu})
	accepted(nkp.PathBusiOpen, open)
	for _, way := range []string{"W", "A"} {
		_, rn := call(nkp.PathRealname, map[string]any{"huifu_id": huifu, "pay_way": way})
		accepted(nkp.PathRealname, rn)
		_, q := call(nkp.PathRealnameQuery, map[string]any{"huifu_id": huifu, "pay_way": way})
		accepted(nkp.PathRealnameQuery, q)
		if q["apply_no"] != rn["apply_no"] || q["pay_way"] != way {
			t.Fatalf("real-name status %v, want application %v", q, rn["apply_no"])
		}
	}
	_, details := call(nkp.PathMerchantQuery, map[string]any{"huifu_id": huifu})
	accepted(nkp.PathMerchantQuery, details)
	if details["audit_stat"] != nkp.StatSuccess || details["busi_open_stat"] != nkp.StatProcessing ||
		details["wx_realname_stat"] != nkp.StatProcessing || details["ali_realname_stat"] != nkp.StatProcessing {
		t.Fatalf("merchant details %v", details)
	}
	for _, p := range nkp.MerchantPaths {
		if n := sb.Stats(t, "").Requests[p]; n == 0 {
			t.Errorf("%s never reached the upstream", p)
		}
	}

	// Everything else stays behind the list.
	before := sb.Stats(t, "").Requests
	for _, p := range []string{nkp.PathJSPay, nkp.PathRefund, nkp.PathFileQuery, "/v2/merchant/busi/modify"} {
		if status, _ := call(p, map[string]any{}); status != http.StatusForbidden {
			t.Errorf("%s answered %d with an empty allow-list, want 403", p, status)
		}
	}
	after := sb.Stats(t, "").Requests
	for _, p := range []string{nkp.PathJSPay, nkp.PathRefund, nkp.PathFileQuery} {
		if after[p] != before[p] {
			t.Errorf("a refused call to %s reached the upstream", p)
		}
	}
}
