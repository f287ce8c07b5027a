package pluginhost

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
)

// processRunner runs a plugin binary as a child process for go-plugin. The
// host uses its own runner, through go-plugin's RunnerFunc, because only
// that way does go-plugin make a socket directory per plugin (inside the
// run's directory, see runDir) and keep its own broker sockets there too,
// so that nothing of a plugin is left outside the run's directory.
type processRunner struct {
	logger hclog.Logger
	cmd    *exec.Cmd
	stdout io.ReadCloser
	stderr io.ReadCloser
	pid    atomic.Int64
	// exited is closed when the process has exited (Wait returned).
	exited     chan struct{}
	exitedOnce sync.Once
}

var _ runner.Runner = (*processRunner)(nil)

func newProcessRunner(logger hclog.Logger, cmd *exec.Cmd) (*processRunner, error) {
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	return &processRunner{logger: logger, cmd: cmd, stdout: stdout, stderr: stderr, exited: make(chan struct{})}, nil
}

// Start implements runner.Runner.
func (r *processRunner) Start(context.Context) error {
	r.logger.Debug("starting plugin", "path", r.cmd.Path)
	if err := r.cmd.Start(); err != nil {
		return err
	}
	r.pid.Store(int64(r.cmd.Process.Pid))
	r.logger.Debug("plugin started", "path", r.cmd.Path, "pid", r.cmd.Process.Pid)
	return nil
}

// Wait implements runner.Runner; when the process has exited it closes
// r.exited, which is how the host learns of it at once.
func (r *processRunner) Wait(context.Context) error {
	err := r.cmd.Wait()
	r.exitedOnce.Do(func() { close(r.exited) })
	return err
}

// Kill implements runner.Runner; killing a process that is gone is no
// error.
func (r *processRunner) Kill(context.Context) error {
	if r.cmd.Process == nil {
		return nil
	}
	if err := r.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

// Stdout implements runner.Runner.
func (r *processRunner) Stdout() io.ReadCloser { return r.stdout }

// Stderr implements runner.Runner.
func (r *processRunner) Stderr() io.ReadCloser { return r.stderr }

// Name implements runner.Runner.
func (r *processRunner) Name() string { return r.cmd.Path }

// ID implements runner.Runner: the process id.
func (r *processRunner) ID() string { return strconv.FormatInt(r.pid.Load(), 10) }

// Diagnose implements runner.Runner.
func (r *processRunner) Diagnose(context.Context) string {
	return "the plugin exited or did not complete go-plugin's handshake: is " + r.cmd.Path +
		" a paysidecar flow plugin built for this machine? Its own log lines above say more."
}

// PluginToHost implements runner.AddrTranslator: host and plugin share
// the file system and network.
func (r *processRunner) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

// HostToPlugin implements runner.AddrTranslator.
func (r *processRunner) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

// checkBinary verifies that the file at path has the SHA-256 checksum
// want, as go-plugin's SecureConfig does for a plugin started from a
// command.
func checkBinary(path string, want []byte) error {
	got, err := fileSHA256(path)
	if err != nil {
		return fmt.Errorf("error verifying checksum: %w", err)
	}
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return goplugin.ErrChecksumsDoNotMatch
	}
	return nil
}
