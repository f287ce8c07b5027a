// Package plugintest runs a flow in-process the way a host runs a plugin,
// so that a plugin's own tests exercise the full round trip through the
// contract: go-plugin's handshake and broker, proto conversion both ways,
// the schema the SDK enforces before Configure, the host's services called
// back over the broker, errors crossing the boundary as gRPC statuses, and
// trace context carried by the OpenTelemetry stats handlers that Serve
// installs in a real plugin.
//
// Serve returns the host side's Flow, unconfigured; Configure configures it
// as a host does, with raw settings and the test's Host (NewHost gives one
// with real RSA keys).
package plugintest

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"go.opentelemetry.io/otel/trace"

	"github.com/paysidecar/paysidecar/sdk/plugin"
)

// Option changes how Serve runs the flow.
type Option func(*config)

type config struct {
	serverTP trace.TracerProvider
	clientTP trace.TracerProvider
	logger   *slog.Logger
}

// WithTracerProvider sets the tracer provider of both the server (plugin)
// side and the client (host) side.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.serverTP, c.clientTP = tp, tp }
}

// WithServerTracerProvider sets the tracer provider of the plugin side.
func WithServerTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.serverTP = tp }
}

// WithClientTracerProvider sets the tracer provider of the host side.
func WithClientTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.clientTP = tp }
}

// WithLogger sets the logger of the plugin side's own messages, and of the
// flow when the host offers no services.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// Serve serves flow in-process with plugin.Serve in go-plugin's test mode,
// attaches to it as a host does (the contract versions of
// plugin.ClientPlugins, the same dial options) and returns the host side's
// Flow. Everything stops when the test ends.
func Serve(t testing.TB, flow plugin.Flow, opts ...Option) plugin.Flow {
	t.Helper()
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	reattach := make(chan *goplugin.ReattachConfig, 1)
	closed := make(chan struct{})
	serveOpts := []plugin.ServeOption{
		plugin.WithLogger(cfg.logger),
		plugin.WithGoPluginLogger(hclog.NewNullLogger()),
		plugin.WithTestServe(&goplugin.ServeTestConfig{Context: ctx, ReattachConfigCh: reattach, CloseCh: closed}),
	}
	if cfg.serverTP != nil {
		serveOpts = append(serveOpts, plugin.WithTracerProvider(cfg.serverTP))
	}
	go plugin.Serve(flow, serveOpts...)

	var rc *goplugin.ReattachConfig
	select {
	case rc = <-reattach:
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("plugintest: the flow did not start serving")
	}
	rc.ReattachFunc = func() (runner.AttachedRunner, error) { return inProcess{closed: closed, stop: cancel}, nil }
	// A reattached client takes its plugin set as given: the one of the
	// version the in-process server chose, as a handshake would.
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  plugin.Handshake(),
		Plugins:          plugin.ClientPlugins()[rc.ProtocolVersion],
		Reattach:         rc,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		GRPCDialOptions:  plugin.GRPCDialOptions(cfg.clientTP),
		Logger:           hclog.NewNullLogger(),
	})
	stop := func() {
		client.Kill()
		cancel()
		<-closed
	}
	rpc, err := client.Client()
	if err != nil {
		stop()
		t.Fatalf("plugintest: attach: %v", err)
	}
	raw, err := rpc.Dispense(plugin.PluginName)
	if err != nil {
		_ = rpc.Close()
		stop()
		t.Fatalf("plugintest: dispense: %v", err)
	}
	f, ok := raw.(plugin.Flow)
	if !ok {
		_ = rpc.Close()
		stop()
		t.Fatalf("plugintest: dispensed %T, not a plugin.Flow", raw)
	}
	t.Cleanup(func() {
		// Closing the connection shuts the in-process server down; only
		// when it does not is it stopped through its context, which
		// go-plugin must not be asked to do while it is shutting down.
		_ = rpc.Close()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
		}
		stop()
	})
	return f
}

// Configure configures f as a host does, with plugin.Configure: it reads
// f's Info, applies the schema to raw in c.Environment and hands the flow
// the result and the rest of c (its Host, HostKeys, APIVersion). An unset
// APIVersion is plugin.ProtocolVersion. It returns the Info it read.
func Configure(ctx context.Context, f plugin.Flow, raw map[string]string, c plugin.Config) (plugin.Info, error) {
	if c.APIVersion == 0 {
		c.APIVersion = plugin.ProtocolVersion
	}
	return plugin.Configure(ctx, f, raw, c)
}

// inProcess is the runner of a flow served in this process: waiting ends
// when the server has stopped, and killing stops it.
type inProcess struct {
	closed <-chan struct{}
	stop   context.CancelFunc
}

func (r inProcess) Wait(ctx context.Context) error {
	select {
	case <-r.closed:
	case <-ctx.Done():
	}
	return nil
}

func (r inProcess) Kill(context.Context) error {
	r.stop()
	<-r.closed
	return nil
}

func (inProcess) ID() string { return "in-process" }

func (inProcess) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (inProcess) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

// RefusedSetting returns the key of the first setting err refuses: the
// first problem of a *plugin.SettingsError (the schema refused it before
// the flow saw it) or the field of a *plugin.Error with
// plugin.CodeInvalidRequest (the flow's Configure refused it). It returns
// "" for any other error and for nil.
func RefusedSetting(err error) string {
	var se *plugin.SettingsError
	if errors.As(err, &se) && len(se.Problems) > 0 {
		return se.Problems[0].Key
	}
	var pe *plugin.Error
	if errors.As(err, &pe) && pe.Code == plugin.CodeInvalidRequest {
		return pe.Field
	}
	return ""
}

// PayParams builds the pay parameters of in both ways a host can: from
// the recipe the flow's ShapeOrder gave for the order (shape.PayParams,
// built as the host builds it) and by calling f.PayParams. It fails t
// when shape carries no recipe or one the SDK cannot build, or when the
// two ways disagree, in bytes or in the error's code and field; otherwise
// it returns what both gave.
func PayParams(t testing.TB, f plugin.Flow, shape plugin.OrderShape, in plugin.PayParamsInput) (plugin.PayParams, error) {
	t.Helper()
	if shape.PayParams == nil {
		t.Fatal("ShapeOrder gave no pay recipe")
	}
	if err := shape.PayParams.Check(); err != nil {
		t.Fatalf("ShapeOrder gave a recipe the host cannot build: %v", err)
	}
	built, berr := shape.PayParams.Build(in.Upstream)
	called, cerr := f.PayParams(t.Context(), in)
	var bpe, cpe *plugin.Error
	errors.As(berr, &bpe)
	errors.As(cerr, &cpe)
	switch {
	case (berr == nil) != (cerr == nil):
		t.Fatalf("the recipe built %s (%v), PayParams answered %s (%v)", built.JSON, berr, called.JSON, cerr)
	case berr != nil && (bpe == nil || cpe == nil || bpe.Code != cpe.Code || bpe.Field != cpe.Field):
		t.Fatalf("the recipe failed with %v, PayParams with %v", berr, cerr)
	case berr == nil && (built.Kind != called.Kind || string(built.JSON) != string(called.JSON)):
		t.Fatalf("the recipe built %s %s, PayParams answered %s %s", built.Kind, built.JSON, called.Kind, called.JSON)
	}
	return called, cerr
}
