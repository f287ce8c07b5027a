package plugin

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// EnvHostPID is the variable in which the host tells a plugin its process
// id, so that the plugin can tell when its host is gone even if it died
// before the plugin started watching.
const EnvHostPID = "PAYSIDECAR_HOST_PID"

// envSocketDir is go-plugin's variable for the directory of a plugin's
// Unix sockets.
const envSocketDir = "PLUGIN_UNIX_SOCKET_DIR"

// parentWatchInterval is how often a plugin checks that its host is alive,
// besides the parent-death signal that tells it at once on Linux.
const parentWatchInterval = 500 * time.Millisecond

// lifeline ties a plugin process to its host: when the host process is
// gone (killed with SIGKILL, say, so that it could not stop its plugins),
// the plugin removes its socket and exits instead of living on, orphaned,
// with a socket nobody will ever connect to.
//
// Two mechanisms find out: the parent-death signal (SIGTERM, Linux), which
// the kernel sends when the thread that started the plugin ends, and a
// watch of the parent process id, every half second. Because the
// parent-death signal follows a thread of the host, not the host process,
// it may also come while the host lives on (when that thread ends); the
// plugin then checks its parent and stays. A SIGTERM while the host lives
// is ignored too: the host decides when its plugins stop, so that calls in
// flight complete while it shuts down. SIGPIPE, which a write to the
// host's dead log pipe raises, is caught so that it cannot end the plugin
// before its socket is removed.
type lifeline struct {
	hostPID   int
	socketDir string
	// ownDir says the plugin made socketDir itself; otherwise the host
	// made it for this plugin (go-plugin's per-plugin directory).
	ownDir bool
	logger *slog.Logger

	stop chan struct{}
	wg   sync.WaitGroup
}

// newLifeline finds where the plugin keeps its socket, so that it can
// remove it whatever happens to the host: in the directory go-plugin's host
// made for this plugin (PLUGIN_UNIX_SOCKET_DIR), where the host keeps its
// own sockets for the plugin too, or else in a private directory it makes
// in the system's temporary directory and points go-plugin at. It fails
// when the host is already gone.
func newLifeline(logger *slog.Logger) (*lifeline, error) {
	hostPID := os.Getppid()
	if v := os.Getenv(EnvHostPID); v != "" {
		if pid, err := strconv.Atoi(v); err == nil && pid > 0 {
			hostPID = pid
		}
	}
	if os.Getppid() != hostPID {
		return nil, fmt.Errorf("plugin: the host (pid %d) is gone before the plugin started", hostPID)
	}
	l := &lifeline{hostPID: hostPID, logger: logger, stop: make(chan struct{})}
	if dir := os.Getenv(envSocketDir); dir != "" {
		l.socketDir = dir
		return l, nil
	}
	dir, err := os.MkdirTemp("", "paysidecar-flow-")
	if err != nil {
		return nil, fmt.Errorf("plugin: socket directory: %w", err)
	}
	if err := os.Setenv(envSocketDir, dir); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("plugin: socket directory: %w", err)
	}
	l.socketDir, l.ownDir = dir, true
	return l, nil
}

// removeSockets removes the plugin's socket directory when the plugin made
// it; in the host's directory for the plugin it removes the Unix sockets
// (the plugin's and the host's for it, which a host that is gone left
// behind) and then the directory if it is empty, and touches nothing else.
func (l *lifeline) removeSockets() {
	if l.ownDir {
		_ = os.RemoveAll(l.socketDir)
		return
	}
	entries, err := os.ReadDir(l.socketDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.Type()&fs.ModeSocket != 0 {
			_ = os.Remove(filepath.Join(l.socketDir, e.Name()))
		}
	}
	_ = os.Remove(l.socketDir)
}

// hostGone reports whether the plugin's parent is no longer its host.
func (l *lifeline) hostGone() bool { return os.Getppid() != l.hostPID }

// watch starts watching the host; close stops it.
func (l *lifeline) watch() {
	// SIGPIPE comes when the plugin writes its log to the pipe of a host
	// that is gone; caught, it no longer kills the process before its
	// sockets are removed.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGPIPE)
	l.wg.Go(func() { setParentDeathSignal(syscall.SIGTERM, l.stop) })
	l.wg.Go(func() {
		defer signal.Stop(sigs)
		ticker := time.NewTicker(parentWatchInterval)
		defer ticker.Stop()
		for {
			select {
			case <-l.stop:
				return
			case sig := <-sigs:
				if l.hostGone() {
					l.exit("the host process is gone (" + sig.String() + ")")
				}
				if sig == syscall.SIGTERM {
					l.logger.Debug("SIGTERM ignored: the host stops its plugins itself")
				}
			case <-ticker.C:
				if l.hostGone() {
					l.exit("the host process is gone")
				}
			}
		}
	})
	// The host may have died between the check in newLifeline and the
	// parent-death signal being set.
	if l.hostGone() {
		l.exit("the host process is gone")
	}
}

// exit removes the plugin's sockets and ends the process. Nothing is
// logged: the log went to the host, which is gone, and writing to its pipe
// would end the process with SIGPIPE before the sockets are removed.
func (l *lifeline) exit(string) {
	l.removeSockets()
	os.Exit(0)
}

// close removes the socket directory the plugin made, and stops watching.
// The directory goes first: once the watch stops, SIGPIPE ends the process
// again, and another goroutine may still write its log to a host that is
// gone. A directory the host made is the host's to remove.
func (l *lifeline) close() {
	if l.ownDir {
		_ = os.RemoveAll(l.socketDir)
	}
	close(l.stop)
	l.wg.Wait()
}
