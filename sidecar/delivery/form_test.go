package delivery_test

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/delivery"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// In the upstream's form format, refund.requires_attention reads as a
// refund still processing (trans_stat P) whose resp_desc says why it came,
// so an application written against the upstream takes it for what it is:
// not a result.
func TestFormBodyOfRequiresAttention(t *testing.T) {
	payload, err := json.Marshal(client.Event{ID: "evt_1", Type: client.EventRefundRequiresAttention, Data: client.EventData{
		Refund: &client.Refund{ID: "re_1", MerchantID: "m1", ReqDate: "20260301", ReqSeqID: "s1", AmountFen: 150, Status: client.StatusProcessing},
		Source: "query",
	}})
	if err != nil {
		t.Fatal(err)
	}
	body, err := delivery.FormBody(payload, nkp.ProfileNKP)
	if err != nil {
		t.Fatal(err)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]any
	if err := json.Unmarshal([]byte(form.Get("resp_data")), &data); err != nil {
		t.Fatal(err)
	}
	if form.Get("resp_desc") != "requires_attention" || data["trans_stat"] != nkp.StatProcessing ||
		data["trans_type"] != nkp.TransRefund || data["ord_amt"] != "1.50" || data["req_seq_id"] != "s1" {
		t.Fatalf("form = %v, resp_data %v", form, data)
	}
}
