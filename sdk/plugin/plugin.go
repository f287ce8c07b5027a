package plugin

import (
	"context"
	"log/slog"
	"sync"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv2"
	"github.com/paysidecar/paysidecar/sdk/plugin/internal/hostlink"
)

// GRPCPlugin binds Flow to go-plugin's gRPC transport under contract
// version 2. Plugins and hosts normally use it through ServerPlugins and
// ClientPlugins.
type GRPCPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	// Impl is the flow served by a plugin; nil on the host side.
	Impl Flow
	// Logger is the flow's Config.Logger when the host offers no
	// services; nil discards.
	Logger *slog.Logger
	// LogLevel is the least level of the Config.Logger that writes
	// through the host; nil means Info.
	LogLevel slog.Leveler
	// HostDialOptions are the options of the plugin's connection to the
	// host's services.
	HostDialOptions []grpc.DialOption

	// spans, set by Serve, receives the host's span service when the host
	// configures the plugin (see package hosttrace); nil outside Serve.
	spans *hostlink.Link

	mu      sync.Mutex
	servers []*server
}

var _ goplugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers the flow service on s.
func (p *GRPCPlugin) GRPCServer(broker *goplugin.GRPCBroker, s *grpc.Server) error {
	logger := p.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	srv := &server{impl: p.Impl, broker: broker, logger: logger, logLevel: p.LogLevel, dialOpts: p.HostDialOptions, spans: p.spans}
	if srv.logLevel == nil {
		srv.logLevel = slog.LevelInfo
	}
	p.mu.Lock()
	p.servers = append(p.servers, srv)
	p.mu.Unlock()
	flowv2.RegisterFlowServiceServer(s, srv)
	return nil
}

// Close releases what the servers of p hold: their connections to the
// host's services. Serve calls it when serving ends.
func (p *GRPCPlugin) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.servers {
		s.close()
	}
}

// GRPCClient returns a Flow that calls the plugin over conn.
func (p *GRPCPlugin) GRPCClient(_ context.Context, broker *goplugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return &client{rpc: flowv2.NewFlowServiceClient(conn), broker: broker}, nil
}
