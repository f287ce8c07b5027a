package sandbox_test

import (
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

func mreq(seq string, kv ...any) map[string]any {
	return with(map[string]any{"req_date": day0, "req_seq_id": seq}, kv...)
}

// TestMerchantLifecycle onboards merchants, opens business and applies for
// real-name authorization, and checks the status queries move from
// processing to success with time, or as a control decides.
func TestMerchantLifecycle(t *testing.T) {
	inst, clock := start(t)
	ent := call(t, inst, nkp.PathMerchantEnt, mreq("M1", "upper_huifu_id", sandbox.DevHuifuID, "reg_name", "Sandbox Shop Ltd",
		"license_code", "91310000MA1FL0000X", "legal_name", "Zhang San", "contact_mobile_no", "13800000000"))
	wantCode(t, ent, nkp.CodeAccepted, "")
	huifu, _ := ent["huifu_id"].(string)
	applyNo, _ := ent["apply_no"].(string)
	if huifu == "" || applyNo == "" || ent["apply_stat"] != nkp.StatProcessing {
		t.Fatalf("onboarding = %v", ent)
	}
	wantCode(t, call(t, inst, nkp.PathMerchantEnt, mreq("M1", "upper_huifu_id", sandbox.DevHuifuID, "reg_name", "X",
		"license_code", "1", "legal_name", "L", "contact_mobile_no", "1")), nkp.CodeDuplicate, "")

	status := func(extra ...any) map[string]any {
		return call(t, inst, nkp.PathMerchantStatus, mreq("MS", append([]any{"huifu_id", huifu}, extra...)...))
	}
	if s := status(); s["apply_stat"] != nkp.StatProcessing || s["apply_no"] != applyNo {
		t.Fatalf("status = %v", s)
	}
	clock.Advance(sandbox.DefaultReviewDelay)
	if s := status(); s["apply_stat"] != nkp.StatSuccess {
		t.Fatalf("status after the review delay = %v", s)
	}

	q := call(t, inst, nkp.PathMerchantQuery, mreq("MQ", "huifu_id", huifu))
	if q["reg_name"] != "Sandbox Shop Ltd" || q["merchant_type"] != "ENT" || q["audit_stat"] != nkp.StatSuccess ||
		q["busi_open_stat"] != nkp.StatInitial || q["wx_realname_stat"] != nkp.StatInitial {
		t.Fatalf("merchant query = %v", q)
	}

	open := call(t, inst, nkp.PathBusiOpen, mreq("MB1", "huifu_id", huifu, "wx_conf_list", `[{"pay_scene":"1"}]`))
	wantCode(t, call(t, inst, nkp.PathBusiOpen, mreq("MB2", "huifu_id", huifu, "wx_conf_list", "{")), nkp.CodeBadParams, "wx_conf_list")
	wantCode(t, open, nkp.CodeProcessing, "")
	openNo := open["apply_no"].(string)
	if s := status("apply_no", openNo); s["apply_stat"] != nkp.StatProcessing || s["apply_type"] != sandbox.ApplyBusiOpen {
		t.Fatalf("busi open status = %v", s)
	}
	if a, err := inst.Control.SettleApplication(testCtx(t), openNo, sandbox.ResultFailed); err != nil || a.ApplyStat != nkp.StatFailure {
		t.Fatalf("settle application = %+v, %v", a, err)
	}
	if s := status("apply_no", openNo); s["apply_stat"] != nkp.StatFailure {
		t.Fatalf("busi open status after the control = %v", s)
	}
	if _, err := inst.Control.SettleApplication(testCtx(t), openNo, sandbox.ResultSucceeded); err == nil {
		t.Fatal("a decided application was decided again")
	}

	for _, payWay := range []string{"W", "A"} {
		rq := call(t, inst, nkp.PathRealnameQuery, mreq("RQ"+payWay, "huifu_id", huifu, "pay_way", payWay))
		if rq["apply_stat"] != nkp.StatInitial || rq["authorize_stat"] != "UNAUTHORIZED" {
			t.Fatalf("real-name before applying = %v", rq)
		}
		rn := call(t, inst, nkp.PathRealname, mreq("RN"+payWay, "huifu_id", huifu, "pay_way", payWay))
		wantCode(t, rn, nkp.CodeProcessing, "")
		if payWay == "W" {
			if _, err := inst.Control.SettleApplication(testCtx(t), rn["apply_no"].(string), sandbox.ResultSucceeded); err != nil {
				t.Fatal(err)
			}
		} else {
			clock.Advance(sandbox.DefaultReviewDelay + time.Second)
		}
		rq = call(t, inst, nkp.PathRealnameQuery, mreq("RQ"+payWay, "huifu_id", huifu, "pay_way", payWay))
		if rq["apply_stat"] != nkp.StatSuccess || rq["authorize_stat"] != "AUTHORIZED" || rq["apply_no"] != rn["apply_no"] {
			t.Fatalf("real-name after review = %v", rq)
		}
	}

	indv := call(t, inst, nkp.PathMerchantIndv, mreq("M2", "upper_huifu_id", sandbox.DevHuifuID, "name", "Li Si", "cert_no", "110101199001010000", "mobile_no", "13900000000"))
	wantCode(t, indv, nkp.CodeAccepted, "")
	if indv["huifu_id"] == huifu {
		t.Fatal("two merchants got the same huifu_id")
	}
	if q := call(t, inst, nkp.PathMerchantQuery, mreq("MQ2", "huifu_id", indv["huifu_id"])); q["merchant_type"] != "INDV" || q["reg_name"] != "Li Si" {
		t.Fatalf("individual merchant = %v", q)
	}
	// The dev merchant is onboarded from the start.
	if q := call(t, inst, nkp.PathMerchantQuery, mreq("MQ3", "huifu_id", sandbox.DevHuifuID)); q["audit_stat"] != nkp.StatSuccess || q["ali_realname_stat"] != nkp.StatSuccess {
		t.Fatalf("dev merchant = %v", q)
	}

	refusals := []struct {
		path string
		data map[string]any
		code string
		desc string
	}{
		{nkp.PathMerchantEnt, mreq("E1", "upper_huifu_id", sandbox.DevHuifuID, "reg_name", "X", "legal_name", "L", "contact_mobile_no", "1"), nkp.CodeBadParams, "license_code is required"},
		{nkp.PathMerchantIndv, mreq("E2", "upper_huifu_id", sandbox.DevHuifuID, "name", "X", "mobile_no", "1"), nkp.CodeBadParams, "cert_no is required"},
		{nkp.PathMerchantStatus, mreq("E3", "huifu_id", "6666000299999999"), nkp.CodeNotFound, "merchant"},
		{nkp.PathMerchantStatus, mreq("E4", "huifu_id", huifu, "apply_no", "NOPE"), nkp.CodeNotFound, "application"},
		{nkp.PathMerchantQuery, mreq("E5"), nkp.CodeBadParams, "huifu_id is required"},
		{nkp.PathBusiOpen, mreq("E6", "huifu_id", "6666000299999999"), nkp.CodeNotFound, "merchant"},
		{nkp.PathRealname, mreq("E7", "huifu_id", huifu, "pay_way", "X"), nkp.CodeBadParams, "pay_way"},
		{nkp.PathRealnameQuery, mreq("E8", "huifu_id", huifu), nkp.CodeBadParams, "pay_way is required"},
	}
	for _, r := range refusals {
		wantCode(t, call(t, inst, r.path, r.data), r.code, r.desc)
	}
}
