package delivery_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/delivery"
	"github.com/paysidecar/paysidecar/sidecar/store"
)

const otherSecret = "whsec_c2Vjb25kIHNlY3JldCBvZiB0aGUgdGVzdHMh"

// The target changes while events flow: every event reaches one of the two
// applications, signed with that application's secret; none is lost or
// sent twice, and an event made after SetTarget returned never goes to the
// old URL.
func TestSetTargetWhileDelivering(t *testing.T) {
	f := newFixture(t)
	a, b := newApp(t, nil), newApp(t, nil)
	d := f.dispatcher(t, delivery.Config{URL: a.srv.URL, PollInterval: 5 * time.Millisecond}, delivery.Options{})
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}

	// The events are made here while the dispatcher's own goroutine
	// delivers them.
	var before, after []string // made before SetTarget returned, and after
	for i := range 60 {
		ids := f.settle(t, fmt.Sprintf("pay_%02d", i), 0)
		d.Wake()
		if i <= 20 {
			before = append(before, ids...)
		} else {
			after = append(after, ids...)
		}
		if i == 20 {
			// Move once the first application has had some.
			waitFor(t, "deliveries to the first application", func() bool { return len(a.requests()) >= 5 })
			if err := d.SetTarget(b.srv.URL+"/new", otherSecret, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	all := append(append([]string(nil), before...), after...)
	waitFor(t, "every event delivered", func() bool {
		for _, id := range all {
			if f.event(t, id).Status != store.EventDelivered {
				return false
			}
		}
		return true
	})

	seen := map[string]string{}
	for name, app := range map[string]*app{"first": a, "second": b} {
		key := secret
		if name == "second" {
			key = otherSecret
		}
		for _, r := range app.requests() {
			if err := delivery.VerifyAt(key, r.Header, r.Body, time.Hour, f.clock.Now()); err != nil {
				t.Errorf("delivery of %s to the %s application is not signed with its secret: %v", r.ID, name, err)
			}
			if prev, ok := seen[r.ID]; ok {
				t.Errorf("event %s delivered twice (%s and %s application)", r.ID, prev, name)
			}
			seen[r.ID] = name
		}
	}
	for _, id := range all {
		if seen[id] == "" {
			t.Errorf("event %s reached neither application", id)
		}
	}
	for _, id := range after {
		if seen[id] != "second" {
			t.Errorf("event %s, made after the target changed, went to the %s application", id, seen[id])
		}
	}
	if len(b.requests()) == 0 {
		t.Error("nothing reached the new target")
	}
}

// A new schedule applies to the next retry of an event already retrying.
func TestSetTargetSchedule(t *testing.T) {
	f := newFixture(t)
	a := newApp(t, func(int, received) int { return http.StatusServiceUnavailable })
	ids := f.settle(t, "pay_1", 0)
	d := f.dispatcher(t, delivery.Config{URL: a.srv.URL, Schedule: delivery.Schedule{time.Hour, time.Hour, time.Hour}}, delivery.Options{})

	runOnce(t, d)
	// Jitter 0.5 of [0, 1h).
	if got, want := f.event(t, ids[0]).NextAttemptAt, t0.Add(30*time.Minute); !got.Equal(want) {
		t.Fatalf("next attempt at %s, want %s", got, want)
	}
	if err := d.SetTarget(a.srv.URL, secret, delivery.Schedule{time.Minute, 3 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(t0.Add(30 * time.Minute))
	runOnce(t, d)
	// The second failure waits between the new first and second steps.
	if got, want := f.event(t, ids[0]).NextAttemptAt, t0.Add(32*time.Minute); !got.Equal(want) {
		t.Errorf("next attempt at %s, want %s (the new schedule)", got, want)
	}
	f.clock.Set(t0.Add(32 * time.Minute))
	runOnce(t, d)
	if e := f.event(t, ids[0]); e.Status != store.EventDead {
		t.Errorf("after the new schedule's two retries the event is %s, want dead", e.Status)
	}
}

// A target that is not valid is refused and changes nothing; the error
// never shows the secret or the URL.
func TestSetTargetRefusesBad(t *testing.T) {
	f := newFixture(t)
	a := newApp(t, nil)
	d := f.dispatcher(t, delivery.Config{URL: a.srv.URL}, delivery.Options{})
	for _, tt := range []struct {
		name, url, secret string
		schedule          delivery.Schedule
	}{
		{"no url", "", otherSecret, nil},
		{"relative url", "/hook", otherSecret, nil},
		{"short secret", "http://user:pw@127.0.0.1:1/", "abc", nil},
		{"bad schedule", "http://user:pw@127.0.0.1:1/", otherSecret, delivery.Schedule{time.Second, -time.Second}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := d.SetTarget(tt.url, tt.secret, tt.schedule)
			if err == nil {
				t.Fatal("accepted")
			}
			if msg := err.Error(); strings.Contains(msg, "c2Vjb25k") || strings.Contains(msg, "pw@") {
				t.Errorf("error reveals the secret or the URL: %v", err)
			}
		})
	}
	ids := f.settle(t, "pay_1", 0)
	f.clock.Set(t0.Add(time.Second))
	runOnce(t, d)
	reqs := a.requests()
	if len(reqs) != 1 || reqs[0].ID != ids[0] {
		t.Fatalf("requests to the original target = %d, want the event", len(reqs))
	}
	if err := delivery.VerifyAt(secret, reqs[0].Header, reqs[0].Body, time.Minute, f.clock.Now()); err != nil {
		t.Errorf("a refused target changed the secret: %v", err)
	}
}
