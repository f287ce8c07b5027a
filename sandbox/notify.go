package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// Delivery states of a notification.
const (
	// DeliveryHeld: picked for reordering and waiting to be overtaken.
	DeliveryHeld = "held"
	// DeliveryPending: being attempted or waiting between attempts.
	DeliveryPending = "pending"
	// DeliveryDelivered: a receiver acknowledged it.
	DeliveryDelivered = "delivered"
	// DeliveryFailed: every attempt failed; the sandbox gave up.
	DeliveryFailed = "failed"
	// DeliveryDropped: the drop fault kept it from being sent at all.
	DeliveryDropped = "dropped"
	// DeliveryStopped: the server was closed before it finished.
	DeliveryStopped = "stopped"
)

// Kinds of notification.
const (
	KindPayment = "payment"
	KindRefund  = "refund"
)

// NotificationRecord is one delivery of an asynchronous notification and
// its outcome. A duplicated notification has two records with Copy 1 and 2.
type NotificationRecord struct {
	// ID is the record's own id, in creation order.
	ID string `json:"id"`
	// Event names what is notified: kind/huifu_id/req_date/req_seq_id.
	Event string `json:"event"`
	// Kind is KindPayment or KindRefund.
	Kind     string `json:"kind"`
	HuifuID  string `json:"huifu_id"`
	ReqDate  string `json:"req_date"`
	ReqSeqID string `json:"req_seq_id"`
	// TransStat is the state the notification reports.
	TransStat string `json:"trans_stat"`
	// URL is the notify_url it is posted to.
	URL string `json:"url"`
	// Copy is 1, or 2 for the second copy of a duplicated notification.
	Copy int `json:"copy"`
	// Faults lists the notification faults applied: drop, duplicate,
	// reorder, tamper, error_code.
	Faults []string `json:"faults,omitempty"`
	// RespCode, RespDesc, RespData and Sign are the form fields as posted
	// (after any tampering).
	RespCode string `json:"resp_code"`
	RespDesc string `json:"resp_desc"`
	RespData string `json:"resp_data"`
	Sign     string `json:"sign"`
	// State is one of the Delivery* constants.
	State string `json:"state"`
	// Attempts lists every attempt in order.
	Attempts []DeliveryAttempt `json:"attempts"`
}

// DeliveryAttempt is one POST of a notification.
type DeliveryAttempt struct {
	// N counts attempts from 1.
	N int `json:"n"`
	// At is when the attempt started, by Config.Clock.
	At time.Time `json:"at"`
	// ElapsedMS is how long it took in real time.
	ElapsedMS int64 `json:"elapsed_ms"`
	// Status is the HTTP status answered, 0 when none was.
	Status int `json:"status,omitempty"`
	// Body is the start of the answer's body.
	Body string `json:"body,omitempty"`
	// Error says why the attempt failed; "timeout" when NotifyTimeout
	// passed.
	Error string `json:"error,omitempty"`
	// OK reports an acknowledgement: HTTP 200 and a body of exactly
	// RECV_ORD_ID_<req_seq_id>, trailing white space ignored.
	OK bool `json:"ok"`
}

func (r *NotificationRecord) clone() NotificationRecord {
	c := *r
	c.Faults = append([]string(nil), r.Faults...)
	c.Attempts = append([]DeliveryAttempt(nil), r.Attempts...)
	return c
}

// notifyPaymentLocked queues the notification of a payment that reached a
// final state, when the order named a notify_url.
func (s *Server) notifyPaymentLocked(o *order) {
	if o.notifyURL == "" {
		return
	}
	data := map[string]any{
		"resp_code":      nkp.CodeAccepted,
		"resp_desc":      "success",
		"huifu_id":       o.huifu,
		"req_seq_id":     o.seq,
		"req_date":       o.date,
		"nkp_seq_id":     o.nkpSeqID,
		"trans_type":     o.tradeType,
		"trans_amt":      o.amount.Yuan(),
		"trans_stat":     o.stat,
		"out_trans_id":   o.outTransID,
		"party_order_id": o.partyOrderID,
		"end_time":       o.endTime.In(cst()).Format(nkp.TimestampLayout),
		"notify_type":    nkp.NotifyTypeChannel,
		"bank_code":      o.bankCode,
		"bank_message":   o.bankMessage,
	}
	if o.stat == nkp.StatSuccess {
		s.channelResponse(o, data)
	}
	s.dispatchLocked(KindPayment, o.serial, o.stat, o.notifyURL, data)
}

// notifyRefundLocked queues the notification of a refund that reached a
// final state, when the refund named a notify_url.
func (s *Server) notifyRefundLocked(r *refund) {
	if r.notifyURL == "" {
		return
	}
	data := map[string]any{
		"resp_code":      nkp.CodeAccepted,
		"resp_desc":      "success",
		"huifu_id":       r.huifu,
		"req_seq_id":     r.seq,
		"req_date":       r.date,
		"nkp_seq_id":     r.nkpSeqID,
		"trans_type":     nkp.TransRefund,
		"ord_amt":        r.amount.Yuan(),
		"trans_stat":     r.stat,
		"org_req_seq_id": r.order.seq,
		"org_req_date":   r.order.date,
		"org_nkp_seq_id": r.order.nkpSeqID,
		"party_order_id": r.order.partyOrderID,
		"end_time":       r.endTime.In(cst()).Format(nkp.TimestampLayout),
		"notify_type":    nkp.NotifyTypeChannel,
		"bank_code":      r.bankCode,
		"bank_message":   r.bankMessage,
	}
	s.dispatchLocked(KindRefund, r.serial, r.stat, r.notifyURL, data)
}

// dispatchLocked signs a notification, applies the notification faults and
// starts one owned goroutine per copy to deliver it.
func (s *Server) dispatchLocked(kind string, key serial, stat, url string, data map[string]any) {
	s.cfg.Profile.ToWire(data)
	n, err := nkp.SignNotification(s.signingKey(), nkp.CodeAccepted, "success", data)
	if err != nil {
		s.log.Error("sandbox could not sign a notification", "kind", kind, "req_seq_id", key.seq, "error", err)
		return
	}
	event := kind + "/" + key.huifu + "/" + key.date + "/" + key.seq
	f := s.faults.Notify
	var faults []string
	drop := s.hit(f.DropRate, "notify", "drop", event)
	if drop {
		faults = append(faults, "drop")
	}
	copies := 1
	if s.hit(f.DuplicateRate, "notify", "duplicate", event) {
		copies = 2
		faults = append(faults, "duplicate")
	}
	hold := s.hit(f.ReorderRate, "notify", "reorder", event)
	if hold {
		faults = append(faults, "reorder")
	}
	if s.hit(f.TamperRate, "notify", "tamper", event) {
		n.RespData = tamper(n.RespData)
		faults = append(faults, "tamper")
	}
	if s.hit(f.ErrorCodeRate, "notify", "error_code", event) {
		n.RespCode, n.RespDesc = nkp.CodeSystem, "system busy"
		faults = append(faults, "error_code")
	}
	if drop {
		copies = 1
	}
	holdMax := time.Duration(f.ReorderHoldMS) * time.Millisecond
	if holdMax <= 0 {
		holdMax = DefaultReorderHold
	}
	latency := time.Duration(f.LatencyMS) * time.Millisecond
	for c := 1; c <= copies; c++ {
		rec := &NotificationRecord{
			ID:    fmt.Sprintf("n%06d", len(s.l.notes)+1),
			Event: event, Kind: kind, HuifuID: key.huifu, ReqDate: key.date, ReqSeqID: key.seq,
			TransStat: stat, URL: url, Copy: c, Faults: faults,
			RespCode: n.RespCode, RespDesc: n.RespDesc, RespData: n.RespData, Sign: n.Sign,
			State: DeliveryPending, Attempts: []DeliveryAttempt{},
		}
		s.l.notes = append(s.l.notes, rec)
		switch {
		case drop:
			rec.State = DeliveryDropped
			s.log.Info("sandbox dropped a notification by fault injection", "event", event)
			continue
		case hold:
			rec.State = DeliveryHeld
		}
		release := s.release
		form := n.Form().Encode()
		s.spawnLocked(func(ctx context.Context) {
			s.deliver(ctx, rec, form, hold, release, holdMax, latency)
		})
	}
}

// tamper alters resp_data after signing: the amount is raised by one yuan
// (or the state flipped when there is no amount), so the signature fails.
func tamper(respData string) string {
	m, err := nkp.DecodeObject([]byte(respData))
	if err != nil {
		return respData + " "
	}
	changed := false
	for _, k := range []string{"trans_amt", "ord_amt"} {
		if v, ok := m[k].(string); ok {
			if amt, err := nkp.ParseYuan(v); err == nil {
				m[k] = (amt + 100).Yuan()
				changed = true
			}
		}
	}
	if !changed {
		if m["trans_stat"] == nkp.StatSuccess {
			m["trans_stat"] = nkp.StatFailure
		} else {
			m["trans_stat"] = nkp.StatSuccess
		}
	}
	out, err := nkp.Canonicalize(m)
	if err != nil {
		return respData + " "
	}
	return string(out)
}

// releaseLocked lets every held notification go.
func (s *Server) releaseLocked() {
	close(s.release)
	s.release = make(chan struct{})
}

// deliver posts one notification copy with the upstream's rules: each
// attempt has NotifyTimeout, a failed attempt (timeout, transport error,
// any answer but HTTP 200 with the acknowledgement body) is retried
// NotifyRetries times after NotifyBackoff, and no redirect is followed.
func (s *Server) deliver(ctx context.Context, rec *NotificationRecord, form string, hold bool, release <-chan struct{}, holdMax, latency time.Duration) {
	if hold {
		t := time.NewTimer(holdMax)
		select {
		case <-release:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	if ctx.Err() != nil || !sleep(ctx, latency) {
		s.finish(rec, DeliveryStopped)
		return
	}
	s.mu.Lock()
	rec.State = DeliveryPending
	s.mu.Unlock()
	total := 1 + s.cfg.NotifyRetries
	for i := 1; i <= total; i++ {
		if i > 1 && !sleep(ctx, s.cfg.NotifyBackoff(i-1)) {
			s.finish(rec, DeliveryStopped)
			return
		}
		a := s.attempt(ctx, rec.URL, form, rec.ReqSeqID)
		a.N = i
		s.mu.Lock()
		rec.Attempts = append(rec.Attempts, a)
		if i == 1 && !hold {
			s.releaseLocked()
		}
		s.mu.Unlock()
		s.log.Debug("sandbox notification attempt", "event", rec.Event, "attempt", i, "ok", a.OK, "status", a.Status, "error", a.Error)
		if a.OK {
			s.finish(rec, DeliveryDelivered)
			return
		}
		if ctx.Err() != nil {
			s.finish(rec, DeliveryStopped)
			return
		}
	}
	s.log.Info("sandbox gave up on a notification", "event", rec.Event, "attempts", total)
	s.finish(rec, DeliveryFailed)
}

func (s *Server) finish(rec *NotificationRecord, state string) {
	s.mu.Lock()
	rec.State = state
	s.mu.Unlock()
}

// attempt makes one POST and judges the answer.
func (s *Server) attempt(ctx context.Context, url, form, reqSeq string) DeliveryAttempt {
	a := DeliveryAttempt{At: s.now()}
	start := time.Now()
	actx, cancel := context.WithTimeout(ctx, s.cfg.NotifyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, url, strings.NewReader(form))
	if err != nil {
		a.Error = "bad notify_url: " + err.Error()
		a.ElapsedMS = time.Since(start).Milliseconds()
		return a
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
	resp, err := s.http.Do(req)
	if err == nil {
		a.Status = resp.StatusCode
		var body []byte
		body, err = io.ReadAll(io.LimitReader(resp.Body, 4096))
		_ = resp.Body.Close()
		if len(body) > 256 {
			body = body[:256]
		}
		a.Body = string(body)
	}
	switch {
	case err != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded):
		a.Error = "timeout"
	case err != nil:
		a.Error = err.Error()
	case a.Status != http.StatusOK:
		a.Error = fmt.Sprintf("HTTP %d is not an acknowledgement", a.Status)
	case strings.TrimRight(a.Body, " \t\r\n") != nkp.NotifyAck(reqSeq):
		a.Error = "body is not " + nkp.NotifyAck(reqSeq)
	default:
		a.OK = true
	}
	a.ElapsedMS = time.Since(start).Milliseconds()
	return a
}
