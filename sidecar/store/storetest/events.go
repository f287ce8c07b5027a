package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
)

var eventTests = []test{
	{"InsertAndGet", func(f *fixture) {
		e1 := f.event("pay_a")
		e1.NextAttemptAt = time.Time{}
		f.insert(e1)
		if e1.Seq <= 0 || e1.Status != store.EventPending || !sameTime(e1.NextAttemptAt, e1.CreatedAt) {
			f.t.Fatalf("written back %+v", e1)
		}
		wantEqual(f.t, "GetEvent", f.getEvent(e1.ID), *e1)
		e2 := f.event("pay_b")
		f.insert(e2)
		if e2.Seq <= e1.Seq {
			f.t.Fatalf("Seq %d after %d, want increasing", e2.Seq, e1.Seq)
		}
		dup := *e1
		dup.Payload = json.RawMessage(`{"other":true}`)
		dup.Seq = 0
		isNew, err := f.s.InsertEvent(f.ctx, &dup)
		if err != nil || isNew {
			f.t.Fatalf("duplicate InsertEvent = %v, %v; want not new", isNew, err)
		}
		if string(f.getEvent(e1.ID).Payload) != string(e1.Payload) {
			f.t.Fatal("a duplicate overwrote the event")
		}
		_, err = f.s.GetEvent(f.ctx, "evt_missing")
		wantErr(f.t, "GetEvent", err, store.ErrNotFound)

		// Defaults: the order key falls back to the object, then the id.
		lone := &store.Event{ID: "evt_lone", Type: "refund.failed", Payload: json.RawMessage(`{}`)}
		f.insert(lone)
		obj := &store.Event{ID: "evt_obj", Type: "refund.failed", ObjectID: "ref_1", Payload: json.RawMessage(`{}`)}
		f.insert(obj)
		if g := f.getEvent("evt_lone"); g.OrderKey != "evt_lone" || g.CreatedAt.IsZero() {
			f.t.Fatalf("lone event %+v", g)
		}
		if g := f.getEvent("evt_obj"); g.OrderKey != "ref_1" {
			f.t.Fatalf("object event %+v", g)
		}

		for name, bad := range map[string]store.Event{
			"no id":        {Type: "t", Payload: json.RawMessage(`{}`)},
			"no type":      {ID: "e", Payload: json.RawMessage(`{}`)},
			"no payload":   {ID: "e", Type: "t"},
			"bad payload":  {ID: "e", Type: "t", Payload: json.RawMessage(`{"a"`)},
			"text payload": {ID: "e", Type: "t", Payload: json.RawMessage(`hello`)},
		} {
			_, err := f.s.InsertEvent(f.ctx, &bad)
			wantErr(f.t, name, err, store.ErrInvalid)
		}
		if c := f.counts(); c[store.EventPending] != 4 {
			f.t.Fatalf("pending = %d, want 4", c[store.EventPending])
		}
	}},
	{"ClaimFollowsOrderKey", func(f *fixture) {
		k1, k2, k3 := f.event("K"), f.event("K"), f.event("K")
		l1 := f.event("L")
		f.insert(k1, l1, k2, k3)
		step := func(owner string, want ...string) {
			f.t.Helper()
			got := f.claim(owner, f.now, time.Minute, 10)
			if !slices.Equal(got, want) {
				f.t.Fatalf("%s claimed %v, want %v", owner, got, want)
			}
		}
		step("a", k1.ID, l1.ID) // only the head of each key, in Seq order
		step("b")               // both are leased
		f.complete(store.Attempt{EventID: k1.ID, Owner: "a", Delivered: true, At: f.now})
		step("b", k2.ID)
		f.complete(store.Attempt{EventID: k2.ID, Owner: "b", Dead: true, Error: "410 Gone", At: f.now})
		step("c") // k3 waits behind the dead k2; l1 is still leased
		f.complete(store.Attempt{EventID: l1.ID, Owner: "a", Delivered: true, At: f.now})
		step("c")
		noErr(f.t, "ReplayEvent", f.s.ReplayEvent(f.ctx, k2.ID, f.now))
		step("c", k2.ID)
		f.complete(store.Attempt{EventID: k2.ID, Owner: "c", Delivered: true, At: f.now})
		step("c", k3.ID)
		f.complete(store.Attempt{EventID: k3.ID, Owner: "c", Delivered: true, At: f.now})
		step("c")
		if c := f.counts(); c[store.EventDelivered] != 4 || c[store.EventPending] != 0 || c[store.EventDead] != 0 {
			f.t.Fatalf("counts %v", c)
		}
	}},
	{"ClaimRespectsLimitDueTimeAndArgs", func(f *fixture) {
		var evs []*store.Event
		for i := range 5 {
			e := f.event(fmt.Sprintf("key%d", i))
			evs = append(evs, e)
		}
		evs[1].NextAttemptAt = f.at(time.Minute)
		f.insert(evs...)
		if got := f.claim("a", f.now, time.Hour, 2); !slices.Equal(got, []string{evs[0].ID, evs[2].ID}) {
			f.t.Fatalf("claimed %v", got)
		}
		if got := f.claim("a", f.now, time.Hour, 10); !slices.Equal(got, []string{evs[3].ID, evs[4].ID}) {
			f.t.Fatalf("claimed %v", got)
		}
		if got := f.claim("a", f.at(time.Minute), time.Minute, 10); !slices.Equal(got, []string{evs[1].ID}) {
			f.t.Fatalf("claimed %v once due", got)
		}
		for name, c := range map[string]struct {
			claim store.Claim
			now   time.Time
			limit int
		}{
			"no owner":      {store.Claim{LeaseUntil: f.at(time.Hour)}, f.now, 1},
			"lease in past": {store.Claim{Owner: "a", LeaseUntil: f.now}, f.now, 1},
			"zero limit":    {store.Claim{Owner: "a", LeaseUntil: f.at(time.Hour)}, f.now, 0},
			"no now":        {store.Claim{Owner: "a", LeaseUntil: f.at(time.Hour)}, time.Time{}, 1},
		} {
			_, err := f.s.ClaimEvents(f.ctx, c.claim, c.now, c.limit)
			wantErr(f.t, name, err, store.ErrInvalid)
		}
	}},
	{"RetryScheduling", func(f *fixture) {
		e := f.event("K")
		f.insert(e)
		f.claim("a", f.now, time.Minute, 1)
		f.complete(store.Attempt{EventID: e.ID, Owner: "a", NextAttemptAt: f.at(5 * time.Minute), Error: "503", At: f.at(time.Second)})
		got := f.getEvent(e.ID)
		if got.Status != store.EventPending || got.Attempts != 1 || got.LastError != "503" ||
			!sameTime(got.NextAttemptAt, f.at(5*time.Minute)) || !got.DeliveredAt.IsZero() {
			f.t.Fatalf("after a failed attempt %+v", got)
		}
		if ids := f.claim("a", f.at(4*time.Minute), time.Minute, 1); len(ids) != 0 {
			f.t.Fatalf("claimed %v before the retry is due", ids)
		}
		if ids := f.claim("b", f.at(5*time.Minute), time.Minute, 1); len(ids) != 1 {
			f.t.Fatalf("claimed %v when the retry is due", ids)
		}
		f.complete(store.Attempt{EventID: e.ID, Owner: "b", Delivered: true, At: f.at(6 * time.Minute)})
		got = f.getEvent(e.ID)
		if got.Status != store.EventDelivered || got.Attempts != 2 || !sameTime(got.DeliveredAt, f.at(6*time.Minute)) {
			f.t.Fatalf("after delivery %+v", got)
		}
		// A zero NextAttemptAt retries at once.
		g := f.event("G")
		f.insert(g)
		f.claim("a", f.now, time.Minute, 1)
		f.complete(store.Attempt{EventID: g.ID, Owner: "a", At: f.at(time.Second)})
		if ids := f.claim("a", f.at(time.Second), time.Minute, 1); !slices.Equal(ids, []string{g.ID}) {
			f.t.Fatalf("claimed %v, want the immediate retry", ids)
		}
	}},
	{"LeaseExpiryHandsOver", func(f *fixture) {
		e := f.event("K")
		f.insert(e)
		if ids := f.claim("a", f.now, 30*time.Second, 1); len(ids) != 1 {
			f.t.Fatalf("a claimed %v", ids)
		}
		if ids := f.claim("b", f.at(29*time.Second), 30*time.Second, 1); len(ids) != 0 {
			f.t.Fatalf("b claimed %v while a's lease holds", ids)
		}
		if ids := f.claim("b", f.at(30*time.Second), 30*time.Second, 1); len(ids) != 1 {
			f.t.Fatalf("b claimed %v after a's lease ended", ids)
		}
		err := f.s.CompleteAttempt(f.ctx, store.Attempt{EventID: e.ID, Owner: "a", Delivered: true, At: f.at(31 * time.Second)})
		wantErr(f.t, "the replaced owner completes", err, store.ErrLeaseLost)
		if got := f.getEvent(e.ID); got.Status != store.EventPending || got.Attempts != 0 {
			f.t.Fatalf("a lost lease changed the event: %+v", got)
		}
		f.complete(store.Attempt{EventID: e.ID, Owner: "b", Delivered: true, At: f.at(32 * time.Second)})
		err = f.s.CompleteAttempt(f.ctx, store.Attempt{EventID: e.ID, Owner: "b", Delivered: true})
		wantErr(f.t, "completing twice", err, store.ErrLeaseLost)
		if got := f.getEvent(e.ID); got.Attempts != 1 {
			f.t.Fatalf("attempts = %d, want 1", got.Attempts)
		}

		// An owner whose lease ended but who was not replaced still holds it.
		g := f.event("G")
		f.insert(g)
		f.claim("a", f.now, time.Second, 1)
		f.complete(store.Attempt{EventID: g.ID, Owner: "a", Delivered: true, At: f.at(time.Hour)})
	}},
	{"CompleteAttemptRefusals", func(f *fixture) {
		e := f.event("K")
		f.insert(e)
		err := f.s.CompleteAttempt(f.ctx, store.Attempt{EventID: e.ID, Owner: "a", Delivered: true})
		wantErr(f.t, "never claimed", err, store.ErrLeaseLost)
		f.claim("a", f.now, time.Minute, 1)
		err = f.s.CompleteAttempt(f.ctx, store.Attempt{EventID: e.ID, Owner: "b", Delivered: true})
		wantErr(f.t, "another owner", err, store.ErrLeaseLost)
		err = f.s.CompleteAttempt(f.ctx, store.Attempt{EventID: "evt_missing", Owner: "a", Delivered: true})
		wantErr(f.t, "unknown event", err, store.ErrNotFound)
		err = f.s.CompleteAttempt(f.ctx, store.Attempt{EventID: e.ID, Owner: "a", Delivered: true, Dead: true})
		wantErr(f.t, "delivered and dead", err, store.ErrInvalid)
		err = f.s.CompleteAttempt(f.ctx, store.Attempt{EventID: e.ID, Delivered: true})
		wantErr(f.t, "no owner", err, store.ErrInvalid)
		if got := f.getEvent(e.ID); got.Status != store.EventPending || got.Attempts != 0 {
			f.t.Fatalf("refusals changed the event: %+v", got)
		}
		f.complete(store.Attempt{EventID: e.ID, Owner: "a", Delivered: true})
	}},
	{"CompleteAttemptsInOneCall", func(f *fixture) {
		d, r, x, lost, other := f.event("D"), f.event("R"), f.event("X"), f.event("L"), f.event("O")
		f.insert(d, r, x, lost, other)
		if ids := f.claim("a", f.now, time.Minute, 10); len(ids) != 5 {
			f.t.Fatalf("claimed %v", ids)
		}
		// Some outcomes are refused, each alone; the others are recorded.
		errs, err := f.s.CompleteAttempts(f.ctx, []store.Attempt{
			{EventID: d.ID, Owner: "a", Delivered: true, At: f.at(time.Second)},
			{EventID: r.ID, Owner: "a", Error: "HTTP 500", NextAttemptAt: f.at(time.Hour), At: f.at(time.Second)},
			{EventID: x.ID, Owner: "a", Dead: true, Error: "retries exhausted", At: f.at(time.Second)},
			{EventID: "evt_missing", Owner: "a", Delivered: true},
			{EventID: other.ID, Owner: "a", Delivered: true, Dead: true},
			{EventID: lost.ID, Owner: "z", Delivered: true},
		})
		noErr(f.t, "CompleteAttempts", err)
		if len(errs) != 6 {
			f.t.Fatalf("%d errors for 6 attempts", len(errs))
		}
		for i := range 3 {
			noErr(f.t, "CompleteAttempts: attempt "+strconv.Itoa(i), errs[i])
		}
		wantErr(f.t, "unknown event", errs[3], store.ErrNotFound)
		wantErr(f.t, "delivered and dead", errs[4], store.ErrInvalid)
		wantErr(f.t, "another owner", errs[5], store.ErrLeaseLost)
		if got := f.getEvent(d.ID); got.Status != store.EventDelivered || got.Attempts != 1 || !sameTime(got.DeliveredAt, f.at(time.Second)) {
			f.t.Fatalf("delivered event %+v", got)
		}
		if got := f.getEvent(r.ID); got.Status != store.EventPending || got.Attempts != 1 || got.LastError != "HTTP 500" ||
			!sameTime(got.NextAttemptAt, f.at(time.Hour)) {
			f.t.Fatalf("retried event %+v", got)
		}
		if got := f.getEvent(x.ID); got.Status != store.EventDead || got.Attempts != 1 {
			f.t.Fatalf("dead event %+v", got)
		}
		for _, e := range []*store.Event{lost, other} {
			if got := f.getEvent(e.ID); got.Status != store.EventPending || got.Attempts != 0 {
				f.t.Fatalf("a refused attempt changed the event: %+v", got)
			}
		}
		// Recorded attempts released their leases: the retry is claimed
		// when due, by anyone.
		if ids := f.claim("b", f.at(time.Hour), time.Minute, 10); !slices.Contains(ids, r.ID) {
			f.t.Fatalf("claimed %v, want the retry %s", ids, r.ID)
		}
		errs, err = f.s.CompleteAttempts(f.ctx, nil)
		if err != nil || len(errs) != 0 {
			f.t.Fatalf("CompleteAttempts(nil) = %v, %v", errs, err)
		}

		// More attempts than one statement takes, and an event named
		// twice: the second attempt at it finds the lease released by the
		// first, as two calls would.
		var many []store.Attempt
		for i := range 70 {
			e := f.event(fmt.Sprintf("M%d", i))
			f.insert(e)
			many = append(many, store.Attempt{EventID: e.ID, Owner: "c", Delivered: true, At: f.at(2 * time.Hour)})
		}
		if ids := f.claim("c", f.at(2*time.Hour), time.Minute, 100); len(ids) < 70 {
			f.t.Fatalf("claimed %d events, want at least 70", len(ids))
		}
		errs, err = f.s.CompleteAttempts(f.ctx, many)
		noErr(f.t, "CompleteAttempts of 70", err)
		for i, e := range errs {
			noErr(f.t, "CompleteAttempts of 70: attempt "+strconv.Itoa(i), e)
		}
		if c := f.counts(); c[store.EventDelivered] != 71 {
			f.t.Fatalf("counts %v, want 71 delivered", c)
		}
		twice := f.event("T")
		f.insert(twice)
		f.claim("c", f.at(3*time.Hour), time.Minute, 100)
		errs, err = f.s.CompleteAttempts(f.ctx, []store.Attempt{
			{EventID: twice.ID, Owner: "c", Delivered: true, At: f.at(3 * time.Hour)},
			{EventID: twice.ID, Owner: "c", Delivered: true, At: f.at(3 * time.Hour)},
		})
		noErr(f.t, "CompleteAttempts twice", err)
		noErr(f.t, "the first of two attempts", errs[0])
		wantErr(f.t, "the second of two attempts", errs[1], store.ErrLeaseLost)
		if got := f.getEvent(twice.ID); got.Status != store.EventDelivered || got.Attempts != 1 {
			f.t.Fatalf("event completed twice in one call: %+v", got)
		}
	}},
	{"DeadLettersAndReplay", func(f *fixture) {
		e, d := f.event("K"), f.event("L")
		f.insert(e, d)
		f.claim("a", f.now, time.Minute, 10)
		f.complete(store.Attempt{EventID: e.ID, Owner: "a", NextAttemptAt: f.at(time.Minute), Error: "timeout", At: f.now})
		f.complete(store.Attempt{EventID: d.ID, Owner: "a", Delivered: true, At: f.now})
		f.claim("a", f.at(time.Minute), time.Minute, 10)
		f.complete(store.Attempt{EventID: e.ID, Owner: "a", Dead: true, Error: "retries exhausted", At: f.at(time.Minute)})
		got := f.getEvent(e.ID)
		if got.Status != store.EventDead || got.Attempts != 2 || got.LastError != "retries exhausted" {
			f.t.Fatalf("dead event %+v", got)
		}
		if ids := f.claim("a", f.at(time.Hour), time.Minute, 10); len(ids) != 0 {
			f.t.Fatalf("claimed %v: a dead event is never claimed", ids)
		}
		dead, err := f.s.ListEvents(f.ctx, store.EventDead, 0, 10)
		noErr(f.t, "ListEvents(dead)", err)
		if len(dead) != 1 || dead[0].ID != e.ID {
			f.t.Fatalf("dead letters %+v", dead)
		}
		if c := f.counts(); c[store.EventDead] != 1 || c[store.EventDelivered] != 1 || c[store.EventPending] != 0 {
			f.t.Fatalf("counts %v", c)
		}

		for _, id := range []string{e.ID, d.ID} {
			noErr(f.t, "ReplayEvent", f.s.ReplayEvent(f.ctx, id, f.at(2*time.Hour)))
			got := f.getEvent(id)
			if got.Status != store.EventPending || got.Attempts != 0 || !sameTime(got.NextAttemptAt, f.at(2*time.Hour)) ||
				!got.DeliveredAt.IsZero() {
				f.t.Fatalf("replayed %+v", got)
			}
		}
		if ids := f.claim("a", f.at(2*time.Hour-time.Second), time.Minute, 10); len(ids) != 0 {
			f.t.Fatalf("claimed %v before the replay is due", ids)
		}
		if ids := f.claim("a", f.at(2*time.Hour), time.Minute, 10); len(ids) != 2 {
			f.t.Fatalf("claimed %v after replay", ids)
		}
		// Replaying a pending (here: leased) event leaves it alone.
		noErr(f.t, "ReplayEvent of a pending event", f.s.ReplayEvent(f.ctx, e.ID, f.at(3*time.Hour)))
		f.complete(store.Attempt{EventID: e.ID, Owner: "a", Delivered: true, At: f.at(2 * time.Hour)})
		wantErr(f.t, "ReplayEvent of an unknown event", f.s.ReplayEvent(f.ctx, "evt_missing", f.now), store.ErrNotFound)
	}},
	{"ListEventsPaging", func(f *fixture) {
		var ids []string
		for i := range 7 {
			e := f.event(fmt.Sprintf("key%d", i))
			f.insert(e)
			ids = append(ids, e.ID)
		}
		f.claim("a", f.now, time.Minute, 2)
		f.complete(store.Attempt{EventID: ids[0], Owner: "a", Delivered: true})
		f.complete(store.Attempt{EventID: ids[1], Owner: "a", Dead: true})

		page := func(status store.EventStatus, limit int) []string {
			var all []string
			var after int64
			for range 10 {
				evs, err := f.s.ListEvents(f.ctx, status, after, limit)
				noErr(f.t, "ListEvents", err)
				if len(evs) > limit {
					f.t.Fatalf("ListEvents returned %d > limit %d", len(evs), limit)
				}
				if len(evs) == 0 {
					return all
				}
				for _, e := range evs {
					if status != "" && e.Status != status {
						f.t.Fatalf("ListEvents(%q) returned a %q event", status, e.Status)
					}
					all = append(all, e.ID)
				}
				after = evs[len(evs)-1].Seq
			}
			f.t.Fatal("paging did not end")
			return nil
		}
		if got := page(store.EventPending, 2); !slices.Equal(got, ids[2:]) {
			f.t.Fatalf("pending pages %v, want %v", got, ids[2:])
		}
		if got := page("", 3); !slices.Equal(got, ids) {
			f.t.Fatalf("all pages %v, want %v", got, ids)
		}
		if got := page(store.EventDelivered, 1); !slices.Equal(got, ids[:1]) {
			f.t.Fatalf("delivered %v", got)
		}
		_, err := f.s.ListEvents(f.ctx, "lost", 0, 10)
		wantErr(f.t, "unknown status", err, store.ErrInvalid)
		_, err = f.s.ListEvents(f.ctx, store.EventPending, 0, 0)
		wantErr(f.t, "zero limit", err, store.ErrInvalid)
		c := f.counts()
		if len(c) != 3 || c[store.EventPending] != 5 || c[store.EventDelivered] != 1 || c[store.EventDead] != 1 {
			f.t.Fatalf("counts %v", c)
		}
	}},
	{"CountEventsEmpty", func(f *fixture) {
		c := f.counts()
		want := map[store.EventStatus]int{store.EventPending: 0, store.EventDelivered: 0, store.EventDead: 0}
		if fmt.Sprint(c) != fmt.Sprint(want) {
			f.t.Fatalf("counts %v, want %v", c, want)
		}
	}},
	{"ConcurrentClaimersNeverShare", func(f *fixture) {
		const events, workers = 120, 6
		for i := range events {
			f.insert(f.event(fmt.Sprintf("key%03d", i)))
		}
		claimed := runClaimers(f, workers, events, func(owner string) ([]string, error) {
			evs, err := f.s.ClaimEvents(f.ctx, store.Claim{Owner: owner, LeaseUntil: f.at(time.Hour)}, f.now, 7)
			ids := make([]string, 0, len(evs))
			for _, e := range evs {
				ids = append(ids, e.ID)
			}
			return ids, err
		})
		if len(claimed) != events {
			f.t.Fatalf("%d distinct events claimed, want %d", len(claimed), events)
		}
	}},
	{"ConcurrentDeliveryKeepsOrder", func(f *fixture) {
		// Workers claim, deliver and complete at once; every event is
		// delivered exactly once and each key's events in Seq order.
		const keys, perKey, workers = 10, 5, 4
		var all []*store.Event
		for range perKey {
			for k := range keys {
				e := f.event(fmt.Sprintf("key%02d", k))
				f.insert(e)
				all = append(all, e)
			}
		}
		var (
			mu        sync.Mutex
			delivered = map[string][]int64{} // order key -> seqs in delivery order
			count     = map[string]int{}
			wg        sync.WaitGroup
			errs      []error
		)
		deadline := time.Now().Add(20 * time.Second)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				owner := fmt.Sprintf("w%d", w)
				for time.Now().Before(deadline) {
					mu.Lock()
					done := len(count) == len(all)
					mu.Unlock()
					if done {
						return
					}
					evs, err := f.s.ClaimEvents(f.ctx, store.Claim{Owner: owner, LeaseUntil: f.at(time.Hour)}, f.now, 3)
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
						return
					}
					for _, e := range evs {
						mu.Lock()
						delivered[e.OrderKey] = append(delivered[e.OrderKey], e.Seq)
						count[e.ID]++
						mu.Unlock()
						if err := f.s.CompleteAttempt(f.ctx, store.Attempt{EventID: e.ID, Owner: owner, Delivered: true, At: f.now}); err != nil {
							mu.Lock()
							errs = append(errs, err)
							mu.Unlock()
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		if len(errs) > 0 {
			f.t.Fatalf("errors: %v", errs)
		}
		for _, e := range all {
			if count[e.ID] != 1 {
				f.t.Fatalf("event %s delivered %d times", e.ID, count[e.ID])
			}
		}
		for key, seqs := range delivered {
			if !slices.IsSorted(seqs) {
				f.t.Fatalf("key %s delivered out of order: %v", key, seqs)
			}
		}
	}},
}

// runClaimers runs workers goroutines that call claim until total distinct
// items are claimed (or a deadline passes), fails the test if an item is
// handed out twice, and returns the set of claimed items.
func runClaimers(f *fixture, workers, total int, claim func(owner string) ([]string, error)) map[string]string {
	var (
		mu      sync.Mutex
		claimed = map[string]string{}
		dups    []string
		errs    []error
		wg      sync.WaitGroup
	)
	deadline := time.Now().Add(20 * time.Second)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("worker-%d", w)
			for time.Now().Before(deadline) {
				mu.Lock()
				done := len(claimed) >= total
				mu.Unlock()
				if done {
					return
				}
				ids, err := claim(owner)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				for _, id := range ids {
					if prev, ok := claimed[id]; ok {
						dups = append(dups, fmt.Sprintf("%s by %s and %s", id, prev, owner))
					}
					claimed[id] = owner
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		f.t.Fatalf("claim errors: %v", errs)
	}
	if len(dups) > 0 {
		f.t.Fatalf("work handed out twice: %v", dups)
	}
	return claimed
}
