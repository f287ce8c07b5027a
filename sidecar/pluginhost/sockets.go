package pluginhost

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// runDir is the private directory of one run of the host, inside which
// go-plugin makes a directory per plugin process for the plugin's socket
// and the host's sockets for it (see processRunner). A plugin removes its
// directory's sockets when its host is gone (the SDK's Serve), go-plugin
// removes the directory when the host stops the plugin. A lock on a file in it, held for the run, tells a later
// host that the directory is still in use; a directory whose lock nobody
// holds belongs to a host that is gone, and is removed with whatever
// sockets its killed plugins left.
type runDir struct {
	path string
	lock *os.File
}

// runDirPrefix starts the name of every run directory.
const runDirPrefix = "run-"

// staleUnlocked is how old a run directory without a lock file must be to
// be removed: a host may be between making it and locking it.
const staleUnlocked = time.Minute

// defaultSocketBase is the directory that holds the run directories of
// this user's hosts unless configured otherwise.
func defaultSocketBase() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("paysidecar-plugins-%d", os.Getuid()))
}

// openRunDir removes the stale run directories in base, then makes and
// locks a new one. base is made private to this user, and refused when it
// belongs to someone else or is not a directory.
func openRunDir(base string) (*runDir, []string, error) {
	if err := os.MkdirAll(base, 0o700); err != nil {
		return nil, nil, fmt.Errorf("pluginhost: socket directory: %w", err)
	}
	fi, err := os.Lstat(base)
	if err != nil {
		return nil, nil, fmt.Errorf("pluginhost: socket directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, nil, fmt.Errorf("pluginhost: socket directory %s is not a directory", base)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return nil, nil, fmt.Errorf("pluginhost: socket directory %s belongs to another user", base)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(base, 0o700); err != nil {
			return nil, nil, fmt.Errorf("pluginhost: socket directory: %w", err)
		}
	}
	removed := removeStaleRunDirs(base)
	path, err := os.MkdirTemp(base, runDirPrefix)
	if err != nil {
		return nil, removed, fmt.Errorf("pluginhost: run directory: %w", err)
	}
	lock, err := lockFile(filepath.Join(path, ".lock"), true)
	if err != nil {
		_ = os.RemoveAll(path)
		return nil, removed, fmt.Errorf("pluginhost: lock run directory: %w", err)
	}
	return &runDir{path: path, lock: lock}, removed, nil
}

// lockFile opens path (making it when create is set) and takes an
// exclusive lock on it without waiting. The descriptor is not inherited by
// plugin processes (Go opens files close-on-exec), so only this process
// holds the lock.
func lockFile(path string, create bool) (*os.File, error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// removeStaleRunDirs removes the run directories in base whose host is
// gone and returns their names.
func removeStaleRunDirs(base string) []string {
	entries, err := os.ReadDir(base)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), runDirPrefix) {
			continue
		}
		path := filepath.Join(base, e.Name())
		lock, err := lockFile(filepath.Join(path, ".lock"), false)
		switch {
		case err == nil:
			// Nobody holds it: the host that made it is gone.
			_ = lock.Close()
		case errors.Is(err, fs.ErrNotExist):
			if fi, serr := e.Info(); serr != nil || time.Since(fi.ModTime()) < staleUnlocked {
				continue
			}
		default:
			continue
		}
		if os.RemoveAll(path) == nil {
			removed = append(removed, e.Name())
		}
	}
	return removed
}

// close removes the run directory and releases its lock.
func (r *runDir) close() {
	_ = os.RemoveAll(r.path)
	_ = r.lock.Close()
}
