package pluginhost

import (
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/paysidecar/paysidecar/sdk/plugin"
)

// label asks the mock which label it runs with.
func label(t *testing.T, h *harness) string {
	t.Helper()
	f, err := h.m.Flow("mock")
	if err != nil {
		return "unavailable"
	}
	s, err := f.ShapeOrder(t.Context(), plugin.OrderInput{PaymentID: "pay_1"})
	if err != nil {
		return "error: " + err.Error()
	}
	return s.Fields["label"]
}

// New settings reach the running plugin while calls are made: every call
// succeeds with the old settings or the new, the process stays the same,
// and settings the schema or the plugin refuses change nothing.
func TestReconfigure(t *testing.T) {
	h := newHarness(t, []PluginConfig{mockConfig(t, "first")})
	if err := h.m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	pid := h.pid("mock")
	flow, err := h.m.Flow("mock")
	if err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var problems []string
	for range 4 {
		wg.Go(func() {
			seenSecond := false
			for {
				select {
				case <-stop:
					return
				default:
				}
				s, err := flow.ShapeOrder(context.Background(), plugin.OrderInput{PaymentID: "pay_1"})
				var p string
				switch {
				case err != nil:
					p = "a call failed: " + err.Error()
				case s.Fields["label"] == "second":
					seenSecond = true
				case s.Fields["label"] != "first" || seenSecond:
					p = "a call saw label " + s.Fields["label"] + " after the new settings"
				}
				if p != "" {
					mu.Lock()
					problems = append(problems, p)
					mu.Unlock()
				}
			}
		})
	}
	if err := h.m.Reconfigure(t.Context(), "mock", map[string]string{"label": "second"}); err != nil {
		t.Fatalf("Reconfigure: %v", err)
	}
	waitFor(t, 30*time.Second, "calls with the new settings", func() bool { return label(t, h) == "second" })
	close(stop)
	wg.Wait()
	for _, p := range problems {
		t.Error(p)
	}
	if h.pid("mock") != pid || testutil.ToFloat64(h.m.metrics.restarts.WithLabelValues("mock")) != 0 {
		t.Errorf("the plugin was restarted (pid %d, was %d)", h.pid("mock"), pid)
	}
	if len(h.logs.entries("plugin reconfigured")) != 1 {
		t.Errorf("no log line says the plugin was reconfigured")
	}

	for _, tt := range []struct {
		name     string
		settings map[string]string
		want     string
	}{
		{"not in the schema", map[string]string{"label": "third", "colour": "red"}, "colour"},
		{"of the wrong type", map[string]string{"label": "third", "max_fen": "many"}, "max_fen"},
		{"refused by the plugin", map[string]string{"label": "third", "fail_configure": "not today"}, "refused its new settings"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := h.m.Reconfigure(t.Context(), "mock", tt.settings)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Reconfigure: %v, want an error about %s", err, tt.want)
			}
			if got := label(t, h); got != "second" {
				t.Errorf("label %q after refused settings, want the old one", got)
			}
		})
	}
	if h.pid("mock") != pid {
		t.Error("refused settings restarted the plugin")
	}
	// A restart keeps the last settings the plugin took.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the restarted plugin", func() bool { return h.pid("mock") != 0 && h.pid("mock") != pid })
	if got := label(t, h); got != "second" {
		t.Errorf("after a restart the label is %q, want the reconfigured one", got)
	}

	if err := h.m.Reconfigure(t.Context(), "nope", nil); !errors.Is(err, ErrUnknownFlow) {
		t.Errorf("Reconfigure of an unknown flow: %v", err)
	}
}

// A plugin that cannot take its new settings (here it is stopped and the
// call runs out of time) is restarted with them.
func TestReconfigureRestartsAPluginThatDoesNotAnswer(t *testing.T) {
	h := newHarness(t, []PluginConfig{mockConfig(t, "first")})
	if err := h.m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	pid := h.pid("mock")
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := h.m.Reconfigure(ctx, "mock", map[string]string{"label": "second"}); err != nil {
		t.Fatalf("Reconfigure: %v", err)
	}
	waitFor(t, 60*time.Second, "a new process with the new settings", func() bool {
		return h.pid("mock") != pid && label(t, h) == "second"
	})
	if n := testutil.ToFloat64(h.m.metrics.restarts.WithLabelValues("mock")); n != 1 {
		t.Errorf("restarts = %v, want 1", n)
	}
}

// A plugin down when new settings come gets them when it restarts.
func TestReconfigureWhileDown(t *testing.T) {
	h := newHarness(t, []PluginConfig{mockConfig(t, "first")}, WithRestartBackoff(2*time.Second, 2*time.Second))
	if err := h.m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	pid := h.pid("mock")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the plugin marked down", func() bool { return h.pid("mock") == 0 })
	if err := h.m.Reconfigure(t.Context(), "mock", map[string]string{"label": "second"}); err != nil {
		t.Fatalf("Reconfigure: %v", err)
	}
	waitFor(t, 30*time.Second, "the restarted plugin with the new settings", func() bool { return label(t, h) == "second" })
}
