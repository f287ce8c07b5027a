package ledger_test

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"

	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// want is the part of a Result an answer decides.
type want struct {
	respCode, reqDate, reqSeqID        string
	transStat, bankCode, bankMessage   string
	nkpSeqID, partyOrderID, outTransID string
	amount                             nkp.Fen
}

func got(r ledger.Result) want {
	return want{r.RespCode, r.ReqDate, r.ReqSeqID, r.TransStat, r.BankCode, r.BankMessage,
		r.NkpSeqID, r.PartyOrderID, r.OutTransID, r.Amount}
}

// inProfile returns data, written in NKP names, as the upstream of profile
// p sends it.
func inProfile(p nkp.Profile, data map[string]any) map[string]any {
	m := maps.Clone(data)
	p.ToWire(m)
	return m
}

var profiles = []nkp.Profile{nkp.ProfileNKP, nkp.ProfileDouGong}

// checkUpstream checks that the result keeps the answer, in NKP names.
func checkUpstream(t *testing.T, r ledger.Result, data map[string]any) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Upstream, &m); err != nil {
		t.Fatalf("Upstream is not a JSON object: %v (%s)", err, r.Upstream)
	}
	for k, v := range data {
		if m[k] != v {
			t.Errorf("Upstream[%s] = %v, want %v", k, m[k], v)
		}
	}
	for k := range m {
		if strings.Contains(k, "hf_seq_id") {
			t.Errorf("Upstream keeps the DouGong name %s", k)
		}
	}
}

func TestFromOrder(t *testing.T) {
	tests := []struct {
		name string
		data map[string]any
		want want
	}{
		{"accepted", map[string]any{
			"resp_code": "00000100", "resp_desc": "accepted", "req_date": "20260301", "req_seq_id": "s1",
			"trans_stat": "P", "nkp_seq_id": "n1", "party_order_id": "po1", "trans_amt": "1.00", "qr_code": "https://qr",
		}, want{respCode: "00000100", reqDate: "20260301", reqSeqID: "s1", transStat: "P", nkpSeqID: "n1", partyOrderID: "po1", amount: 100}},
		{"refused", map[string]any{"resp_code": "10000000", "resp_desc": "goods_desc is required", "req_seq_id": "s1"},
			want{respCode: "10000000", reqSeqID: "s1"}},
		{"duplicate", map[string]any{"resp_code": "20000000", "resp_desc": "duplicate transaction"}, want{respCode: "20000000"}},
	}
	for _, p := range profiles {
		for _, tt := range tests {
			t.Run(string(p)+"/"+tt.name, func(t *testing.T) {
				r, err := ledger.FromOrder(inProfile(p, tt.data))
				if err != nil {
					t.Fatal(err)
				}
				if g := got(r); g != tt.want {
					t.Errorf("got %+v\nwant %+v", g, tt.want)
				}
				if r.Source != ledger.SourceAPI {
					t.Errorf("source = %s", r.Source)
				}
				checkUpstream(t, r, tt.data)
			})
		}
	}
}

func TestFromPaymentQuery(t *testing.T) {
	base := map[string]any{"resp_code": "00000000", "org_req_date": "20260301", "org_req_seq_id": "s1",
		"trans_stat": "S", "trans_amt": "0.10", "party_order_id": "po1", "out_trans_id": "wx1"}
	with := func(kv ...string) map[string]any {
		m := maps.Clone(base)
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	paid := want{respCode: "00000000", reqDate: "20260301", reqSeqID: "s1", transStat: "S", partyOrderID: "po1", outTransID: "wx1", amount: 10}
	withSeq := func(w want, seq string) want { w.nkpSeqID = seq; return w }
	tests := []struct {
		name string
		data map[string]any
		want want
	}{
		{"own serial", with("nkp_seq_id", "n1"), withSeq(paid, "n1")},
		{"only the echoed org_ serial", with("org_nkp_seq_id", "n1"), withSeq(paid, "n1")},
		{"own serial first", with("nkp_seq_id", "n1", "org_nkp_seq_id", "n0"), withSeq(paid, "n1")},
		{"failed", map[string]any{"resp_code": "00000000", "org_req_date": "20260301", "org_req_seq_id": "s1",
			"trans_stat": "F", "bank_code": "NOTENOUGH", "bank_message": "balance too low"},
			want{respCode: "00000000", reqDate: "20260301", reqSeqID: "s1", transStat: "F", bankCode: "NOTENOUGH", bankMessage: "balance too low"}},
		{"unknown order", map[string]any{"resp_code": "20000004", "resp_desc": "order not found"}, want{respCode: "20000004"}},
	}
	for _, p := range profiles {
		for _, tt := range tests {
			t.Run(string(p)+"/"+tt.name, func(t *testing.T) {
				r, err := ledger.FromPaymentQuery(inProfile(p, tt.data))
				if err != nil {
					t.Fatal(err)
				}
				if g := got(r); g != tt.want {
					t.Errorf("got %+v\nwant %+v", g, tt.want)
				}
				if r.Source != ledger.SourceQuery {
					t.Errorf("source = %s", r.Source)
				}
				checkUpstream(t, r, tt.data)
			})
		}
	}
}

func TestFromClose(t *testing.T) {
	tests := []struct {
		name string
		data map[string]any
		want want
	}{
		{"closed", map[string]any{"resp_code": "00000000", "org_req_date": "20260301", "org_req_seq_id": "s1",
			"org_nkp_seq_id": "n1", "req_seq_id": "close-1", "trans_stat": "S", "org_trans_stat": "F"},
			want{respCode: "00000000", reqDate: "20260301", reqSeqID: "s1", nkpSeqID: "n1",
				transStat: "F", bankCode: nkp.BankCodeOrderClosed, bankMessage: "closed by test"}},
		{"paid meanwhile", map[string]any{"resp_code": "00000000", "org_req_date": "20260301", "org_req_seq_id": "s1",
			"org_nkp_seq_id": "n1", "trans_stat": "F", "org_trans_stat": "S"},
			want{respCode: "00000000", reqDate: "20260301", reqSeqID: "s1", nkpSeqID: "n1", transStat: "S"}},
		{"refused", map[string]any{"resp_code": "10000000", "resp_desc": "too young"}, want{respCode: "10000000"}},
	}
	for _, p := range profiles {
		for _, tt := range tests {
			t.Run(string(p)+"/"+tt.name, func(t *testing.T) {
				r, err := ledger.FromClose(inProfile(p, tt.data), "closed by test")
				if err != nil {
					t.Fatal(err)
				}
				if g := got(r); g != tt.want {
					t.Errorf("got %+v\nwant %+v", g, tt.want)
				}
				checkUpstream(t, r, tt.data)
			})
		}
	}
}

func TestFromRefundAndRefundQuery(t *testing.T) {
	answer := map[string]any{"resp_code": "00000100", "req_date": "20260302", "req_seq_id": "r1",
		"org_req_date": "20260301", "org_req_seq_id": "s1", "org_nkp_seq_id": "payment-serial",
		"ord_amt": "0.30", "trans_stat": "P"}
	withOwn := maps.Clone(answer)
	withOwn["nkp_seq_id"] = "refund-serial"
	queryEcho := map[string]any{"resp_code": "00000000", "org_req_date": "20260302", "org_req_seq_id": "r1",
		"org_nkp_seq_id": "refund-serial", "ord_amt": "0.30", "trans_stat": "S"}
	tests := []struct {
		name  string
		build func(map[string]any) (ledger.Result, error)
		data  map[string]any
		want  want
	}{
		// A refund's org_ serial is the payment's: never the refund's.
		{"refund answer, own serial", ledger.FromRefund, withOwn,
			want{respCode: "00000100", reqDate: "20260302", reqSeqID: "r1", transStat: "P", nkpSeqID: "refund-serial", amount: 30}},
		{"refund answer without own serial", ledger.FromRefund, answer,
			want{respCode: "00000100", reqDate: "20260302", reqSeqID: "r1", transStat: "P", amount: 30}},
		// A refund query names the refund itself by org_*.
		{"refund query echoing the key", ledger.FromRefundQuery, queryEcho,
			want{respCode: "00000000", reqDate: "20260302", reqSeqID: "r1", transStat: "S", nkpSeqID: "refund-serial", amount: 30}},
	}
	for _, p := range profiles {
		for _, tt := range tests {
			t.Run(string(p)+"/"+tt.name, func(t *testing.T) {
				r, err := tt.build(inProfile(p, tt.data))
				if err != nil {
					t.Fatal(err)
				}
				if g := got(r); g != tt.want {
					t.Errorf("got %+v\nwant %+v", g, tt.want)
				}
				checkUpstream(t, r, tt.data)
			})
		}
	}
}

func TestFromNotification(t *testing.T) {
	payment := map[string]any{"huifu_id": "h1", "req_date": "20260301", "req_seq_id": "s1", "nkp_seq_id": "n1",
		"trans_type": "T_JSAPI", "trans_amt": "1.00", "trans_stat": "S", "out_trans_id": "wx1",
		"party_order_id": "po1", "notify_type": "1"}
	refund := map[string]any{"huifu_id": "h1", "req_date": "20260302", "req_seq_id": "r1", "nkp_seq_id": "refund-serial",
		"trans_type": nkp.TransRefund, "ord_amt": "0.30", "trans_stat": "F", "bank_code": "E1", "bank_message": "no",
		"org_req_date": "20260301", "org_req_seq_id": "s1", "org_nkp_seq_id": "payment-serial", "notify_type": "1"}
	refundNoOwn := maps.Clone(refund)
	delete(refundNoOwn, "nkp_seq_id")
	tests := []struct {
		name      string
		data      map[string]any
		refund    bool
		want      want
		wantNotif string
	}{
		{"payment", payment, false,
			want{reqDate: "20260301", reqSeqID: "s1", transStat: "S", nkpSeqID: "n1", partyOrderID: "po1", outTransID: "wx1", amount: 100}, ""},
		{"refund", refund, true,
			want{reqDate: "20260302", reqSeqID: "r1", transStat: "F", bankCode: "E1", bankMessage: "no", nkpSeqID: "refund-serial", amount: 30}, ""},
		{"refund without its own serial", refundNoOwn, true,
			want{reqDate: "20260302", reqSeqID: "r1", transStat: "F", bankCode: "E1", bankMessage: "no", amount: 30}, ""},
	}
	for _, p := range profiles {
		for _, tt := range tests {
			t.Run(string(p)+"/"+tt.name, func(t *testing.T) {
				raw, _ := json.Marshal(inProfile(p, tt.data))
				n := nkp.Notification{RespCode: "00000000", RespData: string(raw), Sign: "c2ln"}
				notice, err := ledger.FromNotification(n)
				if err != nil {
					t.Fatal(err)
				}
				if notice.Refund() != tt.refund || notice.HuifuID != "h1" || notice.ReqSeqID != tt.data["req_seq_id"] || notice.NotifyType != "1" {
					t.Fatalf("notice = %+v", notice)
				}
				r := notice.PaymentResult()
				if tt.refund {
					r = notice.RefundResult()
				}
				if g := got(r); g != tt.want {
					t.Errorf("got %+v\nwant %+v", g, tt.want)
				}
				if r.Source != ledger.SourceNotification || string(r.Upstream) != string(raw) ||
					r.Notification == nil || r.Notification.RespData != string(raw) || r.Notification.Sign != "c2ln" {
					t.Errorf("the result does not carry the notification as received: %+v", r)
				}
			})
		}
	}
}

func TestAnswersRefuseMalformedFields(t *testing.T) {
	bad := map[string]any{"resp_code": "00000000", "trans_amt": "1.234", "ord_amt": "x"}
	for name, build := range map[string]func(map[string]any) (ledger.Result, error){
		"order": ledger.FromOrder, "payment query": ledger.FromPaymentQuery,
		"refund": ledger.FromRefund, "refund query": ledger.FromRefundQuery,
	} {
		if _, err := build(bad); err == nil {
			t.Errorf("%s: a malformed amount was accepted", name)
		}
	}
	if _, err := ledger.FromNotification(nkp.Notification{RespData: `{"trans_amt":"1.001"}`}); err == nil {
		t.Error("notification: a malformed amount was accepted")
	}
	if _, err := ledger.FromNotification(nkp.Notification{RespData: `[]`}); err == nil {
		t.Error("notification: resp_data that is not an object was accepted")
	}
}
