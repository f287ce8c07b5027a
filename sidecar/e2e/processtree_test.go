package e2e

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
)

// childPIDs returns the processes whose parent is pid and whose binary is
// in dir.
func childPIDs(t *testing.T, pid int, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st := procStat(child); len(st) > 1 && st[1] == strconv.Itoa(pid) {
			if exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); filepath.Dir(exe) == dir {
				out = append(out, child)
			}
		}
	}
	return out
}

// procStat returns the fields of /proc/<pid>/stat after the command name:
// state, ppid, …; nil when the process is gone.
func procStat(pid int) []string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
}

// running reports whether pid is a process that has not exited (a zombie
// has exited and waits only to be reaped by whoever adopted it).
func running(pid int) bool {
	st := procStat(pid)
	return len(st) > 0 && st[0] != "Z" && st[0] != "X"
}

// socketsUnder returns the Unix sockets under dir.
func socketsUnder(dir string) []string {
	var out []string
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeSocket != 0 {
			out = append(out, path)
		}
		return nil
	})
	return out
}

// TestPluginsDieWithTheHost kills the sidecar's process, and only it, with
// SIGKILL, so that it cannot stop its plugins: every plugin process must
// exit on its own and remove its socket. The next start of the sidecar
// removes the run directory the killed one left.
func TestPluginsDieWithTheHost(t *testing.T) {
	sb := sandboxtest.Start(t)
	sockDir, err := os.MkdirTemp("", "ps") // short: a socket's path is limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	env, api, notify, admin := sidecarEnv(t, sb.URL, t.TempDir(), "PAYSIDECAR_PLUGINS__SOCKET_DIR="+sockDir)
	sc := startSidecar(t, env, api, notify, admin)

	pluginDir := filepath.Join(binDir, "plugins")
	pids := childPIDs(t, sc.cmd.Process.Pid, pluginDir)
	if len(pids) != len(flowNames) {
		t.Fatalf("plugin processes %v, want one per flow %v", pids, flowNames)
	}
	if socks := socketsUnder(sockDir); len(socks) < len(pids) {
		t.Fatalf("sockets %v, want at least one per plugin under %s", socks, sockDir)
	}
	// plugins.gomaxprocs defaults to 1: each plugin runs on one processor.
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		if err != nil {
			t.Fatal(err)
		}
		var set []string
		for _, v := range strings.Split(string(b), "\x00") {
			if strings.HasPrefix(v, "GOMAXPROCS=") {
				set = append(set, v)
			}
		}
		if !slices.Equal(set, []string{"GOMAXPROCS=1"}) {
			t.Errorf("plugin %d runs with %q, want GOMAXPROCS=1", pid, set)
		}
	}

	if err := syscall.Kill(sc.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-sc.exited
	waitFor(t, 15*time.Second, "every plugin process gone", func() (bool, string) {
		var left []string
		for _, pid := range pids {
			if running(pid) {
				left = append(left, strconv.Itoa(pid))
			}
		}
		return len(left) == 0, "still running: " + strings.Join(left, ", ")
	})
	waitFor(t, 5*time.Second, "no socket left", func() (bool, string) {
		socks := socketsUnder(sockDir)
		return len(socks) == 0, strings.Join(socks, ", ")
	})

	runs := func() []string {
		entries, _ := os.ReadDir(sockDir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	killed := runs()
	if len(killed) != 1 {
		t.Fatalf("run directories after the kill: %v", killed)
	}
	sc.start()
	if now := runs(); len(now) != 1 || now[0] == killed[0] {
		t.Errorf("run directories after a new start: %v; the killed run's %s should be gone", now, killed[0])
	}
	if !strings.Contains(sc.logs.String(), "removed the plugin sockets of a host that is gone") {
		t.Errorf("the removal of the killed run's directory is not logged")
	}
}
