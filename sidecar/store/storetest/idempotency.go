package storetest

import (
	"fmt"
	"sync"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
)

const scope = "POST /v1/payments"

// begin calls BeginIdempotency and checks the resulting state.
func (f *fixture) begin(key, hash string, now time.Time, want store.IdemState) store.IdemRecord {
	f.t.Helper()
	rec, err := f.s.BeginIdempotency(f.ctx, scope, key, hash, now, time.Minute)
	if err != nil {
		f.t.Fatalf("BeginIdempotency(%s, %s): %v", key, hash, err)
	}
	if rec.State != want {
		f.t.Fatalf("BeginIdempotency(%s, %s) state = %q, want %q", key, hash, rec.State, want)
	}
	return rec
}

var idempotencyTests = []test{
	{"BeginFinishReplay", func(f *fixture) {
		rec := f.begin("k1", "h1", f.now, store.IdemNew)
		if rec.Scope != scope || rec.Key != "k1" || rec.RequestHash != "h1" || !sameTime(rec.ExpiresAt, f.at(time.Minute)) {
			f.t.Fatalf("new record %+v", rec)
		}
		f.begin("k1", "h1", f.at(time.Second), store.IdemInProgress)
		mm := f.begin("k1", "h2", f.at(time.Second), store.IdemMismatch)
		if mm.Body != nil || mm.StatusCode != 0 {
			f.t.Fatalf("a mismatch carries an answer: %+v", mm)
		}
		// Another scope is another key.
		rec, err := f.s.BeginIdempotency(f.ctx, "POST /v1/refunds", "k1", "h2", f.now, time.Minute)
		noErr(f.t, "BeginIdempotency in another scope", err)
		if rec.State != store.IdemNew {
			f.t.Fatalf("another scope: state %q", rec.State)
		}

		body := []byte(`{"id":"pay_1","status":"processing"}`)
		noErr(f.t, "FinishIdempotency", f.s.FinishIdempotency(f.ctx, scope, "k1", 201, body, f.at(24*time.Hour)))
		done := f.begin("k1", "h1", f.at(time.Hour), store.IdemDone)
		if done.StatusCode != 201 || string(done.Body) != string(body) || !sameTime(done.ExpiresAt, f.at(24*time.Hour)) {
			f.t.Fatalf("done record %+v", done)
		}
		f.begin("k1", "h2", f.at(time.Hour), store.IdemMismatch)
		wantErr(f.t, "Finish twice", f.s.FinishIdempotency(f.ctx, scope, "k1", 500, nil, f.at(time.Hour)), store.ErrConflict)
		if again := f.begin("k1", "h1", f.at(2*time.Hour), store.IdemDone); again.StatusCode != 201 {
			f.t.Fatalf("the second Finish changed the answer: %+v", again)
		}
		wantErr(f.t, "Finish of an unknown key", f.s.FinishIdempotency(f.ctx, scope, "nope", 200, nil, f.at(time.Hour)), store.ErrNotFound)

		// An empty body is kept as empty, not lost.
		f.begin("k2", "h", f.now, store.IdemNew)
		noErr(f.t, "Finish with no body", f.s.FinishIdempotency(f.ctx, scope, "k2", 204, nil, f.at(time.Hour)))
		if rec := f.begin("k2", "h", f.now, store.IdemDone); rec.StatusCode != 204 || len(rec.Body) != 0 {
			f.t.Fatalf("empty answer %+v", rec)
		}
	}},
	{"ReleaseAllowsRetry", func(f *fixture) {
		f.begin("k", "h1", f.now, store.IdemNew)
		noErr(f.t, "Release", f.s.ReleaseIdempotency(f.ctx, scope, "k"))
		f.begin("k", "h2", f.now, store.IdemNew)
		noErr(f.t, "Finish", f.s.FinishIdempotency(f.ctx, scope, "k", 200, []byte("{}"), f.at(time.Hour)))
		// Releasing a finished key keeps its answer; an unknown key is fine.
		noErr(f.t, "Release of a finished key", f.s.ReleaseIdempotency(f.ctx, scope, "k"))
		f.begin("k", "h2", f.now, store.IdemDone)
		noErr(f.t, "Release of an unknown key", f.s.ReleaseIdempotency(f.ctx, scope, "unknown"))
	}},
	{"ExpiredLockIsTakenOver", func(f *fixture) {
		f.begin("k", "h1", f.now, store.IdemNew) // locked for a minute
		f.begin("k", "h1", f.at(59*time.Second), store.IdemInProgress)
		rec := f.begin("k", "h1", f.at(61*time.Second), store.IdemNew)
		if !sameTime(rec.ExpiresAt, f.at(121*time.Second)) || !sameTime(rec.CreatedAt, f.at(61*time.Second)) {
			f.t.Fatalf("taken-over record %+v", rec)
		}
		f.begin("k", "h1", f.at(62*time.Second), store.IdemInProgress)
		// An expired answer is forgotten too, whatever the new body.
		noErr(f.t, "Finish", f.s.FinishIdempotency(f.ctx, scope, "k", 200, []byte("{}"), f.at(time.Hour)))
		f.begin("k", "h1", f.at(59*time.Minute), store.IdemDone)
		f.begin("k", "h9", f.at(61*time.Minute), store.IdemNew)
	}},
	{"Purge", func(f *fixture) {
		f.begin("short", "h", f.now, store.IdemNew) // lock ends at +1m
		f.begin("long", "h", f.now, store.IdemNew)
		noErr(f.t, "Finish", f.s.FinishIdempotency(f.ctx, scope, "long", 200, []byte("{}"), f.at(24*time.Hour)))
		f.begin("mid", "h", f.now, store.IdemNew)
		noErr(f.t, "Finish", f.s.FinishIdempotency(f.ctx, scope, "mid", 200, []byte("{}"), f.at(time.Hour)))
		n, err := f.s.PurgeIdempotency(f.ctx, f.at(2*time.Hour))
		noErr(f.t, "Purge", err)
		if n != 2 {
			f.t.Fatalf("Purge deleted %d, want 2", n)
		}
		f.begin("long", "h", f.at(2*time.Hour), store.IdemDone)
		wantErr(f.t, "Finish of a purged key", f.s.FinishIdempotency(f.ctx, scope, "mid", 200, nil, f.at(time.Hour)), store.ErrNotFound)
		n, err = f.s.PurgeIdempotency(f.ctx, f.at(2*time.Hour))
		noErr(f.t, "Purge again", err)
		if n != 0 {
			f.t.Fatalf("second Purge deleted %d, want 0", n)
		}
	}},
	{"ConcurrentBeginHasOneOwner", func(f *fixture) {
		const n = 8
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			states = map[store.IdemState]int{}
			errs   []error
		)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rec, err := f.s.BeginIdempotency(f.ctx, scope, "twin", "h", f.now, time.Minute)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				}
				states[rec.State]++
			}()
		}
		wg.Wait()
		if len(errs) > 0 || states[store.IdemNew] != 1 || states[store.IdemInProgress] != n-1 {
			f.t.Fatalf("states %v, errors %v; want one new and %d in progress", states, errs, n-1)
		}
	}},
	{"RefusesBadInput", func(f *fixture) {
		cases := []struct {
			scope, key, hash string
			now              time.Time
			lockFor          time.Duration
		}{
			{"", "k", "h", f.now, time.Minute},
			{scope, "", "h", f.now, time.Minute},
			{scope, "k", "", f.now, time.Minute},
			{scope, "k", "h", time.Time{}, time.Minute},
			{scope, "k", "h", f.now, 0},
		}
		for i, tc := range cases {
			_, err := f.s.BeginIdempotency(f.ctx, tc.scope, tc.key, tc.hash, tc.now, tc.lockFor)
			wantErr(f.t, fmt.Sprintf("case %d", i), err, store.ErrInvalid)
		}
		f.begin("k", "h", f.now, store.IdemNew) // nothing was stored by the refusals
		wantErr(f.t, "bad status code", f.s.FinishIdempotency(f.ctx, scope, "k", 0, nil, f.at(time.Hour)), store.ErrInvalid)
		wantErr(f.t, "no expiry", f.s.FinishIdempotency(f.ctx, scope, "k", 200, nil, time.Time{}), store.ErrInvalid)
		f.begin("k", "h", f.now, store.IdemInProgress)
	}},
}

var notificationTests = []test{
	{"Dedupe", func(f *fixture) {
		n := store.Notification{ID: "abc123", ReqSeqID: "seq1", Kind: "payment", ObjectID: "pay_1",
			RespData: `{"req_seq_id":"seq1","trans_stat":"S"}`, ReceivedAt: f.now}
		for i, want := range []bool{true, false, false} {
			isNew, err := f.s.RecordNotification(f.ctx, n)
			noErr(f.t, "RecordNotification", err)
			if isNew != want {
				f.t.Fatalf("call %d: new = %v, want %v", i, isNew, want)
			}
		}
		n.ID = "def456"
		isNew, err := f.s.RecordNotification(f.ctx, n)
		if err != nil || !isNew {
			f.t.Fatalf("another notification: new = %v, err = %v", isNew, err)
		}
		_, err = f.s.RecordNotification(f.ctx, store.Notification{RespData: "x"})
		wantErr(f.t, "no id", err, store.ErrInvalid)
	}},
	{"ConcurrentDuplicatesOneNew", func(f *fixture) {
		const n = 8
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			fresh int
			errs  []error
		)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				isNew, err := f.s.RecordNotification(f.ctx, store.Notification{ID: "same", RespData: "{}", ReceivedAt: f.now})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				}
				if isNew {
					fresh++
				}
			}()
		}
		wg.Wait()
		if len(errs) > 0 || fresh != 1 {
			f.t.Fatalf("%d new of %d, errors %v; want exactly one new", fresh, n, errs)
		}
	}},
}
