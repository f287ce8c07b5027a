package plugin

import (
	"context"
	"log/slog"
	"os"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/paysidecar/paysidecar/sdk/plugin/internal/hostlink"
)

// ServeOption changes how Serve serves a flow.
type ServeOption func(*serveConfig)

type serveConfig struct {
	tracerProvider trace.TracerProvider
	tracing        TracingSetup
	logger         *slog.Logger
	goPluginLogger hclog.Logger
	logLevel       slog.Level
	test           *goplugin.ServeTestConfig
}

// WithTracerProvider sets the provider of the plugin's spans. Without it
// the global provider is used, which records nothing unless the plugin set
// one up; the host's trace context is propagated either way.
func WithTracerProvider(tp trace.TracerProvider) ServeOption {
	return func(c *serveConfig) { c.tracerProvider = tp }
}

// EnvOTLPEndpoint is the standard OpenTelemetry variable the host sets in
// a plugin's environment when it exports its own spans over OTLP/gRPC
// ("http://host:4317" for plain text), so that a plugin that exports its
// spans itself (package otlpexport) can reach the same collector.
const EnvOTLPEndpoint = "OTEL_EXPORTER_OTLP_ENDPOINT"

// TracingSetup sets up the export of a plugin's spans for the service
// name it is given. It returns the provider of the plugin's spans (nil
// when it set up nothing) and a function that flushes and stops export.
// hosttrace.Setup, which exports them through the host, and
// otlpexport.FromEnv, which exports them over OTLP/gRPC itself, are two.
// Serve calls it with a context that hosttrace.Setup finds the host's
// span service in.
type TracingSetup func(ctx context.Context, service string) (trace.TracerProvider, func(), error)

// WithTracing makes Serve call setup for the plugin's spans, with the
// service name "paysidecar-plugin-<flow name>", unless WithTracerProvider
// is given. Without either, the global provider is used.
func WithTracing(setup TracingSetup) ServeOption {
	return func(c *serveConfig) { c.tracing = setup }
}

// WithLogger sets the logger of the SDK's own messages (a recovered panic,
// for example). Without it Serve logs with NewLogger on stderr.
func WithLogger(l *slog.Logger) ServeOption {
	return func(c *serveConfig) { c.logger = l }
}

// WithGoPluginLogger sets the logger go-plugin uses for its own messages.
// Without it Serve writes hclog JSON lines to stderr, which the host
// bridges into its log.
func WithGoPluginLogger(l hclog.Logger) ServeOption {
	return func(c *serveConfig) { c.goPluginLogger = l }
}

// WithLogLevel sets the least level of the default loggers; it is Info
// unless set.
func WithLogLevel(l slog.Level) ServeOption {
	return func(c *serveConfig) { c.logLevel = l }
}

// WithTestServe serves in-process for a test, as go-plugin's test mode
// does: nothing is printed, the process's signals and standard streams are
// left alone, and the host attaches with the ReattachConfig that test.
// ReattachConfigCh receives. Serve returns when test.Context ends. Package
// plugintest uses it.
func WithTestServe(test *goplugin.ServeTestConfig) ServeOption {
	return func(c *serveConfig) { c.test = test }
}

// Serve serves flow to the host that started this process and returns when
// the host ends the connection. The plugin lives no longer than its host:
// when the host process is gone, even killed with SIGKILL, the plugin
// removes its socket and exits (see EnvHostPID); its socket is in the
// directory the host made for it (go-plugin's PLUGIN_UNIX_SOCKET_DIR) or
// else in one of its own. It speaks gRPC only, with the handshake of
// Handshake and the contract versions of ServerPlugins; a binary started
// by hand, without the host's magic cookie, prints an explanation and exits
// with status 1. A plugin's main calls it and nothing else. Outside tests
// it sets the process's GOGC, soft memory limit and GOMAXPROCS for a small
// footprint (PluginGCPercent, PluginMemoryLimit, PluginMaxProcs) unless
// the environment sets them.
func Serve(flow Flow, opts ...ServeOption) {
	cfg := serveConfig{logLevel: slog.LevelInfo}
	for _, o := range opts {
		o(&cfg)
	}
	// go-plugin redirects os.Stderr once serving; the loggers keep the
	// real stderr, which the host reads line by line.
	stderr := os.Stderr
	if cfg.logger == nil {
		cfg.logger = NewLogger(stderr, cfg.logLevel)
	}
	if cfg.goPluginLogger == nil {
		cfg.goPluginLogger = newGoPluginLogger(stderr, cfg.logLevel)
	}
	// The host's span service, once the host configures the plugin.
	spans := &hostlink.Link{}
	if cfg.tracerProvider == nil && cfg.tracing != nil {
		service := "paysidecar-plugin"
		if info, err := flow.Info(context.Background()); err == nil && info.Name != "" {
			service += "-" + info.Name
		}
		tp, stop, err := cfg.tracing(hostlink.NewContext(context.Background(), spans), service)
		if err != nil {
			cfg.logger.Warn("plugin spans are not exported", "error", err)
		} else if tp != nil {
			cfg.tracerProvider = tp
			defer stop()
		}
	}
	if cfg.test == nil {
		// A process of its own: tuned for a small footprint (see
		// PluginGCPercent), unless its environment says otherwise.
		tuneRuntime(os.Getenv)
	}
	if cfg.test == nil && os.Getenv(MagicCookieKey) == MagicCookieValue {
		// A plugin started by its host lives no longer than the host.
		life, err := newLifeline(cfg.logger)
		if err != nil {
			cfg.logger.Error("plugin not started", "error", err)
			os.Exit(1)
		}
		life.watch()
		defer life.close()
	}
	serverOpts := GRPCServerOptions(cfg.tracerProvider, cfg.logger)
	gp := &GRPCPlugin{
		Impl: flow, Logger: cfg.logger, LogLevel: cfg.logLevel,
		HostDialOptions: GRPCDialOptions(cfg.tracerProvider), spans: spans,
	}
	defer gp.Close()
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig:  Handshake(),
		VersionedPlugins: map[int]goplugin.PluginSet{ProtocolVersion: {PluginName: gp}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, serverOpts...)...)
		},
		Logger: cfg.goPluginLogger,
		Test:   cfg.test,
	})
}
