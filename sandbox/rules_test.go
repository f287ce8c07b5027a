package sandbox_test

import (
	"crypto/rsa"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// otherSysID is a second service provider in the rule tests; it signs with
// the dev WeChat key, which is as good as any for a test.
const otherSysID = "6666000200000001"

// startTwoSys runs a sandbox that knows the dev sys_id and otherSysID, and
// returns a client for otherSysID too.
func startTwoSys(t *testing.T, opts ...sandboxtest.Option) (*sandboxtest.Instance, *sandboxtest.Clock, *nkp.Client) {
	t.Helper()
	keys, err := sandbox.DevKeys()
	if err != nil {
		t.Fatal(err)
	}
	inst, clock := start(t, append([]sandboxtest.Option{sandboxtest.WithConfig(func(c *sandbox.Config) {
		c.Merchants = map[string]*rsa.PublicKey{sandbox.DevSysID: keys.Merchant.Public, otherSysID: keys.WeChat.Public}
	})}, opts...)...)
	other := inst.NKPClient()
	other.SysID, other.Key = otherSysID, keys.WeChat.Private
	return inst, clock, other
}

func setMerchant(t *testing.T, inst *sandboxtest.Instance, req sandbox.MerchantRequest) sandbox.MerchantState {
	t.Helper()
	st, err := inst.Control.SetMerchant(testCtx(t), req)
	if err != nil {
		t.Fatalf("set merchant %+v: %v", req, err)
	}
	return st
}

// refused sends data and fails the test unless the answer carries code and
// a resp_desc starting with desc, and the sandbox booked nothing.
func refused(t *testing.T, inst *sandboxtest.Instance, c *nkp.Client, path string, data map[string]any, code, desc string) map[string]any {
	t.Helper()
	before := inst.Stats(t, "")
	out, err := c.Call(testCtx(t), path, data)
	if err != nil {
		t.Fatalf("call %s: %v", path, err)
	}
	wantCode(t, out, code, "")
	if d, _ := out["resp_desc"].(string); len(d) < len(desc) || d[:len(desc)] != desc {
		t.Fatalf("resp_desc = %q, want it to start with %q", d, desc)
	}
	after := inst.Stats(t, "")
	if after.Orders != before.Orders || after.Refunds != before.Refunds {
		t.Fatalf("a refused %s booked something: %+v then %+v", path, before, after)
	}
	return out
}

func TestReqDateMustBeToday(t *testing.T) {
	inst, clock := start(t)
	c := inst.NKPClient()
	tests := []struct {
		name string
		now  time.Time
		date string
		ok   bool
	}{
		{"today", t0, day0, true},
		{"yesterday", t0, "20250614", false},
		{"tomorrow", t0, "20250616", false},
		{"a year ago", t0, "20240615", false},
		// Beijing time, not UTC: at 07:00 CST the UTC date is still the
		// day before.
		{"Beijing date before UTC's", time.Date(2025, 6, 16, 7, 0, 0, 0, time.FixedZone("CST", 8*3600)), "20250616", true},
		{"UTC date refused", time.Date(2025, 6, 16, 7, 0, 0, 0, time.FixedZone("CST", 8*3600)), "20250615", false},
		// Around midnight a client's clock may be a little apart.
		{"yesterday within the skew after midnight", time.Date(2025, 6, 16, 0, 4, 0, 0, time.FixedZone("CST", 8*3600)), "20250615", true},
		{"yesterday past the skew", time.Date(2025, 6, 16, 0, 6, 0, 0, time.FixedZone("CST", 8*3600)), "20250615", false},
		{"tomorrow within the skew before midnight", time.Date(2025, 6, 15, 23, 56, 0, 0, time.FixedZone("CST", 8*3600)), "20250616", true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock.Set(tc.now)
			seq := "RD" + string(rune('A'+i))
			data := with(order(seq), "req_date", tc.date)
			if tc.ok {
				placeOrder(t, inst, data)
				return
			}
			refused(t, inst, c, nkp.PathJSPay, data, nkp.CodeBadParams, sandbox.DescReqDateNotToday)
			// The refusal did not use up the serial.
			clock.Set(tc.now)
			placeOrder(t, inst, with(data, "req_date", tc.now.Format(nkp.DateLayout)))
		})
	}

	clock.Set(t0)
	paid := placeOrder(t, inst, order("RDPAY"))
	inst.SettlePayment(t, day0, "RDPAY", sandbox.ResultPaid)
	others := []struct {
		path string
		data map[string]any
	}{
		{nkp.PathRefund, map[string]any{"req_date": "20250614", "req_seq_id": "RDR", "huifu_id": sandbox.DevHuifuID, "ord_amt": "0.10",
			"org_req_date": day0, "org_req_seq_id": paid["req_seq_id"]}},
		{nkp.PathClose, map[string]any{"req_date": "20250614", "req_seq_id": "RDC", "huifu_id": sandbox.DevHuifuID,
			"org_req_date": day0, "org_req_seq_id": "RDPAY"}},
		{nkp.PathFileQuery, map[string]any{"req_date": "20250614", "req_seq_id": "RDF", "huifu_id": sandbox.DevHuifuID,
			"file_date": "20250614", "bill_type": nkp.BillTrade}},
		{nkp.PathMerchantQuery, mreq("RDM", "req_date", "20250614", "huifu_id", sandbox.DevHuifuID)},
	}
	for _, o := range others {
		refused(t, inst, c, o.path, o.data, nkp.CodeBadParams, sandbox.DescReqDateNotToday)
	}
	// A query names the original by org_req_date, which may be any day.
	wantCode(t, call(t, inst, nkp.PathPaymentQuery, map[string]any{"huifu_id": sandbox.DevHuifuID, "org_req_date": day0, "org_req_seq_id": "RDPAY"}),
		nkp.CodeAccepted, "")
}

func TestMerchantMustBeUnderSysID(t *testing.T) {
	inst, _, other := startTwoSys(t)
	dev := inst.NKPClient()
	const theirs, ours, ourSub = "6666000200000010", "6666000100000010", "6666000100000011"
	setMerchant(t, inst, sandbox.MerchantRequest{HuifuID: theirs, SysID: otherSysID})
	setMerchant(t, inst, sandbox.MerchantRequest{HuifuID: ours})
	// A merchant of one of our merchants is ours too.
	setMerchant(t, inst, sandbox.MerchantRequest{HuifuID: ourSub, UpperHuifuID: ours})

	refused(t, inst, dev, nkp.PathJSPay, with(order("U1"), "huifu_id", theirs), sandbox.CodeBusinessFailed, sandbox.DescNotUnderSysID)
	refused(t, inst, other, nkp.PathJSPay, with(order("U2"), "huifu_id", ours), sandbox.CodeBusinessFailed, sandbox.DescNotUnderSysID)
	refused(t, inst, other, nkp.PathJSPay, with(order("U3"), "huifu_id", sandbox.DevHuifuID), sandbox.CodeBusinessFailed, sandbox.DescNotUnderSysID)
	placeOrder(t, inst, with(order("U4"), "huifu_id", ours))
	placeOrder(t, inst, with(order("U5"), "huifu_id", ourSub))
	if out, err := other.Call(testCtx(t), nkp.PathJSPay, with(order("U6"), "huifu_id", theirs)); err != nil || out["resp_code"] != nkp.CodeProcessing {
		t.Fatalf("the other sys_id's own merchant: %v, %v", out, err)
	}
	// Queries and merchant calls are held to the same rule.
	refused(t, inst, other, nkp.PathPaymentQuery, map[string]any{"huifu_id": ours, "org_req_date": day0, "org_req_seq_id": "U4"},
		sandbox.CodeBusinessFailed, sandbox.DescNotUnderSysID)
	refused(t, inst, dev, nkp.PathMerchantQuery, mreq("U7", "huifu_id", theirs), sandbox.CodeBusinessFailed, sandbox.DescNotUnderSysID)
	refused(t, inst, dev, nkp.PathMerchantEnt, mreq("U8", "upper_huifu_id", theirs, "reg_name", "X", "license_code", "1",
		"legal_name", "L", "contact_mobile_no", "1"), sandbox.CodeBusinessFailed, sandbox.DescNotUnderSysID)

	// An unknown merchant trades by default and is then known under the
	// sys_id that named it first.
	placeOrder(t, inst, with(order("U9"), "huifu_id", "6666000100000012"))
	ms, err := inst.Control.Merchants(testCtx(t), "6666000100000012")
	if err != nil || len(ms) != 1 || ms[0].SysID != sandbox.DevSysID || ms[0].WxRealnameStat != nkp.StatSuccess {
		t.Fatalf("adopted merchant = %+v, %v", ms, err)
	}
	refused(t, inst, other, nkp.PathJSPay, with(order("U10"), "huifu_id", "6666000100000012"), sandbox.CodeBusinessFailed, sandbox.DescNotUnderSysID)
}

func TestStrictMerchants(t *testing.T) {
	inst, _ := start(t, sandboxtest.WithConfig(func(c *sandbox.Config) { c.Rules.StrictMerchants = true }))
	refused(t, inst, inst.NKPClient(), nkp.PathJSPay, with(order("S1"), "huifu_id", "6666000100000012"), sandbox.CodeBusinessFailed, sandbox.DescNotUnderSysID)
	setMerchant(t, inst, sandbox.MerchantRequest{HuifuID: "6666000100000012"})
	placeOrder(t, inst, with(order("S1"), "huifu_id", "6666000100000012"))
	placeOrder(t, inst, order("S2")) // the dev merchant
}

func TestRealnameMustBeComplete(t *testing.T) {
	inst, _ := start(t)
	c := inst.NKPClient()
	const m = "6666000100000020"
	jsapi := func(seq string) map[string]any { return with(order(seq), "huifu_id", m) }
	native := func(seq string) map[string]any {
		return with(order(seq), "huifu_id", m, "trade_type", upstream.TradeAlipayNative, "wx_data", nil)
	}
	for _, stat := range []string{nkp.StatInitial, nkp.StatProcessing, nkp.StatFailure} {
		st := setMerchant(t, inst, sandbox.MerchantRequest{HuifuID: m, WxRealnameStat: stat, AliRealnameStat: nkp.StatSuccess})
		if st.WxRealnameStat != stat {
			t.Fatalf("state = %+v", st)
		}
		refused(t, inst, c, nkp.PathJSPay, jsapi("RW"+stat), sandbox.CodeBusinessFailed, sandbox.DescWeChatRealname)
		refused(t, inst, c, nkp.PathJSPay, with(jsapi("RM"+stat), "trade_type", upstream.TradeWeChatMiniApp), sandbox.CodeBusinessFailed, sandbox.DescWeChatRealname)
		placeOrder(t, inst, native("RA"+stat))
	}
	st := setMerchant(t, inst, sandbox.MerchantRequest{HuifuID: m, WxRealnameStat: nkp.StatSuccess, AliRealnameStat: nkp.StatProcessing})
	refused(t, inst, c, nkp.PathJSPay, native("RA2"), sandbox.CodeBusinessFailed, sandbox.DescAlipayRealname)
	placeOrder(t, inst, jsapi("RW2"))

	// A held application is decided by the settling control; then the
	// merchant may trade.
	q := call(t, inst, nkp.PathRealnameQuery, mreq("RQ", "huifu_id", m, "pay_way", "A"))
	if q["apply_stat"] != nkp.StatProcessing || q["authorize_stat"] != "UNAUTHORIZED" {
		t.Fatalf("realname query = %v (state %+v)", q, st)
	}
	if _, err := inst.Control.SettleApplication(testCtx(t), q["apply_no"].(string), sandbox.ResultSucceeded); err != nil {
		t.Fatal(err)
	}
	placeOrder(t, inst, native("RA3"))
}

func TestSubAppIDMustBeBound(t *testing.T) {
	inst, _ := start(t)
	c := inst.NKPClient()
	const m = "6666000100000030"
	bound := []string{"wxbound00000001"}
	setMerchant(t, inst, sandbox.MerchantRequest{HuifuID: m, SubAppIDs: &bound})
	pay := func(seq, wxData string) map[string]any {
		return with(order(seq), "huifu_id", m, "trade_type", upstream.TradeWeChatMiniApp, "wx_data", wxData)
	}
	out := refused(t, inst, c, nkp.PathJSPay, pay("B1", `{"sub_appid":"wxother0000001","sub_openid":"o1"}`), sandbox.CodeBusinessFailed, sandbox.DescSubAppIDNotBound)
	if out["trans_stat"] != nkp.StatFailure || out["bank_code"] != sandbox.BankCodeParamError || out["bank_message"] != sandbox.DescSubAppIDNotBound {
		t.Fatalf("refusal = %v, want WeChat's PARAM_ERROR", out)
	}
	placeOrder(t, inst, pay("B2", `{"sub_appid":"wxbound00000001","sub_openid":"o1"}`))
	// With openid alone the service provider's own app pays; nothing to bind.
	placeOrder(t, inst, pay("B3", `{"openid":"o1"}`))

	none := []string{}
	setMerchant(t, inst, sandbox.MerchantRequest{HuifuID: m, SubAppIDs: &none})
	refused(t, inst, c, nkp.PathJSPay, pay("B4", `{"sub_appid":"wxbound00000001","sub_openid":"o1"}`), sandbox.CodeBusinessFailed, sandbox.DescSubAppIDNotBound)
	// Alipay does not look at WeChat app ids.
	placeOrder(t, inst, with(order("B5"), "huifu_id", m, "trade_type", upstream.TradeAlipayNative, "wx_data", nil))
	anyApp := []string{sandbox.AnySubAppID}
	setMerchant(t, inst, sandbox.MerchantRequest{HuifuID: m, SubAppIDs: &anyApp})
	placeOrder(t, inst, pay("B4", `{"sub_appid":"wxanything0001","sub_openid":"o1"}`))
}

func TestOnboardingMustBeApproved(t *testing.T) {
	inst, clock := start(t)
	c := inst.NKPClient()
	ent := call(t, inst, nkp.PathMerchantEnt, mreq("O1", "upper_huifu_id", sandbox.DevHuifuID, "reg_name", "Sandbox Shop Ltd",
		"license_code", "91310000MA1FL0000X", "legal_name", "Zhang San", "contact_mobile_no", "13800000000"))
	m := ent["huifu_id"].(string)
	refused(t, inst, c, nkp.PathJSPay, with(order("O2"), "huifu_id", m), sandbox.CodeBusinessFailed, sandbox.DescOnboardingInReview)
	refused(t, inst, c, nkp.PathBusiOpen, mreq("O3", "huifu_id", m), sandbox.CodeBusinessFailed, sandbox.DescOnboardingInReview)
	refused(t, inst, c, nkp.PathRealname, mreq("O4", "huifu_id", m, "pay_way", "W"), sandbox.CodeBusinessFailed, sandbox.DescOnboardingInReview)

	// Once approved, the merchant still needs its real-name authorization.
	clock.Advance(sandbox.DefaultReviewDelay)
	refused(t, inst, c, nkp.PathJSPay, with(order("O2"), "huifu_id", m), sandbox.CodeBusinessFailed, sandbox.DescWeChatRealname)
	wantCode(t, call(t, inst, nkp.PathRealname, mreq("O4", "huifu_id", m, "pay_way", "W")), nkp.CodeProcessing, "")
	clock.Advance(sandbox.DefaultReviewDelay)
	placeOrder(t, inst, with(order("O2"), "huifu_id", m))

	// A refused onboarding refuses every trade.
	setMerchant(t, inst, sandbox.MerchantRequest{HuifuID: m, OnboardStat: nkp.StatFailure})
	refused(t, inst, c, nkp.PathJSPay, with(order("O5"), "huifu_id", m), sandbox.CodeBusinessFailed, sandbox.DescOnboardingRefused)
	// An onboarding the control puts back under review stays there, whatever
	// the clock says, until it is decided.
	st := setMerchant(t, inst, sandbox.MerchantRequest{HuifuID: m, OnboardStat: nkp.StatProcessing})
	clock.Advance(time.Hour)
	refused(t, inst, c, nkp.PathJSPay, with(order("O5"), "huifu_id", m), sandbox.CodeBusinessFailed, sandbox.DescOnboardingInReview)
	if _, err := inst.Control.SettleApplication(testCtx(t), st.OnboardApplyNo, sandbox.ResultSucceeded); err != nil {
		t.Fatal(err)
	}
	placeOrder(t, inst, with(order("O5"), "huifu_id", m))
}

func TestMerchantControl(t *testing.T) {
	inst, _ := start(t)
	ms, err := inst.Control.Merchants(testCtx(t), "")
	if err != nil || len(ms) != 1 {
		t.Fatalf("merchants = %+v, %v", ms, err)
	}
	dev := ms[0]
	if dev.HuifuID != sandbox.DevHuifuID || dev.SysID != sandbox.DevSysID || dev.OnboardStat != nkp.StatSuccess ||
		dev.WxRealnameStat != nkp.StatSuccess || dev.AliRealnameStat != nkp.StatSuccess || len(dev.SubAppIDs) != 1 || dev.SubAppIDs[0] != sandbox.AnySubAppID {
		t.Fatalf("the dev merchant is not fully authorized by default: %+v", dev)
	}
	for _, bad := range []sandbox.MerchantRequest{
		{},
		{HuifuID: "x y"},
		{HuifuID: "6666000100000040", OnboardStat: "I"},
		{HuifuID: "6666000100000040", WxRealnameStat: "X"},
		{HuifuID: "6666000100000040", AliRealnameStat: "s"},
	} {
		if _, err := inst.Control.SetMerchant(testCtx(t), bad); err == nil {
			t.Errorf("SetMerchant(%+v) succeeded, want a refusal", bad)
		}
	}
	if ms, _ := inst.Control.Merchants(testCtx(t), ""); len(ms) != 1 {
		t.Fatalf("refused control calls registered merchants: %+v", ms)
	}
}
