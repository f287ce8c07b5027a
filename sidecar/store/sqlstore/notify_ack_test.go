package sqlstore_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/notify"
	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

// TestNotificationAcknowledgedOnlyAfterItsCommit sends a genuine
// notification over HTTP to the notify handler on each engine while the
// commit that holds its write is blocked: the upstream gets no
// acknowledgement while the commit waits, and gets it once the commit is
// done, after which the payment's new state survives reopening the store.
// "Acknowledged means stored" holds through group commit.
func TestNotificationAcknowledgedOnlyAfterItsCommit(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	forEachEngine(t, func(t *testing.T, ctx context.Context, o opened) {
		p := store.Payment{ID: "pay_ack", MerchantID: "6666000100000001", OutTradeNo: "out-ack", Flow: "a-flow",
			TradeType: upstream.TradeWeChatJSAPI, AmountFen: 100, ReqDate: "20260301", ReqSeqID: "seq-ack",
			Status: store.StatusProcessing, ExpiresAt: time.Now().Add(time.Hour)}
		if err := o.CreatePayment(ctx, &p); err != nil {
			t.Fatal(err)
		}
		tel := telemetry.Bundle{Logger: slog.New(slog.DiscardHandler)}
		led, err := ledger.New(o.Store, ledger.Options{Telemetry: tel})
		if err != nil {
			t.Fatal(err)
		}
		h, err := notify.NewHandler(notify.Config{Verifier: &key.PublicKey}, o.Store, led, notify.Options{Telemetry: tel})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		n, err := nkp.SignNotification(key, "00000000", "success", map[string]any{
			"resp_code": "00000000", "resp_desc": "success", "huifu_id": p.MerchantID, "req_date": p.ReqDate,
			"req_seq_id": p.ReqSeqID, "nkp_seq_id": "0030default220ack", "trans_type": upstream.TradeWeChatJSAPI,
			"trans_amt": "1.00", "trans_stat": "S", "out_trans_id": "4200ack", "party_order_id": "poack",
			"end_time": "20260301101010", "notify_type": "1",
		})
		if err != nil {
			t.Fatal(err)
		}

		g := newGate(t, o.ss)
		type answer struct {
			status int
			body   string
			err    error
		}
		answered := make(chan answer, 1)
		go func() {
			resp, err := srv.Client().Post(srv.URL+"/notify", "application/x-www-form-urlencoded", strings.NewReader(n.Form().Encode()))
			if err != nil {
				answered <- answer{err: err}
				return
			}
			defer func() { _ = resp.Body.Close() }()
			b, err := io.ReadAll(resp.Body)
			answered <- answer{status: resp.StatusCode, body: string(b), err: err}
		}()
		at := receive(t, ctx, g.reached, "the commit of the notification")
		if at[1] != 0 {
			t.Fatalf("at the commit %d callers were answered already, want none", at[1])
		}
		select {
		case a := <-answered:
			t.Fatalf("the upstream was answered %d %q (%v) before the commit", a.status, a.body, a.err)
		default:
		}
		g.open()
		a := receive(t, ctx, answered, "the acknowledgement")
		if a.err != nil || a.status != http.StatusOK || a.body != nkp.NotifyAck(p.ReqSeqID) {
			t.Fatalf("after the commit: %d %q (%v), want 200 and the acknowledgement", a.status, a.body, a.err)
		}
		s := o.reopen(t)
		if got, err := s.GetPayment(ctx, p.ID); err != nil || got.Status != store.StatusSucceeded {
			t.Fatalf("after reopening: %q (%v), want succeeded", got.Status, err)
		}
	})
}
