package notify

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestRefusalLogWritesTheCountWhenTheIntervalEnds(t *testing.T) {
	var buf lockedBuffer
	s := newRefusalLog(slog.New(slog.NewTextHandler(&buf, nil)), 2, 30*time.Millisecond, time.Now)
	for range 5 {
		s.log(context.Background(), slog.LevelWarn, "bad_signature", "notification refused")
	}
	s.log(context.Background(), slog.LevelWarn, "malformed", "notification refused")
	if got := strings.Count(buf.String(), `msg="notification refused"`); got != 3 {
		t.Fatalf("%d lines one by one, want 3:\n%s", got, buf.String())
	}
	// No further refusal comes; the count is written by the timer.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), "reason=bad_signature count=3") {
		if time.Now().After(deadline) {
			t.Fatalf("no count written:\n%s", buf.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if strings.Contains(buf.String(), "reason=malformed count") {
		t.Errorf("a count for a reason with nothing left out:\n%s", buf.String())
	}
}

func TestSourceOf(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:80":              "192.0.2.1",
		"[::ffff:192.0.2.1]:80":     "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:80": "2001:db8:1:2::/64",
		"[2001:db8:1:2::9]:1":       "2001:db8:1:2::/64",
		"pipe":                      "pipe",
	} {
		if got := sourceOf(in); got != want {
			t.Errorf("sourceOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRateTableBounded(t *testing.T) {
	rt, err := newRateTable(Limits{Sources: 2, RatePerSource: 1, BurstPerSource: 1})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, src := range []string{"a", "b", "c", "d"} {
		if !rt.allow(src, now) {
			t.Fatalf("first request of %s refused", src)
		}
	}
	if n := rt.cache.Len(); n != 2 {
		t.Errorf("table holds %d sources, want at most 2", n)
	}
	if rt.allow("d", now) {
		t.Error("a remembered source got a second token")
	}
}
