package notify_test

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/notify"
	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/sqlite"
	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

// fuzzLimits keep the front's limits out of a fuzzer's way: every input
// comes from one address.
var fuzzLimits = notify.Limits{RatePerSource: 1e9, BurstPerSource: 1 << 30, DuplicateRate: 1e9, DuplicateBurst: 1 << 30}

// FuzzNotificationForm posts arbitrary bodies to the ingress. Whatever
// arrives, nothing that does not verify is acknowledged, and an
// acknowledgement names the req_seq_id of what was signed.
func FuzzNotificationForm(f *testing.F) {
	fx := newFixture(f, notify.Config{Limits: fuzzLimits})
	p := fx.payment(f, "pay_1", 1000)
	good := fx.sign(f, payData(p, "S", "10.00"))
	seeds := []string{
		good.Form().Encode(),
		"resp_code=00000000&resp_desc=success&resp_data=" + url.QueryEscape(good.RespData) + "&sign=" + url.QueryEscape(good.Sign) + "&extra=1",
		"resp_data=" + url.QueryEscape(good.RespData) + "&resp_data=%7B%7D&sign=" + url.QueryEscape(good.Sign),
		"resp_data=%7B%7D&sign=AAAA", "resp_data=%zz", "sign=x", "", ";;;&&&===", "resp_data=+%7B%7D&sign=%20",
	}
	for _, s := range seeds {
		f.Add([]byte(s), "application/x-www-form-urlencoded")
	}
	f.Add([]byte(good.Form().Encode()), "application/x-www-form-urlencoded; charset=UTF-8")
	f.Add([]byte(`{"resp_data":"x"}`), "application/json")
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		req := httptest.NewRequest(http.MethodPost, "/notify", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		fx.h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%q: %d %q", body, rec.Code, rec.Body)
		}
		if rec.Code != http.StatusOK {
			if strings.HasPrefix(rec.Body.String(), "RECV_ORD_ID") {
				t.Fatalf("refusal %d carries an ack", rec.Code)
			}
			return
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			t.Fatalf("acknowledged an unparsable form %q", body)
		}
		n, err := nkp.NotificationFromForm(form)
		if err != nil || n.Verify(&fx.key.PublicKey) != nil {
			t.Fatalf("acknowledged %q, which does not verify", body)
		}
		var d struct {
			ReqSeqID string `json:"req_seq_id"`
		}
		if err := json.Unmarshal([]byte(n.RespData), &d); err != nil || rec.Body.String() != nkp.NotifyAck(d.ReqSeqID) {
			t.Fatalf("ack %q for resp_data %q", rec.Body, n.RespData)
		}
	})
}

// FuzzRespData signs arbitrary resp_data with the upstream's key and posts
// it, to reach everything the ingress reads after the signature check.
// The key is RSA-1024 so that signing does not dominate the run.
func FuzzRespData(f *testing.F) {
	_, key, err := nkp.GenerateKeyPair(1024)
	if err != nil {
		f.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(f.TempDir(), "db.sqlite"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	led, err := ledger.New(st, ledger.Options{Telemetry: telemetry.Bundle{Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		f.Fatal(err)
	}
	h, err := notify.NewHandler(notify.Config{Verifier: &key.PublicKey, Limits: fuzzLimits}, st, led, notify.Options{Telemetry: telemetry.Bundle{Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		f.Fatal(err)
	}
	p := store.Payment{ID: "pay_1", MerchantID: merchant, OutTradeNo: "o", Flow: "alipay-native", TradeType: upstream.TradeAlipayNative,
		AmountFen: 1000, ReqDate: "20260301", ReqSeqID: "seq-pay_1", Status: store.StatusProcessing}
	if err := st.CreatePayment(context.Background(), &p); err != nil {
		f.Fatal(err)
	}
	r := store.Refund{ID: "ref_1", PaymentID: "pay_1", MerchantID: merchant, OutRefundNo: "r", AmountFen: 300,
		ReqDate: "20260302", ReqSeqID: "seq-ref_1", Status: store.StatusProcessing}
	if err := st.CreateRefund(context.Background(), &r); err != nil {
		f.Fatal(err)
	}
	for _, d := range []map[string]any{
		payData(p, "S", "10.00"), payData(p, "F", "10.00"), payData(p, "P", "0.00"),
		{"huifu_id": merchant, "req_date": r.ReqDate, "req_seq_id": r.ReqSeqID, "ord_amt": "3.00", "trans_stat": "S", "trans_type": nkp.TransRefund},
		{"huifu_id": merchant, "req_date": p.ReqDate, "req_seq_id": p.ReqSeqID, "trans_amt": 10, "trans_stat": []any{"S"}},
		{"huifu_id": merchant, "req_date": p.ReqDate, "req_seq_id": p.ReqSeqID, "trans_amt": "1e3", "notify_type": "2"},
	} {
		b, _ := nkp.Canonicalize(d)
		f.Add(string(b))
	}
	f.Add(`{"req_seq_id":"seq-pay_1","huifu_id":"` + merchant + `","req_date":"20260301","trans_amt":"10.00","trans_stat":"S","wx_response":"{\"openid\":\"o\"}"}`)
	f.Add(`{}`)
	f.Add(`{"a":`)
	f.Fuzz(func(t *testing.T, respData string) {
		n, err := signRaw(key, respData)
		if err != nil {
			t.Skip()
		}
		req := httptest.NewRequest(http.MethodPost, "/notify", strings.NewReader(n.Form().Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			if !strings.HasPrefix(rec.Body.String(), "RECV_ORD_ID_seq-") {
				t.Fatalf("ack %q for %q", rec.Body, respData)
			}
		case http.StatusBadRequest, http.StatusNotFound, http.StatusUnprocessableEntity:
		default:
			t.Fatalf("%q: %d %q", respData, rec.Code, rec.Body)
		}
	})
}

func signRaw(key *rsa.PrivateKey, respData string) (nkp.Notification, error) {
	sig, err := nkp.Sign(key, []byte(respData))
	return nkp.Notification{RespCode: "00000000", RespDesc: "success", RespData: respData, Sign: sig}, err
}
