package sandbox_test

import (
	"net/http"
	"testing"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// TestOfficialSDKNestedObjects sends a request the way an official DouGong
// SDK does: it signs the first level sorted, with the nested wx_data string
// and the nested acct_split_bunch object in the order its caller wrote
// them, and transmits the data in yet another order, pretty-printed. The
// sandbox must re-canonicalize without re-sorting the nested object and
// accept the signature.
func TestOfficialSDKNestedObjects(t *testing.T) {
	inst, _ := start(t)
	// What the SDK signs: first level sorted, nothing below it.
	const signed = `{"acct_split_bunch":{"percentage_flag":"N","acct_infos":[{"huifu_id":"6666000100000001","div_amt":"1.00"}]},` +
		`"goods_desc":"sandbox goods","huifu_id":"6666000100000001","req_date":"20250615","req_seq_id":"SDK1",` +
		`"trade_type":"T_JSAPI","trans_amt":"1.00","wx_data":"{\"sub_openid\":\"oSubUser0001\",\"sub_appid\":\"wxsub0001\"}"}`
	// What it transmits.
	const data = `{
	  "wx_data": "{\"sub_openid\":\"oSubUser0001\",\"sub_appid\":\"wxsub0001\"}",
	  "trans_amt": "1.00",
	  "req_seq_id": "SDK1",
	  "acct_split_bunch": {
	    "percentage_flag": "N",
	    "acct_infos": [{"huifu_id": "6666000100000001", "div_amt": "1.00"}]
	  },
	  "trade_type": "T_JSAPI",
	  "req_date": "20250615",
	  "huifu_id": "6666000100000001",
	  "goods_desc": "sandbox goods"
	}`
	sig, err := nkp.Sign(inst.Keys.Merchant.Private, []byte(signed))
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"sys_id":"` + sandbox.DevSysID + `","product_id":"` + sandbox.DevProductID + `","data":` + data + `,"sign":"` + sig + `"}`)
	status, out := post(t, inst, nkp.PathJSPay, body)
	if status != http.StatusOK {
		t.Fatalf("HTTP %d", status)
	}
	wantCode(t, out, nkp.CodeProcessing, "")

	// The same request signed over a re-sorted nested object is not what
	// was sent, and is refused.
	resorted := `{"acct_split_bunch":{"acct_infos":[{"div_amt":"1.00","huifu_id":"6666000100000001"}],"percentage_flag":"N"},` + signed[len(`{"acct_split_bunch":{"percentage_flag":"N","acct_infos":[{"huifu_id":"6666000100000001","div_amt":"1.00"}]},`):]
	sig, err = nkp.Sign(inst.Keys.Merchant.Private, []byte(resorted))
	if err != nil {
		t.Fatal(err)
	}
	body = []byte(`{"sys_id":"` + sandbox.DevSysID + `","product_id":"` + sandbox.DevProductID + `","data":` + data + `,"sign":"` + sig + `"}`)
	_, out = post(t, inst, nkp.PathJSPay, body)
	wantCode(t, out, nkp.CodeBadParams, sandbox.DescBadSignature)
}
