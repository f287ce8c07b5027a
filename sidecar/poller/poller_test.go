package poller

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFullBatchesRunBackToBackThenWaitForWake(t *testing.T) {
	var calls atomic.Int64
	remaining := atomic.Int64{}
	remaining.Store(25)
	p := New(Config{
		Interval: time.Hour, // only full batches and wake-ups move it
		Batch:    10,
		Run: func(context.Context) (int, error) {
			calls.Add(1)
			n := min(remaining.Load(), 10)
			remaining.Add(-n)
			return int(n), nil
		},
	})
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// 10, 10, 5: the short batch ends the burst.
	waitUntil(t, "three batches", func() bool { return calls.Load() == 3 })
	if err := p.Start(context.Background()); !errors.Is(err, ErrStarted) {
		t.Fatalf("second Start: %v", err)
	}
	remaining.Store(3)
	p.Wake()
	waitUntil(t, "the woken batch", func() bool { return calls.Load() == 4 && remaining.Load() == 0 })
}

func TestTicksErrorsAndClose(t *testing.T) {
	var ticks, errs atomic.Int64
	p := New(Config{
		Interval: time.Millisecond,
		Batch:    1,
		Run:      func(context.Context) (int, error) { return 0, errors.New("store down") },
		OnError:  func(error) { errs.Add(1) },
		OnTick:   func(context.Context) { ticks.Add(1) },
	})
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "ticks and errors", func() bool { return ticks.Load() >= 3 && errs.Load() >= 3 })
	p.Close()
	p.Close() // idempotent
	New(Config{}).Close()
}

func TestCloseWaitsForTheRunInFlight(t *testing.T) {
	var inFlight, started atomic.Int64
	p := New(Config{
		Interval: time.Hour,
		Batch:    1,
		Run: func(ctx context.Context) (int, error) {
			inFlight.Add(1)
			started.Add(1)
			<-ctx.Done()
			time.Sleep(10 * time.Millisecond) // finishing up after the cancel
			inFlight.Add(-1)
			return 0, ctx.Err()
		},
	})
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a run in flight", func() bool { return started.Load() == 1 })
	p.Close()
	if n := inFlight.Load(); n != 0 {
		t.Fatalf("Close returned with %d runs in flight", n)
	}
}
