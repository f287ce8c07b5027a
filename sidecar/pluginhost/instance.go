package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/paysidecar/paysidecar/sdk/plugin"
)

// instance is one configured plugin and its current process, if any.
type instance struct {
	cfg PluginConfig
	// logger carries plugin=<name>; baseLogger does not. Both redact the
	// plugin's secrets.
	logger     *slog.Logger
	baseLogger *slog.Logger
	redact     *redactor
	// kick asks the supervisor to check the plugin now.
	kick chan struct{}
	// restart asks the supervisor to replace the process: it could not
	// take new settings (Reconfigure).
	restart chan struct{}
	// launchMu orders launches and reconfigurations, so that a process
	// is configured with the settings current when it starts or is given
	// the new ones after. cfg.Settings changes under launchMu and mu.
	launchMu sync.Mutex

	// path and checksum are fixed by prepare, before the first launch.
	path     string
	checksum []byte

	mu         sync.RWMutex
	client     *goplugin.Client
	rpc        *goplugin.GRPCClient
	flow       plugin.Flow
	info       plugin.Info
	pid        int
	startedAt  time.Time
	apiVersion int
	// exitedC is closed when the current process has exited.
	exitedC <-chan struct{}
	// refused says why the plugin was left out at start (it speaks no
	// contract version the host knows); such a plugin is never started
	// again.
	refused string
}

// VersionError is the error of a plugin that speaks no contract version
// the host knows.
type VersionError struct {
	// Plugin is the version the plugin offered, 0 when unknown.
	Plugin int
	// Host lists the versions the host speaks.
	Host []int
}

// Error implements error.
func (e *VersionError) Error() string {
	host := make([]string, len(e.Host))
	for i, v := range e.Host {
		host[i] = strconv.Itoa(v)
	}
	offered := "a contract version"
	if e.Plugin != 0 {
		offered = "contract version " + strconv.Itoa(e.Plugin)
	}
	return fmt.Sprintf("it speaks %s, this host speaks %s; rebuild it against a paysidecar plugin SDK this host supports", offered, strings.Join(host, " and "))
}

// incompatibleVersion matches go-plugin's error for a plugin that offered
// a version the host does not speak.
var incompatibleVersion = regexp.MustCompile(`incompatible API version with plugin\. Plugin version: (\d+)`)

// versionError returns a *VersionError for go-plugin's error of a version
// mismatch, and nil for any other error.
func versionError(err error) *VersionError {
	m := incompatibleVersion.FindStringSubmatch(err.Error())
	if m == nil {
		return nil
	}
	v, _ := strconv.Atoi(m[1])
	return &VersionError{Plugin: v, Host: plugin.HostAPIVersions()}
}

func (inst *instance) isRefused() bool {
	inst.mu.RLock()
	defer inst.mu.RUnlock()
	return inst.refused != ""
}

// prepare resolves the binary's path and, when no checksum is configured,
// computes it from the file and logs it.
func (m *Manager) prepare(inst *instance) error {
	path, err := exec.LookPath(inst.cfg.Path)
	if err != nil {
		return fmt.Errorf("find binary %s: %w", inst.cfg.Path, err)
	}
	inst.path = path
	if inst.checksum != nil {
		return nil
	}
	sum, err := fileSHA256(path)
	if err != nil {
		return err
	}
	inst.checksum = sum
	inst.logger.Info("plugin checksum computed from the binary; pin it in the configuration",
		"path", path, "sha256", hex.EncodeToString(sum))
	return nil
}

func fileSHA256(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checksum binary: %w", err)
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("checksum binary %s: %w", path, err)
	}
	return h.Sum(nil), nil
}

// start starts a process for inst and dispenses its flow. The process
// runs from inst's binary, held to its checksum, with a minimal
// environment, and keeps its sockets (and go-plugin's on the host's side)
// in a directory go-plugin makes for it in the run's directory.
func (m *Manager) start(inst *instance) (*goplugin.Client, *goplugin.GRPCClient, plugin.Flow, *processRunner, error) {
	logger := newHCLogger(inst.baseLogger, inst.cfg.Name)
	var proc *processRunner
	cfg := &goplugin.ClientConfig{
		HandshakeConfig:  plugin.Handshake(),
		VersionedPlugins: plugin.ClientPlugins(),
		RunnerFunc: func(l hclog.Logger, spec *exec.Cmd, _ string) (runner.Runner, error) {
			if err := checkBinary(inst.path, inst.checksum); err != nil {
				return nil, err
			}
			cmd := exec.Command(inst.path)
			// go-plugin's variables (handshake, certificate, socket
			// directory) after the minimal environment; the plugin
			// watches the host by its pid, so that it exits and removes
			// its sockets when the host is gone.
			cmd.Env = append(pluginEnv(m.opts.env), m.opts.setEnv...)
			cmd.Env = append(cmd.Env, spec.Env...)
			cmd.Env = append(cmd.Env, plugin.EnvHostPID+"="+strconv.Itoa(os.Getpid()))
			r, err := newProcessRunner(l, cmd)
			proc = r
			return r, err
		},
		SkipHostEnv:      true,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		GRPCDialOptions:  plugin.GRPCDialOptions(m.opts.tracerProvider),
		Logger:           logger,
		// What the plugin prints with fmt rather than its logger still
		// reaches the host's log.
		SyncStdout:   logger.Named("stdout").StandardWriter(&hclog.StandardLoggerOptions{ForceLevel: hclog.Info}),
		SyncStderr:   logger.Named("stderr").StandardWriter(&hclog.StandardLoggerOptions{ForceLevel: hclog.Warn}),
		StartTimeout: m.opts.startTimeout,
	}
	if m.run != nil {
		cfg.UnixSocketConfig = &goplugin.UnixSocketConfig{TempDir: m.run.path}
	}
	client := goplugin.NewClient(cfg)
	proto, err := client.Client()
	if err != nil {
		ve := versionError(err)
		// A refused plugin is reported in one line by the caller, not
		// in go-plugin's lines about ending it.
		logger.quiet.Store(ve != nil)
		client.Kill()
		if ve != nil {
			return nil, nil, nil, nil, ve
		}
		return nil, nil, nil, nil, fmt.Errorf("launch %s: %w", inst.path, err)
	}
	rpc, ok := proto.(*goplugin.GRPCClient)
	if !ok {
		client.Kill()
		return nil, nil, nil, nil, fmt.Errorf("launch %s: plugin does not speak gRPC", inst.path)
	}
	raw, err := rpc.Dispense(plugin.PluginName)
	if err != nil {
		client.Kill()
		return nil, nil, nil, nil, fmt.Errorf("launch %s: %w", inst.path, err)
	}
	flow, ok := raw.(plugin.Flow)
	if !ok {
		client.Kill()
		return nil, nil, nil, nil, fmt.Errorf("launch %s: dispensed %T, not a flow", inst.path, raw)
	}
	return client, rpc, flow, proc, nil
}

// launch starts a process for inst, checks its Info, configures it and
// makes it the current one.
func (m *Manager) launch(ctx context.Context, inst *instance) error {
	inst.launchMu.Lock()
	defer inst.launchMu.Unlock()
	client, rpc, flow, proc, err := m.start(inst)
	if err != nil {
		return err
	}
	pid := int(proc.pid.Load())

	callCtx, cancel := context.WithTimeout(ctx, m.opts.startTimeout)
	defer cancel()
	info, err := flow.Info(callCtx)
	if err != nil {
		client.Kill()
		return fmt.Errorf("plugin info: %w", err)
	}
	if info.Name != inst.cfg.Name {
		client.Kill()
		return fmt.Errorf("binary %s is the plugin %q, not %q", inst.path, info.Name, inst.cfg.Name)
	}
	version := client.NegotiatedVersion()
	settings, err := info.Settings.Apply(inst.settings(), m.opts.environment)
	if err != nil {
		client.Kill()
		return fmt.Errorf("settings: %w", err)
	}
	merchants, err := applyMerchants(info, inst.settings(), inst.cfg.Merchants, m.opts.environment)
	if err != nil {
		client.Kill()
		return fmt.Errorf("settings: %w", err)
	}
	inst.redact.set(append(secretValues(info, settings), merchantSecrets(info, merchants)...))
	err = flow.Configure(callCtx, m.flowConfig(inst, settings, merchants, version))
	if err != nil {
		client.Kill()
		return fmt.Errorf("configure: %w", err)
	}

	inst.mu.Lock()
	inst.client, inst.rpc, inst.flow, inst.info = client, rpc, flow, info
	inst.pid, inst.startedAt, inst.apiVersion = pid, time.Now(), version
	inst.exitedC = proc.exited
	// The gauge changes under the same lock as the state it reports, so
	// whoever sees the plugin available or unavailable sees the gauge
	// agree.
	m.metrics.up.WithLabelValues(inst.cfg.Name).Set(1)
	inst.mu.Unlock()
	inst.logger.Info("plugin ready", "version", info.Version, "trade_type", info.TradeType,
		"pid", pid, "api_version", version)
	return nil
}

// settings returns the plugin's configured settings (before the schema's
// defaults). The map is replaced whole, never changed.
func (inst *instance) settings() map[string]string {
	inst.mu.RLock()
	defer inst.mu.RUnlock()
	return inst.cfg.Settings
}

// flowConfig is what the plugin is configured with. Only the plugin's own
// settings and the keys it is granted cross; nothing else of the host
// does.
func (m *Manager) flowConfig(inst *instance, settings plugin.Settings, merchants map[string]plugin.Settings, version int) plugin.Config {
	services := &hostServices{name: inst.cfg.Name, keys: m.opts.keys, granted: inst.cfg.Keys, logger: inst.logger}
	var host plugin.Host = services
	if m.opts.pluginSpans != nil {
		host = spanHost{hostServices: services, Receiver: m.opts.pluginSpans}
	}
	return plugin.Config{
		Settings:    settings,
		Merchants:   merchants,
		APIVersion:  version,
		Environment: m.opts.environment,
		Host:        host,
		HostKeys:    inst.cfg.Keys,
	}
}

// applyMerchants applies each merchant's own settings over the flow's raw
// settings, checked against the schema in info.
func applyMerchants(info plugin.Info, raw map[string]string, merchants map[string]map[string]string, env plugin.Environment) (map[string]plugin.Settings, error) {
	if len(merchants) == 0 {
		return nil, nil
	}
	out := make(map[string]plugin.Settings, len(merchants))
	for id, own := range merchants {
		s, err := info.Settings.ApplyMerchant(id, raw, own, env)
		if err != nil {
			return nil, err
		}
		out[id] = s
	}
	return out, nil
}

// merchantSecrets returns the values of the merchants' secret settings.
func merchantSecrets(info plugin.Info, merchants map[string]plugin.Settings) []string {
	var out []string
	for _, s := range merchants {
		out = append(out, secretValues(info, s)...)
	}
	return out
}

// secretValues returns the values of settings the schema in info declares
// secret.
func secretValues(info plugin.Info, settings plugin.Settings) []string {
	var out []string
	for _, sp := range info.Settings {
		if sp.Secret {
			out = append(out, settings.Get(sp.Key))
		}
	}
	return out
}

// current returns the running flow, or an error wrapping ErrUnavailable.
func (inst *instance) current() (plugin.Flow, error) {
	inst.mu.RLock()
	defer inst.mu.RUnlock()
	if inst.flow == nil {
		return nil, fmt.Errorf("%w: plugin %s is not running", ErrUnavailable, inst.cfg.Name)
	}
	return inst.flow, nil
}

// requestCheck asks the supervisor to check the plugin soon.
func (inst *instance) requestCheck() {
	select {
	case inst.kick <- struct{}{}:
	default:
	}
}

// exitedChan returns the channel that is closed when the current process
// has exited; it is nil, and so never ready, while there is none.
func (inst *instance) exitedChan() <-chan struct{} {
	inst.mu.RLock()
	defer inst.mu.RUnlock()
	return inst.exitedC
}

// healthy reports whether the current process is alive and answers
// go-plugin's health check within timeout.
func (inst *instance) healthy(ctx context.Context, timeout time.Duration) bool {
	inst.mu.RLock()
	c, rpc := inst.client, inst.rpc
	inst.mu.RUnlock()
	if c == nil || c.Exited() {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := grpc_health_v1.NewHealthClient(rpc.Conn).Check(ctx,
		&grpc_health_v1.HealthCheckRequest{Service: goplugin.GRPCServiceName})
	return err == nil || errors.Is(ctx.Err(), context.Canceled)
}

// markDown forgets the current process, sets the plugin's up gauge to 0
// and stops the process. It reports whether there was one. The gauge is set
// under the lock that publishes the state, so no caller can see the plugin
// unavailable while the gauge still says it is up.
//
// The process is asked to stop, and killed when it has not within grace:
// a hung plugin would never answer go-plugin's request. With grace 0 it is
// killed at once.
func (inst *instance) markDown(up prometheus.Gauge, grace time.Duration) bool {
	inst.mu.Lock()
	c, pid := inst.client, inst.pid
	inst.client, inst.rpc, inst.flow, inst.pid = nil, nil, nil, 0
	up.Set(0)
	inst.mu.Unlock()
	if c == nil {
		return false
	}
	if grace == 0 && pid > 0 {
		killPID(pid)
	}
	done := make(chan struct{})
	go func() {
		c.Kill()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(grace):
		if pid > 0 {
			killPID(pid)
		}
		<-done
	}
	return true
}

// killPID kills the process pid at once.
func killPID(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}

// check calls the current process's Check through its flow service within
// timeout.
func (inst *instance) check(ctx context.Context, timeout time.Duration) error {
	f, err := inst.current()
	if err != nil {
		return nil // nothing runs to check
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return f.Check(ctx)
}
