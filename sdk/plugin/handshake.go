package plugin

import (
	goplugin "github.com/hashicorp/go-plugin"
)

// The handshake between host and plugin. The magic cookie is not a security
// measure: it only stops a plugin binary started by hand from waiting for a
// host that never comes. Integrity comes from the host's checksum of the
// binary and authenticity of the connection from AutoMTLS.
const (
	// MagicCookieKey is the environment variable the host sets.
	MagicCookieKey = "PAYSIDECAR_FLOW_PLUGIN"
	// MagicCookieValue is the value the host sets it to.
	MagicCookieValue = "4f1b7c2e-flow-plugin-9d3a"
	// ProtocolVersion is the newest contract version this SDK speaks:
	// proto package paysidecar.flow.v1.
	ProtocolVersion = 1
	// PluginName is the name under which the flow is dispensed.
	PluginName = "flow"
)

// APIVersions returns the contract versions this SDK speaks, newest first.
func APIVersions() []int { return []int{ProtocolVersion} }

// Handshake returns the handshake configuration shared by host and plugin.
func Handshake() goplugin.HandshakeConfig {
	return goplugin.HandshakeConfig{
		ProtocolVersion:  ProtocolVersion,
		MagicCookieKey:   MagicCookieKey,
		MagicCookieValue: MagicCookieValue,
	}
}

// VersionedPlugins returns the plugin sets keyed by contract version. A
// plugin passes its Flow; a host passes nil, since it only uses the client
// side.
func VersionedPlugins(impl Flow) map[int]goplugin.PluginSet {
	return map[int]goplugin.PluginSet{
		ProtocolVersion: {PluginName: &GRPCPlugin{Impl: impl}},
	}
}
