package nkp

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/url"
)

// Request is the envelope of every call: only Data is signed.
type Request struct {
	// SysID is the caller: the service provider or the merchant.
	SysID string `json:"sys_id"`
	// ProductID is the product the caller was given by the console.
	ProductID string `json:"product_id"`
	// Data is the business payload as transmitted.
	Data json.RawMessage `json:"data"`
	// Sign is the signature over the canonical string of Data.
	Sign string `json:"sign"`
}

// Response is the envelope of every synchronous answer.
type Response struct {
	// Data is the business payload exactly as received.
	Data json.RawMessage `json:"data"`
	// Sign is the upstream's signature over Data.
	Sign string `json:"sign"`
}

// EncodeRequest signs data and returns the request body. The data member
// is written in canonical form, so the bytes on the wire are exactly the
// bytes that were signed.
func EncodeRequest(key *rsa.PrivateKey, sysID, productID string, data map[string]any) ([]byte, error) {
	canon, err := Canonicalize(data)
	if err != nil {
		return nil, err
	}
	sig, err := Sign(key, canon)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.WriteString(`{"sys_id":`)
	writeString(&buf, sysID)
	buf.WriteString(`,"product_id":`)
	writeString(&buf, productID)
	buf.WriteString(`,"data":`)
	buf.Write(canon)
	buf.WriteString(`,"sign":`)
	writeString(&buf, sig)
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// DecodeRequest parses a request body. It checks the shape only; call
// VerifyRequest to check the signature.
func DecodeRequest(body []byte) (Request, map[string]any, error) {
	var r Request
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&r); err != nil {
		return Request{}, nil, fmt.Errorf("decode request envelope: %w", err)
	}
	if len(r.Data) == 0 {
		return r, nil, fmt.Errorf("decode request envelope: missing data")
	}
	data, err := DecodeObject(r.Data)
	if err != nil {
		return r, nil, fmt.Errorf("decode request data: %w", err)
	}
	return r, data, nil
}

// VerifyRequest checks the signature of a request by re-canonicalizing its
// data, which is what a server must do: official SDKs sign the compact
// canonical string but may transmit data differently.
func VerifyRequest(pub *rsa.PublicKey, r Request) error {
	canon, err := CanonicalizeJSON(r.Data)
	if err != nil {
		return fmt.Errorf("%w: data is not a JSON object", ErrBadSignature)
	}
	return Verify(pub, canon, r.Sign)
}

// EncodeResponse signs data and returns a response body whose data member
// is the canonical string of data.
func EncodeResponse(key *rsa.PrivateKey, data map[string]any) ([]byte, error) {
	canon, err := Canonicalize(data)
	if err != nil {
		return nil, err
	}
	return EncodeRawResponse(key, canon)
}

// EncodeRawResponse signs rawData exactly as given and returns a response
// body that carries those bytes unchanged as its data member.
func EncodeRawResponse(key *rsa.PrivateKey, rawData []byte) ([]byte, error) {
	sig, err := Sign(key, rawData)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.WriteString(`{"data":`)
	buf.Write(rawData)
	buf.WriteString(`,"sign":`)
	writeString(&buf, sig)
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// VerifyResponse parses a response body and checks its signature, first
// over the raw bytes of the data member as received and, only if that
// fails, over the re-canonicalized data. It returns the raw data.
func VerifyResponse(pub *rsa.PublicKey, body []byte) (json.RawMessage, error) {
	data, _, err := UpstreamKeys{Current: pub}.VerifyResponse(body)
	return data, err
}

// Notification is the asynchronous notification form the upstream posts.
type Notification struct {
	// RespCode is the outer result code of the notification.
	RespCode string
	// RespDesc is the outer result description.
	RespDesc string
	// Sign is the signature over RespData exactly as received.
	Sign string
	// RespData is the JSON string carrying the business fields.
	RespData string
}

// Form field names of a notification.
const (
	FormRespCode = "resp_code"
	FormRespDesc = "resp_desc"
	FormSign     = "sign"
	FormRespData = "resp_data"
)

// NotificationFromForm reads a notification from parsed form values. It
// checks presence only; call Verify before reading any business field.
func NotificationFromForm(form url.Values) (Notification, error) {
	n := Notification{
		RespCode: form.Get(FormRespCode),
		RespDesc: form.Get(FormRespDesc),
		Sign:     form.Get(FormSign),
		RespData: form.Get(FormRespData),
	}
	if n.RespData == "" {
		return n, fmt.Errorf("notification: missing %s", FormRespData)
	}
	if n.Sign == "" {
		return n, fmt.Errorf("notification: %w: missing", ErrBadSignature)
	}
	return n, nil
}

// Verify checks the signature over the raw resp_data string.
func (n Notification) Verify(pub *rsa.PublicKey) error {
	if err := Verify(pub, []byte(n.RespData), n.Sign); err != nil {
		return fmt.Errorf("notification: %w", err)
	}
	return nil
}

// Form returns n as form values, ready to be URL-encoded and posted.
func (n Notification) Form() url.Values {
	return url.Values{
		FormRespCode: {n.RespCode},
		FormRespDesc: {n.RespDesc},
		FormSign:     {n.Sign},
		FormRespData: {n.RespData},
	}
}

// SignNotification builds a signed notification whose resp_data is the
// canonical string of data.
func SignNotification(key *rsa.PrivateKey, respCode, respDesc string, data map[string]any) (Notification, error) {
	canon, err := Canonicalize(data)
	if err != nil {
		return Notification{}, err
	}
	sig, err := Sign(key, canon)
	if err != nil {
		return Notification{}, err
	}
	return Notification{RespCode: respCode, RespDesc: respDesc, Sign: sig, RespData: string(canon)}, nil
}

// NotifyAck returns the body a receiver answers with, HTTP 200, once it has
// durably taken a notification for reqSeqID.
func NotifyAck(reqSeqID string) string { return "RECV_ORD_ID_" + reqSeqID }
