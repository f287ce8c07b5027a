// Package plugintest runs a flow in-process behind a real gRPC server, so
// that a plugin's own tests exercise the full round trip through the
// contract: proto conversion both ways, errors crossing the boundary as
// gRPC statuses, and trace context carried by the OpenTelemetry stats
// handlers that Serve installs in a real plugin.
package plugintest

import (
	"log/slog"
	"net"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

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

// WithLogger sets the logger of the plugin side's own messages.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// Serve serves flow on a loopback gRPC server with the same server options
// as plugin.Serve, connects to it with the same dial options as the host,
// and returns the host side's Flow. The server and the connection stop when
// the test ends.
func Serve(t testing.TB, flow plugin.Flow, opts ...Option) plugin.Flow {
	t.Helper()
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("plugintest: listen: %v", err)
	}
	srv := grpc.NewServer(plugin.GRPCServerOptions(cfg.serverTP, cfg.logger)...)
	if err := (&plugin.GRPCPlugin{Impl: flow}).GRPCServer(nil, srv); err != nil {
		t.Fatalf("plugintest: register flow: %v", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(ln) })

	dialOpts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
		plugin.GRPCDialOptions(cfg.clientTP)...)
	conn, err := grpc.NewClient(ln.Addr().String(), dialOpts...)
	if err != nil {
		srv.Stop()
		wg.Wait()
		t.Fatalf("plugintest: dial: %v", err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
		wg.Wait()
	})
	return plugin.NewGRPCClient(conn)
}
