// Package pluginhost launches, configures and supervises the sidecar's flow
// plugins.
//
// Each configured plugin is a binary that serves the contract of package
// sdk/plugin; the host knows flows only by the names they are configured
// or discovered under (Discover lists a plugin directory). The Manager
// starts each through hashicorp/go-plugin: the binary's SHA-256 checksum
// is verified before every launch, the contract version is negotiated (2,
// or 1 for plugins built before it; a plugin speaking only another version
// is refused with one log line and the others run), the connection is gRPC
// only and authenticated both ways with AutoMTLS, the plugin gets a
// minimal environment (never the host's, which may hold the merchant's
// key) and, through Configure, only its own settings, checked against the
// schema it declares, with the agreed version, the environment (sandbox or
// not) and the host's services: signing and verifying with the keys its
// configuration grants (WithKeys, PluginConfig.Keys), logging, and taking
// its spans into the host's trace export (WithPluginSpans). The
// plugin's stderr and what it logs through the host are logged through the
// host's slog logger with plugin=<name>, the values of its secret settings
// removed.
//
// A goroutine per plugin, owned by the Manager, notices when the process
// exits, its connection breaks, or its periodic health check (Check,
// through the flow's own service) fails or times out, marks the plugin
// unavailable, kills it and restarts it with exponential backoff,
// configuring it again. While a plugin is down, Flow returns an error
// wrapping ErrUnavailable, and so does a call that was in flight when the
// plugin died, so the API can answer 503 plugin_unavailable with nothing
// half done.
//
// Plugins keep their sockets in a private directory per run of the host
// (WithSocketDir), locked for the run; a plugin whose host is gone removes
// its sockets and exits, and the next run removes the directories of runs
// whose host is gone. Inspect starts plugins only to read their Info, for
// checking a configuration without starting traffic.
//
// Metrics: paysidecar_plugin_up{plugin}, paysidecar_plugin_restarts_total{plugin}
// and paysidecar_plugin_call_duration_seconds{plugin,method,outcome}.
package pluginhost

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/plugin/hosttrace"
)

// ErrUnavailable is wrapped by every error that means a plugin cannot
// answer right now: it is starting, restarting, its process died during
// the call, or the Manager is closed. Such a call changed nothing the host
// relies on and may be retried later.
var ErrUnavailable = errors.New("plugin unavailable")

// ErrUnknownFlow is wrapped by the error Flow returns for a name that no
// configured plugin has.
var ErrUnknownFlow = errors.New("unknown flow")

// PluginConfig configures one plugin.
type PluginConfig struct {
	// Name is the flow's name, e.g. "acme-pay"; the plugin must report
	// the same name in its Info.
	Name string
	// Path is the plugin binary.
	Path string
	// SHA256 is the hex SHA-256 checksum the binary must have. When it is
	// empty, Start computes it from the file, logs it, and holds every
	// restart to it.
	SHA256 string
	// Settings are the plugin's own settings, checked against the schema
	// the plugin declares and handed to it by Configure. They may hold
	// secrets, which are never logged: the host removes the values of
	// the plugin's secret settings from everything it logs for it.
	Settings map[string]string
	// Keys names the host keys (WithKeys) the flow may sign and verify
	// with through the host's services.
	Keys []string
	// Merchants holds, per huifu_id, a service provider's merchant's own
	// settings of this flow (only those the plugin declares per
	// merchant), applied over Settings and handed to the plugin as
	// plugin.Config.Merchants. Their secrets are redacted like the
	// flow's.
	Merchants map[string]map[string]string
}

// Option changes a Manager's behavior.
type Option func(*options)

type options struct {
	backoffInitial time.Duration
	backoffMax     time.Duration
	startTimeout   time.Duration
	tracerProvider trace.TracerProvider
	pluginSpans    *hosttrace.Receiver
	env            []string
	setEnv         []string
	environment    plugin.Environment
	keys           map[string]Key
	socketBase     string
	healthInterval time.Duration
	healthTimeout  time.Duration
	killGrace      time.Duration
}

// WithRestartBackoff sets the delay before the first restart attempt of a
// plugin that died and the most the delay grows to, doubling each failed
// attempt (defaults 500ms and 30s). A plugin that ran longer than max
// before dying starts again from initial.
func WithRestartBackoff(initial, maxDelay time.Duration) Option {
	return func(o *options) { o.backoffInitial, o.backoffMax = initial, maxDelay }
}

// WithStartTimeout bounds the launch of a plugin, from starting the
// process to a successful Configure (default 30s).
func WithStartTimeout(d time.Duration) Option {
	return func(o *options) { o.startTimeout = d }
}

// WithTracerProvider sets the provider of the host's spans around plugin
// calls; without it the global provider is used. Trace context reaches the
// plugin either way.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tracerProvider = tp }
}

// WithPluginSpans makes the host's services take the plugins' finished
// spans (plugins that export them with package hosttrace) and hand them to
// sp, the span processor that exports the host's own spans, so that the
// plugins' spans reach the same collector in the host's traces. Without it
// the plugins are told the host takes no spans, and drop them.
func WithPluginSpans(sp sdktrace.SpanProcessor) Option {
	return func(o *options) {
		o.pluginSpans = nil
		if sp != nil {
			o.pluginSpans = hosttrace.NewReceiver(sp)
		}
	}
}

// WithEnv passes the named variables of the host's environment on to the
// plugins, in addition to the few every process needs (PATH, HOME, TMPDIR,
// TZ, LANG, proxy and CA settings). Never name a variable that holds a
// secret of the host.
func WithEnv(names ...string) Option {
	return func(o *options) { o.env = append(o.env, names...) }
}

// WithSetEnv sets variables ("NAME=value") in the plugins' environment,
// such as OTEL_EXPORTER_OTLP_ENDPOINT so that they export their own spans.
// Never pass a secret this way.
func WithSetEnv(vars ...string) Option {
	return func(o *options) { o.setEnv = append(o.setEnv, vars...) }
}

// WithEnvironment tells every plugin what it runs against; against the
// sandbox a plugin fills in its settings' sandbox defaults.
func WithEnvironment(env plugin.Environment) Option {
	return func(o *options) { o.environment = env }
}

// WithKeys gives the host's services the keys flows may use by name;
// PluginConfig.Keys grants them to each flow.
func WithKeys(keys map[string]Key) Option {
	return func(o *options) { o.keys = maps.Clone(keys) }
}

// WithSocketDir sets the directory that holds, for each run of the host, a
// private directory of its plugins' sockets (default: a directory of this
// user's in the system's temporary directory). At start the host removes
// the directories of runs whose host is gone, with whatever sockets their
// plugins left; at Close it removes its own.
func WithSocketDir(dir string) Option {
	return func(o *options) { o.socketBase = dir }
}

// WithHealthCheck sets how often each plugin's Check is called through its
// flow service, and how long it may take (defaults 10s and 5s). A plugin
// that fails or does not answer in time, live but hung, is killed and
// restarted.
func WithHealthCheck(interval, timeout time.Duration) Option {
	return func(o *options) { o.healthInterval, o.healthTimeout = interval, timeout }
}

// Manager runs the configured plugins. Its methods are safe for concurrent
// use.
type Manager struct {
	logger  *slog.Logger
	opts    options
	metrics *metrics
	order   []*instance
	byName  map[string]*instance

	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	run     *runDir
}

// New checks the configuration and returns a Manager that has started
// nothing yet. Metrics are registered with reg (nil registers nothing).
func New(cfgs []PluginConfig, logger *slog.Logger, reg prometheus.Registerer, opts ...Option) (*Manager, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	o := options{
		backoffInitial: 500 * time.Millisecond,
		backoffMax:     30 * time.Second,
		startTimeout:   30 * time.Second,
		healthInterval: 10 * time.Second,
		healthTimeout:  5 * time.Second,
		killGrace:      3 * time.Second,
		socketBase:     defaultSocketBase(),
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.backoffInitial <= 0 || o.backoffMax < o.backoffInitial || o.startTimeout <= 0 ||
		o.healthInterval <= 0 || o.healthTimeout <= 0 {
		return nil, errors.New("pluginhost: backoff, start timeout and health check must be positive, and the backoff's maximum at least its initial delay")
	}
	m := &Manager{logger: logger, opts: o, byName: map[string]*instance{}}
	for i, c := range cfgs {
		c.Name = strings.TrimSpace(c.Name)
		if c.Name == "" {
			return nil, fmt.Errorf("pluginhost: plugin %d: name is required", i)
		}
		if _, dup := m.byName[c.Name]; dup {
			return nil, fmt.Errorf("pluginhost: plugin %s: configured twice", c.Name)
		}
		if strings.TrimSpace(c.Path) == "" {
			return nil, fmt.Errorf("pluginhost: plugin %s: path is required", c.Name)
		}
		var sum []byte
		if c.SHA256 != "" {
			b, err := hex.DecodeString(strings.TrimSpace(c.SHA256))
			if err != nil || len(b) != 32 {
				return nil, fmt.Errorf("pluginhost: plugin %s: sha256 must be 64 hex digits", c.Name)
			}
			sum = b
		}
		for _, k := range c.Keys {
			if _, ok := o.keys[k]; !ok {
				return nil, fmt.Errorf("pluginhost: plugin %s: key %q is not one of the host's keys", c.Name, k)
			}
		}
		c.Settings = maps.Clone(c.Settings)
		c.Keys = slices.Clone(c.Keys)
		inst := &instance{
			cfg:      c,
			checksum: sum,
			kick:     make(chan struct{}, 1),
			restart:  make(chan struct{}, 1),
			redact:   &redactor{},
		}
		// Everything the host logs for the plugin goes through its
		// redactor.
		inst.baseLogger = slog.New(inst.redact.handler(logger.Handler()))
		inst.logger = inst.baseLogger.With("plugin", c.Name)
		m.order = append(m.order, inst)
		m.byName[c.Name] = inst
	}
	met, err := newMetrics(reg, m.names())
	if err != nil {
		return nil, err
	}
	m.metrics = met
	return m, nil
}

func (m *Manager) names() []string {
	out := make([]string, 0, len(m.order))
	for _, inst := range m.order {
		out = append(out, inst.cfg.Name)
	}
	return out
}

// Start launches every plugin and configures it, then starts supervising
// them. If one cannot start, Start stops those already started and returns
// an error naming it. ctx bounds the start only; supervision runs until
// Close.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	switch {
	case m.closed:
		m.mu.Unlock()
		return errors.New("pluginhost: start after close")
	case m.started:
		m.mu.Unlock()
		return errors.New("pluginhost: started twice")
	}
	m.started = true
	m.mu.Unlock()

	if err := m.openRun(); err != nil {
		return err
	}
	for i, inst := range m.order {
		err := m.prepare(inst)
		if err == nil {
			err = m.launch(ctx, inst)
		}
		var ve *VersionError
		if errors.As(err, &ve) {
			// A plugin the host cannot talk to is left out; the others
			// run.
			inst.mu.Lock()
			inst.refused = ve.Error()
			inst.mu.Unlock()
			inst.logger.Error("flow plugin refused: "+ve.Error(), "path", inst.path)
			continue
		}
		if err != nil {
			m.stopAll(m.order[:i])
			m.run.close()
			return fmt.Errorf("pluginhost: start plugin %s: %w", inst.cfg.Name, err)
		}
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		// Close ran while starting; it found nothing to stop yet.
		m.stopAll(m.order)
		m.run.close()
		return errors.New("pluginhost: closed while starting")
	}
	runCtx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	for _, inst := range m.order {
		if inst.isRefused() {
			continue
		}
		m.wg.Go(func() { m.supervise(runCtx, inst) })
	}
	return nil
}

// Flow returns the flow named name. The error wraps ErrUnknownFlow when no
// plugin has that name, and ErrUnavailable while the plugin is not running.
// The Flow stays usable across restarts: each call goes to the plugin's
// current process, and a call made while the plugin is down fails with an
// error wrapping ErrUnavailable.
func (m *Manager) Flow(name string) (plugin.Flow, error) {
	inst, ok := m.byName[name]
	if !ok {
		return nil, fmt.Errorf("pluginhost: %w: %q", ErrUnknownFlow, name)
	}
	if inst.isRefused() {
		return nil, fmt.Errorf("pluginhost: %w: %q was refused at start", ErrUnknownFlow, name)
	}
	if _, err := inst.current(); err != nil {
		return nil, err
	}
	return &hostedFlow{m: m, inst: inst}, nil
}

// Infos returns what each plugin reported about itself when it last
// started, in configuration order; plugins that never started are left
// out.
func (m *Manager) Infos() []plugin.Info {
	var out []plugin.Info
	for _, inst := range m.order {
		inst.mu.RLock()
		info, ok := inst.info, inst.info.Name != ""
		inst.mu.RUnlock()
		if ok {
			out = append(out, info)
		}
	}
	return out
}

// Ready reports whether the Manager has started, is not closed, and every
// plugin it did not refuse is running and configured.
func (m *Manager) Ready() bool {
	m.mu.Lock()
	ok := m.started && !m.closed
	m.mu.Unlock()
	if !ok {
		return false
	}
	for _, inst := range m.order {
		if inst.isRefused() {
			continue
		}
		if _, err := inst.current(); err != nil {
			return false
		}
	}
	return true
}

// Close stops the supervisors and then the plugins. It is safe to call
// more than once.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	cancel := m.cancel
	m.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	m.wg.Wait()
	m.stopAll(m.order)
	if m.run != nil {
		m.run.close()
	}
	return nil
}

// openRun makes the run's socket directory, removing those of hosts that
// are gone.
func (m *Manager) openRun() error {
	run, removed, err := openRunDir(m.opts.socketBase)
	if err != nil {
		return err
	}
	for _, name := range removed {
		m.logger.Info("removed the plugin sockets of a host that is gone", "dir", filepath.Join(m.opts.socketBase, name))
	}
	m.run = run
	return nil
}

// stopAll kills the plugins of insts concurrently and waits for them.
func (m *Manager) stopAll(insts []*instance) {
	var wg sync.WaitGroup
	for _, inst := range insts {
		wg.Go(func() { inst.markDown(m.metrics.up.WithLabelValues(inst.cfg.Name), m.opts.killGrace) })
	}
	wg.Wait()
}
