// Package lifecycle runs the parts of the sidecar that have a life of
// their own (the store, the plugin manager, the webhook dispatcher, the
// reverse query, the listeners, the tracer provider).
//
// Every such part is a Component: Start begins its work and returns once
// it is running (a goroutine it starts is owned by it), Close stops that
// work and waits for it. A Group starts components one at a time, in the
// order they depend on each other, and closes the started ones in the
// reverse order, each once, so that a part never outlives what it uses:
// the listeners stop taking requests before the reverse query and the
// dispatcher stop, and those before the store closes.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// Component is a part of the sidecar that runs between Start and Close.
type Component interface {
	// Start begins the component's work and returns when it is running.
	// The context bounds the start itself and, for a component that
	// keeps it, the work.
	Start(ctx context.Context) error
	// Close stops the component's work and waits for it to end.
	Close() error
}

// Funcs makes a Component of two functions; either may be nil.
type Funcs struct {
	// OnStart is called by Start.
	OnStart func(ctx context.Context) error
	// OnClose is called by Close.
	OnClose func() error
}

// Start implements Component.
func (f Funcs) Start(ctx context.Context) error {
	if f.OnStart == nil {
		return nil
	}
	return f.OnStart(ctx)
}

// Close implements Component.
func (f Funcs) Close() error {
	if f.OnClose == nil {
		return nil
	}
	return f.OnClose()
}

// Closer is a Component that is already running when it is made (an open
// store, a tracer provider) and only needs closing.
func Closer(close func() error) Component { return Funcs{OnClose: close} }

type entry struct {
	name string
	c    Component
}

// Group starts components in order and closes them in reverse. Its methods
// are safe for concurrent use.
type Group struct {
	log *slog.Logger

	mu      sync.Mutex
	started []entry
	closed  bool
}

// NewGroup returns an empty group that logs each close to log (nil logs
// nothing).
func NewGroup(log *slog.Logger) *Group {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Group{log: log}
}

// ErrClosed is returned by Start on a group that was closed.
var ErrClosed = errors.New("lifecycle: group closed")

// Start starts c and, when it started, adds it to the group so that Close
// stops it. A component that fails to start is not added; the ones started
// before it stay running until Close.
func (g *Group) Start(ctx context.Context, name string, c Component) error {
	g.mu.Lock()
	closed := g.closed
	g.mu.Unlock()
	if closed {
		return fmt.Errorf("start %s: %w", name, ErrClosed)
	}
	if err := c.Start(ctx); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		// Closed while this one was starting: stop it at once.
		return errors.Join(fmt.Errorf("start %s: %w", name, ErrClosed), c.Close())
	}
	g.started = append(g.started, entry{name, c})
	return nil
}

// Close closes the started components in the reverse order of their start,
// each once, and returns their errors joined. Later calls do nothing.
func (g *Group) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	started := g.started
	g.started = nil
	g.mu.Unlock()
	var errs []error
	for i := len(started) - 1; i >= 0; i-- {
		e := started[i]
		if err := e.c.Close(); err != nil {
			g.log.Warn("stop failed", "component", e.name, "err", err)
			errs = append(errs, fmt.Errorf("close %s: %w", e.name, err))
			continue
		}
		g.log.Debug("stopped", "component", e.name)
	}
	return errors.Join(errs...)
}
