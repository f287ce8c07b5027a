package plugin

import (
	"context"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv1"
)

// GRPCPlugin binds Flow to go-plugin's gRPC transport. Plugins and hosts
// normally use it through VersionedPlugins.
type GRPCPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	// Impl is the flow served by a plugin; nil on the host side.
	Impl Flow
}

var _ goplugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers the flow service on s.
func (p *GRPCPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	flowv1.RegisterFlowServiceServer(s, &server{impl: p.Impl})
	return nil
}

// GRPCClient returns a Flow that calls the plugin over conn.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return NewGRPCClient(conn), nil
}
