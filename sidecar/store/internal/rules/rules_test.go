package rules

import (
	"errors"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
)

func TestTime(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	cases := []struct {
		in, want time.Time
	}{
		{time.Time{}, time.Time{}},
		{time.Date(2025, 3, 1, 18, 0, 0, 123456789, cst), time.Date(2025, 3, 1, 10, 0, 0, 123456000, time.UTC)},
		{time.Date(2025, 3, 1, 10, 0, 0, 999, time.UTC), time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)},
	}
	for _, tc := range cases {
		got := Time(tc.in)
		if !got.Equal(tc.want) || (!got.IsZero() && got.Location() != time.UTC) {
			t.Errorf("Time(%v) = %v, want %v in UTC", tc.in, got, tc.want)
		}
	}
}

func TestApplyPayment(t *testing.T) {
	at := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		from, to       store.Status
		applied, final bool
	}{
		{store.StatusPending, store.StatusProcessing, true, false},
		{store.StatusProcessing, store.StatusSucceeded, true, true},
		{store.StatusSucceeded, store.StatusProcessing, false, false},
		{store.StatusSucceeded, store.StatusFailed, false, false},
		{store.StatusPending, "", false, false},
	}
	for _, tc := range cases {
		p := store.Payment{Status: tc.from, NkpSeqID: "old", NextQueryAt: at}
		applied, final := ApplyPayment(&p, store.Transition{To: tc.to, NkpSeqID: "new", At: at})
		if applied != tc.applied || final != tc.final {
			t.Errorf("%s->%s = %v, %v; want %v, %v", tc.from, tc.to, applied, final, tc.applied, tc.final)
		}
		if !applied && (p.Status != tc.from || p.NkpSeqID != "old") {
			t.Errorf("%s->%s not applied but changed %+v", tc.from, tc.to, p)
		}
		if final && (!p.FinishedAt.Equal(at) || !p.NextQueryAt.IsZero()) {
			t.Errorf("%s->%s final but FinishedAt %v NextQueryAt %v", tc.from, tc.to, p.FinishedAt, p.NextQueryAt)
		}
	}
}

func TestEventDefaults(t *testing.T) {
	e := store.Event{ID: "e1", Type: "payment.succeeded", ObjectID: "pay_1", Payload: []byte(`{}`), Attempts: 3, Status: store.EventDead}
	if err := Event(&e); err != nil {
		t.Fatal(err)
	}
	if e.OrderKey != "pay_1" || e.Status != store.EventPending || e.Attempts != 0 || e.CreatedAt.IsZero() ||
		!e.NextAttemptAt.Equal(e.CreatedAt) {
		t.Fatalf("defaults %+v", e)
	}
	for _, bad := range []store.Event{{Type: "t", Payload: []byte(`{}`)}, {ID: "e", Type: "t", Payload: []byte(`{`)}} {
		if err := Event(&bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Event(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
}
