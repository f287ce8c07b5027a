package lifecycle_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/paysidecar/paysidecar/sidecar/lifecycle"
)

// recorder notes every start and close in one list.
type recorder struct {
	mu  sync.Mutex
	log []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, s)
}

func (r *recorder) component(name string, startErr, closeErr error) lifecycle.Component {
	return lifecycle.Funcs{
		OnStart: func(context.Context) error { r.add("start " + name); return startErr },
		OnClose: func() error { r.add("close " + name); return closeErr },
	}
}

func TestGroupClosesInReverseOrderOnce(t *testing.T) {
	var r recorder
	g := lifecycle.NewGroup(nil)
	for _, n := range []string{"store", "plugins", "api"} {
		if err := g.Start(context.Background(), n, r.component(n, nil, nil)); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{"start store", "start plugins", "start api", "close api", "close plugins", "close store"}
	if !slices.Equal(r.log, want) {
		t.Fatalf("got %v, want %v", r.log, want)
	}
	if err := g.Start(context.Background(), "late", r.component("late", nil, nil)); !errors.Is(err, lifecycle.ErrClosed) {
		t.Fatalf("start after close: %v", err)
	}
}

func TestGroupFailedStartIsNotClosed(t *testing.T) {
	var r recorder
	g := lifecycle.NewGroup(nil)
	boom := errors.New("boom")
	if err := g.Start(context.Background(), "store", r.component("store", nil, nil)); err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background(), "plugins", r.component("plugins", boom, nil)); !errors.Is(err, boom) {
		t.Fatalf("start error = %v", err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{"start store", "start plugins", "close store"}
	if !slices.Equal(r.log, want) {
		t.Fatalf("got %v, want %v", r.log, want)
	}
}

func TestGroupCloseJoinsErrorsAndClosesEveryOne(t *testing.T) {
	var r recorder
	g := lifecycle.NewGroup(nil)
	e1, e2 := errors.New("e1"), errors.New("e2")
	_ = g.Start(context.Background(), "a", r.component("a", nil, e1))
	_ = g.Start(context.Background(), "b", r.component("b", nil, nil))
	_ = g.Start(context.Background(), "c", r.component("c", nil, e2))
	err := g.Close()
	if !errors.Is(err, e1) || !errors.Is(err, e2) {
		t.Fatalf("close error = %v, want both", err)
	}
	if want := []string{"start a", "start b", "start c", "close c", "close b", "close a"}; !slices.Equal(r.log, want) {
		t.Fatalf("got %v, want %v", r.log, want)
	}
}

func TestCloserOnlyCloses(t *testing.T) {
	closed := false
	c := lifecycle.Closer(func() error { closed = true; return nil })
	if err := c.Start(context.Background()); err != nil || closed {
		t.Fatalf("start: %v closed=%v", err, closed)
	}
	if err := c.Close(); err != nil || !closed {
		t.Fatalf("close: %v closed=%v", err, closed)
	}
}
