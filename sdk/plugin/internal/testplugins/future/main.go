// Command future is a flow plugin that speaks only contract version 99, a
// version no host knows: hosts use it to test that they refuse such a
// plugin clearly and keep running the others. Behind the version it serves
// the mock flow.
package main

import (
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/plugin/mockflow"
)

// Version is the only contract version the plugin speaks.
const Version = 99

func main() {
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig:  plugin.Handshake(),
		VersionedPlugins: map[int]goplugin.PluginSet{Version: {plugin.PluginName: &plugin.GRPCPlugin{Impl: mockflow.New(nil)}}},
		GRPCServer:       goplugin.DefaultGRPCServer,
	})
}
