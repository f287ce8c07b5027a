package nkp

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestRequestRoundTrip(t *testing.T) {
	key := merchantKey(t)
	pub := merchantPub(t)
	data := jspayData()
	body, err := EncodeRequest(key, "sys<1>", "PAYUN", data)
	if err != nil {
		t.Fatal(err)
	}
	canon, err := Canonicalize(data)
	if err != nil {
		t.Fatal(err)
	}
	// The bytes on the wire are exactly the bytes that were signed.
	if !bytes.Contains(body, append(append([]byte(`"data":`), canon...), ',')) {
		t.Errorf("body does not carry the canonical string as data:\n%s", body)
	}
	if !json.Valid(body) {
		t.Fatalf("body is not valid JSON: %s", body)
	}

	r, got, err := DecodeRequest(body)
	if err != nil {
		t.Fatal(err)
	}
	if r.SysID != "sys<1>" || r.ProductID != "PAYUN" {
		t.Errorf("envelope = %q, %q; want sys<1>, PAYUN", r.SysID, r.ProductID)
	}
	if string(r.Data) != string(canon) {
		t.Errorf("Request.Data = %s, want %s", r.Data, canon)
	}
	if got["trans_amt"] != "0.10" || got["goods_desc"] != "会员月卡 VIP monthly" {
		t.Errorf("decoded data = %v", got)
	}
	if _, ok := got["remark"]; ok {
		t.Error("empty remark was transmitted")
	}
	if err := VerifyRequest(pub, r); err != nil {
		t.Errorf("VerifyRequest: %v", err)
	}
	if err := VerifyRequest(upstreamPub(t), r); !errors.Is(err, ErrBadSignature) {
		t.Errorf("VerifyRequest with another key: %v, want ErrBadSignature", err)
	}
}

func TestVerifyRequestRecanonicalizes(t *testing.T) {
	key := merchantKey(t)
	pub := merchantPub(t)
	canon := []byte(`{"goods_desc":"测试/商品","huifu_id":"6666000123456789","ord_amt":1.10,"req_date":"20250101","wx_data":"{\"sub_openid\":\"o1\",\"sub_appid\":\"wx1\"}"}`)
	if c, err := CanonicalizeJSON(canon); err != nil || !bytes.Equal(c, canon) {
		t.Fatalf("test data is not canonical: %s (%v)", c, err)
	}
	sig, err := Sign(key, canon)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data string
		ok   bool
	}{
		{"canonical", string(canon), true},
		{"pretty-printed", "{\n  \"goods_desc\": \"测试/商品\",\n  \"huifu_id\": \"6666000123456789\",\n  \"ord_amt\": 1.10,\n  \"req_date\": \"20250101\",\n  \"wx_data\": \"{\\\"sub_openid\\\":\\\"o1\\\",\\\"sub_appid\\\":\\\"wx1\\\"}\"\n}", true},
		{"other key order", `{"wx_data":"{\"sub_openid\":\"o1\",\"sub_appid\":\"wx1\"}","req_date":"20250101","ord_amt":1.10,"huifu_id":"6666000123456789","goods_desc":"测试/商品"}`, true},
		{"escaped non-ASCII and slash", `{"goods_desc":"\u6d4b\u8bd5\/\u5546\u54c1","huifu_id":"6666000123456789","ord_amt":1.10,"req_date":"20250101","wx_data":"{\"sub_openid\":\"o1\",\"sub_appid\":\"wx1\"}"}`, true},
		{"extra empty fields", `{"remark":"","alipay_data":null,"acct_split_bunch":{},"goods_desc":"测试/商品","huifu_id":"6666000123456789","ord_amt":1.10,"req_date":"20250101","wx_data":"{\"sub_openid\":\"o1\",\"sub_appid\":\"wx1\"}"}`, true},
		{"value changed", `{"goods_desc":"测试/商品","huifu_id":"6666000123456789","ord_amt":1.11,"req_date":"20250101","wx_data":"{\"sub_openid\":\"o1\",\"sub_appid\":\"wx1\"}"}`, false},
		{"number re-spelled", `{"goods_desc":"测试/商品","huifu_id":"6666000123456789","ord_amt":1.1,"req_date":"20250101","wx_data":"{\"sub_openid\":\"o1\",\"sub_appid\":\"wx1\"}"}`, false},
		{"number as string", `{"goods_desc":"测试/商品","huifu_id":"6666000123456789","ord_amt":"1.10","req_date":"20250101","wx_data":"{\"sub_openid\":\"o1\",\"sub_appid\":\"wx1\"}"}`, false},
		{"field added", `{"goods_desc":"测试/商品","huifu_id":"6666000123456789","ord_amt":1.10,"req_date":"20250101","remark":"x","wx_data":"{\"sub_openid\":\"o1\",\"sub_appid\":\"wx1\"}"}`, false},
		{"field removed", `{"goods_desc":"测试/商品","huifu_id":"6666000123456789","ord_amt":1.10,"wx_data":"{\"sub_openid\":\"o1\",\"sub_appid\":\"wx1\"}"}`, false},
		{"nested string re-sorted", `{"goods_desc":"测试/商品","huifu_id":"6666000123456789","ord_amt":1.10,"req_date":"20250101","wx_data":"{\"sub_appid\":\"wx1\",\"sub_openid\":\"o1\"}"}`, false},
		{"not an object", `["x"]`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyRequest(pub, Request{SysID: "s", ProductID: "p", Data: json.RawMessage(tt.data), Sign: sig})
			if tt.ok && err != nil {
				t.Fatalf("VerifyRequest: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrBadSignature) {
				t.Fatalf("VerifyRequest error = %v, want ErrBadSignature", err)
			}
		})
	}
	t.Run("unsigned", func(t *testing.T) {
		err := VerifyRequest(pub, Request{Data: json.RawMessage(canon)})
		if !errors.Is(err, ErrBadSignature) {
			t.Fatalf("VerifyRequest error = %v, want ErrBadSignature", err)
		}
	})
}

func TestDecodeRequestRefuses(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"empty", ``},
		{"not JSON", `sys_id=1`},
		{"array", `[]`},
		{"missing data", `{"sys_id":"s","sign":"x"}`},
		{"null data", `{"sys_id":"s","data":null,"sign":"x"}`},
		{"string data", `{"sys_id":"s","data":"{\"a\":1}","sign":"x"}`},
		{"array data", `{"sys_id":"s","data":[1],"sign":"x"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := DecodeRequest([]byte(tt.body)); err == nil {
				t.Fatalf("DecodeRequest(%s) succeeded, want an error", tt.body)
			}
		})
	}
}

func TestVerifyResponse(t *testing.T) {
	key := upstreamKey(t)
	pub := upstreamPub(t)

	// Signed over its raw bytes, which are not canonical: the values 0.00
	// and 1.10, the spaces and the key order would all change if the data
	// were re-serialized.
	rawData := []byte(`{ "resp_code": "00000000", "trans_amt": 0.00, "fee_amt": 1.10, "resp_desc": "成功" }`)
	rawBody, err := EncodeRawResponse(key, rawData)
	if err != nil {
		t.Fatal(err)
	}
	canonRaw, err := CanonicalizeJSON(rawData)
	if err != nil {
		t.Fatal(err)
	}
	var env Response
	if err := json.Unmarshal(rawBody, &env); err != nil {
		t.Fatal(err)
	}
	if Verify(pub, canonRaw, env.Sign) == nil {
		t.Fatal("test data is too simple: its raw signature also verifies over the canonical string")
	}

	canonData := map[string]any{"resp_code": "00000000", "trans_amt": json.Number("0.00"), "resp_desc": "成功", "empty": ""}
	canonBody, err := EncodeResponse(key, canonData)
	if err != nil {
		t.Fatal(err)
	}
	canon, err := Canonicalize(canonData)
	if err != nil {
		t.Fatal(err)
	}
	canonSig, err := Sign(key, canon)
	if err != nil {
		t.Fatal(err)
	}
	pretty := "{\n  \"trans_amt\": 0.00,\n  \"resp_desc\": \"\\u6210\\u529f\",\n  \"resp_code\": \"00000000\",\n  \"empty\": \"\"\n}"
	prettyBody := []byte(`{"data":` + pretty + `,"sign":"` + canonSig + `"}`)
	reorderedBody := []byte(`{"sign":"` + canonSig + `", "data": ` + pretty + `}`)

	tamperedRaw := bytes.Replace(rawBody, []byte(`0.00`), []byte(`0.01`), 1)
	tamperedCanon := bytes.Replace(canonBody, []byte(`成功`), []byte(`失败`), 1)
	otherKeyBody, err := EncodeRawResponse(merchantKey(t), rawData)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		body     []byte
		wantData string
		wantErr  error
	}{
		{"raw bytes signed", rawBody, string(rawData), nil},
		{"canonical data", canonBody, string(canon), nil},
		{"canonical signature, pretty data", prettyBody, pretty, nil},
		{"canonical signature, sign before data", reorderedBody, pretty, nil},
		{"unsigned", []byte(`{"data":` + string(rawData) + `}`), "", ErrBadSignature},
		{"empty sign", []byte(`{"data":` + string(rawData) + `,"sign":""}`), "", ErrBadSignature},
		{"tampered raw data", tamperedRaw, "", ErrBadSignature},
		{"tampered canonical data", tamperedCanon, "", ErrBadSignature},
		{"other key", otherKeyBody, "", ErrBadSignature},
		{"garbage sign", []byte(`{"data":{"a":1},"sign":"***"}`), "", ErrBadSignature},
		{"data is a string", []byte(`{"data":"{\"a\":1}","sign":"` + canonSig + `"}`), "", ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := VerifyResponse(pub, tt.body)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("VerifyResponse error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("VerifyResponse: %v", err)
			}
			if string(got) != tt.wantData {
				t.Errorf("VerifyResponse data = %s, want the raw data %s", got, tt.wantData)
			}
		})
	}

	for _, body := range []string{``, `not json`, `{}`, `{"data":null,"sign":"x"}`, `[]`} {
		t.Run("malformed "+body, func(t *testing.T) {
			if _, err := VerifyResponse(pub, []byte(body)); err == nil {
				t.Fatalf("VerifyResponse(%q) succeeded, want an error", body)
			}
		})
	}
}

func TestNotificationRoundTrip(t *testing.T) {
	key := upstreamKey(t)
	pub := upstreamPub(t)
	data := map[string]any{
		"resp_code": "00000000", "resp_desc": "交易成功", "huifu_id": "6666000123456789",
		"req_seq_id": "s+1 &2", "req_date": "20250101", "trans_amt": "0.10", "trans_stat": StatSuccess,
		"wx_response": `{"openid":"o/1"}`, "bank_message": "",
	}
	n, err := SignNotification(key, "00000000", "成功", data)
	if err != nil {
		t.Fatal(err)
	}
	canon, err := Canonicalize(data)
	if err != nil {
		t.Fatal(err)
	}
	if n.RespData != string(canon) {
		t.Errorf("RespData = %s, want the canonical string %s", n.RespData, canon)
	}
	if err := n.Verify(pub); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	// Through a real form post, as the upstream sends it.
	type received struct {
		n   Notification
		err error
	}
	got := make(chan received, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			got <- received{err: err}
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		rn, err := NotificationFromForm(r.PostForm)
		if err == nil {
			err = rn.Verify(pub)
		}
		got <- received{rn, err}
		if err != nil {
			http.Error(w, "refused", http.StatusBadRequest)
			return
		}
		var d NotifyData
		if err := json.Unmarshal([]byte(rn.RespData), &d); err != nil {
			http.Error(w, "bad data", http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, NotifyAck(d.ReqSeqID))
	}))
	defer srv.Close()
	resp, err := srv.Client().PostForm(srv.URL, n.Form())
	if err != nil {
		t.Fatal(err)
	}
	ack, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	r := <-got
	if r.err != nil {
		t.Fatalf("server refused the notification: %v", r.err)
	}
	if r.n != n {
		t.Errorf("received %+v, sent %+v", r.n, n)
	}
	if resp.StatusCode != http.StatusOK || string(ack) != "RECV_ORD_ID_s+1 &2" {
		t.Errorf("ack = %d %q, want 200 RECV_ORD_ID_s+1 &2", resp.StatusCode, ack)
	}
}

func TestNotificationVerify(t *testing.T) {
	key := upstreamKey(t)
	pub := upstreamPub(t)
	// resp_data as some senders write it: spaces and 0.00. The signature
	// is over this exact string.
	raw := `{"req_seq_id": "r1", "trans_amt": 0.00, "trans_stat": "S"}`
	sig, err := Sign(key, []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	good := Notification{RespCode: "00000000", RespDesc: "ok", Sign: sig, RespData: raw}
	canon, err := CanonicalizeJSON([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		n    Notification
		ok   bool
	}{
		{"raw resp_data", good, true},
		{"outer fields are not signed", Notification{RespCode: "99999999", RespDesc: "x", Sign: sig, RespData: raw}, true},
		{"re-serialized resp_data", Notification{Sign: sig, RespData: string(canon)}, false},
		{"one byte changed", Notification{Sign: sig, RespData: strings.Replace(raw, "0.00", "0.01", 1)}, false},
		{"trailing space", Notification{Sign: sig, RespData: raw + " "}, false},
		{"signature of other data", Notification{Sign: sig, RespData: `{"req_seq_id":"r2"}`}, false},
		{"missing signature", Notification{RespData: raw}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.n.Verify(pub)
			if tt.ok && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrBadSignature) {
				t.Fatalf("Verify error = %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestNotificationFromForm(t *testing.T) {
	tests := []struct {
		name    string
		form    url.Values
		wantErr bool
		badSig  bool
	}{
		{"complete", url.Values{"resp_code": {"00000000"}, "resp_desc": {"ok"}, "sign": {"c2ln"}, "resp_data": {`{"a":1}`}}, false, false},
		{"missing resp_data", url.Values{"sign": {"c2ln"}}, true, false},
		{"empty resp_data", url.Values{"sign": {"c2ln"}, "resp_data": {""}}, true, false},
		{"missing sign", url.Values{"resp_data": {`{"a":1}`}}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := NotificationFromForm(tt.form)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NotificationFromForm error = %v, want error %v", err, tt.wantErr)
			}
			if tt.badSig && !errors.Is(err, ErrBadSignature) {
				t.Errorf("error = %v, want ErrBadSignature", err)
			}
			if err == nil && (n.RespCode != "00000000" || n.RespDesc != "ok" || n.Sign != "c2ln" || n.RespData != `{"a":1}`) {
				t.Errorf("notification = %+v", n)
			}
		})
	}
}

func TestNotifyAck(t *testing.T) {
	if got := NotifyAck("20250101123456"); got != "RECV_ORD_ID_20250101123456" {
		t.Errorf("NotifyAck = %q", got)
	}
}
