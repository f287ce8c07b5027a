package pluginhost

import (
	"context"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/paysidecar/paysidecar/sdk/plugin"
)

// shortDir returns a new directory with a short path, since a Unix
// socket's path is limited to about a hundred bytes.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ps")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// sockets returns the Unix sockets under dir.
func sockets(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeSocket != 0 {
			out = append(out, path)
		}
		return nil
	})
	return out
}

// TestHungPluginIsRestarted makes a real plugin process hang two ways,
// stopped by SIGSTOP and with its handlers deadlocked, and checks that the
// periodic health check through the flow's service finds it, kills it and
// starts a new one.
func TestHungPluginIsRestarted(t *testing.T) {
	cases := []struct {
		name string
		hang func(t *testing.T, h *harness, f plugin.Flow, pid int)
	}{
		{"stopped", func(t *testing.T, _ *harness, _ plugin.Flow, pid int) {
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
		}},
		{"deadlocked", func(t *testing.T, h *harness, f plugin.Flow, _ int) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			_, err := f.ShapeOrder(ctx, plugin.OrderInput{PaymentID: "pay_deadlock", Metadata: map[string]string{"mock.deadlock": "true"}})
			if err == nil {
				t.Fatal("a deadlocking call returned")
			}
			waitFor(t, 5*time.Second, "the deadlock", func() bool { return len(h.logs.entries("mock deadlocked")) == 1 })
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := mockConfig(t, "hang")
			cfg.Settings["verbose"] = "true" // the mock logs each call, health checks included
			h := newHarness(t, []PluginConfig{cfg}, WithHealthCheck(100*time.Millisecond, 500*time.Millisecond))
			if err := h.m.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			f, err := h.m.Flow("mock")
			if err != nil {
				t.Fatal(err)
			}
			oldPID := h.pid("mock")
			// Healthy, it is left alone through several checks.
			waitFor(t, 10*time.Second, "three health checks", func() bool {
				n := 0
				for _, e := range h.logs.entries("mock call") {
					if e["method"] == "Check" && e["plugin"] == "mock" {
						n++
					}
				}
				return n >= 3
			})
			if len(h.logs.entries("plugin down; restarting")) != 0 || h.pid("mock") != oldPID {
				t.Fatalf("a healthy plugin was restarted")
			}
			c.hang(t, h, f, oldPID)
			waitFor(t, 15*time.Second, "restart", func() bool {
				return h.m.Ready() && testutil.ToFloat64(h.m.metrics.restarts.WithLabelValues("mock")) == 1
			})
			waitFor(t, 10*time.Second, "the hung process gone", func() bool { return !alive(oldPID) })
			down := h.logs.entries("plugin down; restarting")
			if len(down) != 1 || !strings.HasPrefix(down[0]["reason"].(string), "health check failed") {
				t.Errorf("restart logged as %v", down)
			}
			s := shape(t, f, t.Context(), nil)
			if s.Fields["pid"] == "" || h.pid("mock") == oldPID || s.Fields["label"] != "hang" {
				t.Errorf("after the restart: fields %v, pid %d (old %d)", s.Fields, h.pid("mock"), oldPID)
			}
		})
	}
}

// TestSocketsLiveInTheRunDirectory checks where a plugin's socket is:
// inside the host run's private directory, which Close removes.
func TestSocketsLiveInTheRunDirectory(t *testing.T) {
	base := shortDir(t)
	h := newHarness(t, []PluginConfig{mockConfig(t, "sock")}, WithSocketDir(base))
	if err := h.m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The plugin's socket and the host's for its services, both in the
	// directory go-plugin made for the plugin in the run's directory.
	socks := sockets(t, base)
	if len(socks) != 2 {
		t.Fatalf("sockets = %v, want the plugin's and the host's", socks)
	}
	for _, s := range socks {
		if !strings.HasPrefix(s, h.m.run.path+string(filepath.Separator)+"plugin-dir") {
			t.Errorf("socket %s is not in a plugin's directory of %s", s, h.m.run.path)
		}
	}
	if fi, err := os.Stat(base); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("socket directory mode: %v %v", fi, err)
	}
	if err := h.m.Close(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(base); len(entries) != 0 {
		t.Errorf("left behind after Close: %v", entries)
	}
}

// TestStaleRunDirectoriesAreRemoved leaves what a killed host leaves: a
// run directory nobody holds the lock of, with a socket in it. The next
// host removes it, and leaves alone the directory of a host that lives.
func TestStaleRunDirectoriesAreRemoved(t *testing.T) {
	base := shortDir(t)
	stale := filepath.Join(base, "run-killed")
	if err := os.MkdirAll(filepath.Join(stale, "plugin-dirx"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stale, ".lock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(stale, "plugin-dirx", "plugin1"))
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = ln.Close()
	if len(sockets(t, stale)) != 1 {
		t.Fatal("no stale socket to remove")
	}
	live := filepath.Join(base, "run-alive")
	if err := os.MkdirAll(live, 0o700); err != nil {
		t.Fatal(err)
	}
	lock, err := lockFile(filepath.Join(live, ".lock"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lock.Close() }()

	h := newHarness(t, []PluginConfig{mockConfig(t, "stale")}, WithSocketDir(base))
	if err := h.m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale run directory is still there: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the directory of a live host was removed: %v", err)
	}
	removed := h.logs.entries("removed the plugin sockets of a host that is gone")
	if len(removed) != 1 || removed[0]["dir"] != stale {
		t.Errorf("removal logged as %v", removed)
	}
}

// TestCloseStopsAHungPlugin stops a plugin process with SIGSTOP, so that
// it cannot answer go-plugin's request to exit, and checks that Close
// still ends it.
func TestCloseStopsAHungPlugin(t *testing.T) {
	h := newHarness(t, []PluginConfig{mockConfig(t, "frozen")})
	if err := h.m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	pid := h.pid("mock")
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- h.m.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return with a hung plugin")
	}
	waitFor(t, 10*time.Second, "the hung process gone", func() bool { return !alive(pid) })
}
