package delivery

import (
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// Delivery formats.
const (
	// FormatJSON posts the event as JSON (Standard Webhooks).
	FormatJSON = "json"
	// FormatForm posts the upstream's own notification form fields, for
	// applications written against the upstream directly.
	FormatForm = "form"
)

// FormBody returns the form-encoded body of an event for FormatForm.
//
// When a notification produced the event, the body carries resp_code,
// resp_desc, resp_data and sign exactly as the upstream sent them, so an
// application that verifies the upstream's signature keeps working. When a
// reverse query produced it there is no such notification: resp_data is
// then a notification-shaped JSON object built from the query answer and
// the object (in profile's field dialect), resp_desc names the source
// ("query", or "api" when the creating call's answer was final;
// "requires_attention" for a refund still unfinished after its query
// window, whose trans_stat is then P), and sign is absent; the
// webhook-signature header authenticates it instead.
func FormBody(payload []byte, profile nkp.Profile) ([]byte, error) {
	var ev client.Event
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("decode event payload: %w", err)
	}
	if n := ev.Data.Notification; n != nil {
		return []byte(url.Values{
			nkp.FormRespCode: {n.RespCode},
			nkp.FormRespDesc: {n.RespDesc},
			nkp.FormRespData: {n.RespData},
			nkp.FormSign:     {n.Sign},
		}.Encode()), nil
	}
	data := map[string]any{}
	if len(ev.Data.Upstream) > 0 {
		m, err := nkp.DecodeObject(ev.Data.Upstream)
		if err != nil {
			return nil, fmt.Errorf("decode upstream fields of event %s: %w", ev.ID, err)
		}
		data = m
	}
	set := func(k, v string) {
		if v != "" {
			data[k] = v
		}
	}
	switch {
	case ev.Data.Payment != nil:
		p := ev.Data.Payment
		set("huifu_id", p.MerchantID)
		set("req_date", p.ReqDate)
		set("req_seq_id", p.ReqSeqID)
		set("nkp_seq_id", p.NkpSeqID)
		set("trans_type", p.TradeType)
		set("trans_amt", nkp.Fen(p.AmountFen).Yuan())
		set("party_order_id", p.PartyOrder)
		set("out_trans_id", p.OutTransID)
		set("trans_stat", transStat(p.Status))
		if p.Status == client.StatusClosed {
			set("bank_code", nkp.BankCodeOrderClosed)
		}
	case ev.Data.Refund != nil:
		r := ev.Data.Refund
		set("huifu_id", r.MerchantID)
		set("req_date", r.ReqDate)
		set("req_seq_id", r.ReqSeqID)
		set("nkp_seq_id", r.NkpSeqID)
		set("trans_type", nkp.TransRefund)
		set("ord_amt", nkp.Fen(r.AmountFen).Yuan())
		set("trans_stat", transStat(r.Status))
	default:
		return nil, fmt.Errorf("event %s carries neither a payment nor a refund", ev.ID)
	}
	set("resp_code", nkp.CodeAccepted)
	source := ev.Data.Source
	if source == "" {
		source = "query"
	}
	if ev.Type == client.EventRefundRequiresAttention {
		source = "requires_attention"
	}
	profile.ToWire(data)
	canon, err := nkp.Canonicalize(data)
	if err != nil {
		return nil, fmt.Errorf("encode resp_data of event %s: %w", ev.ID, err)
	}
	return []byte(url.Values{
		nkp.FormRespCode: {nkp.CodeAccepted},
		nkp.FormRespDesc: {source},
		nkp.FormRespData: {string(canon)},
	}.Encode()), nil
}

func transStat(status string) string {
	switch status {
	case client.StatusSucceeded:
		return nkp.StatSuccess
	case client.StatusFailed, client.StatusClosed:
		return nkp.StatFailure
	}
	return nkp.StatProcessing
}
