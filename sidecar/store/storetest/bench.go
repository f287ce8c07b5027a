package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
)

// benchPayload is the size of a typical webhook body.
var benchPayload = json.RawMessage(`{"id":"evt","type":"payment.succeeded","data":{"object":{"id":"pay_0123456789",` +
	`"out_trade_no":"order-0123456789","amount_fen":12345,"status":"succeeded"},` +
	`"upstream":{"trans_stat":"S","nkp_seq_id":"002900TOP1A250301100000P123ac1"}}}`)

// BenchInsertEvent measures InsertEvent on s, one new event per iteration
// spread over 100 order keys.
func BenchInsertEvent(b *testing.B, s store.Store) {
	ctx := context.Background()
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e := &store.Event{ID: fmt.Sprintf("evt_bench_%d", i), Type: "payment.succeeded",
			OrderKey: fmt.Sprintf("pay_%d", i%100), Payload: benchPayload, CreatedAt: now}
		if _, err := s.InsertEvent(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchClaimEvents measures the delivery loop on s: b.N events (over 1000
// order keys) are inserted first, then claimed in batches of 10 and each
// completed as delivered. The time is per event.
func BenchClaimEvents(b *testing.B, s store.Store) {
	ctx := context.Background()
	now := time.Now()
	for i := 0; i < b.N; i++ {
		e := &store.Event{ID: fmt.Sprintf("evt_bench_%d", i), Type: "payment.succeeded",
			OrderKey: fmt.Sprintf("pay_%d", i%1000), Payload: benchPayload, CreatedAt: now}
		if _, err := s.InsertEvent(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	claim := store.Claim{Owner: "bench", LeaseUntil: now.Add(time.Hour)}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		evs, err := s.ClaimEvents(ctx, claim, now, 10)
		if err != nil {
			b.Fatal(err)
		}
		if len(evs) == 0 {
			b.Fatalf("nothing to claim after %d of %d events", done, b.N)
		}
		for _, e := range evs {
			if err := s.CompleteAttempt(ctx, store.Attempt{EventID: e.ID, Owner: "bench", Delivered: true, At: now}); err != nil {
				b.Fatal(err)
			}
		}
		done += len(evs)
	}
}
