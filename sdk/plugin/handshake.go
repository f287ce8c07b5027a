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
	// proto package paysidecar.flow.v2. A plugin built with this SDK
	// speaks only it.
	ProtocolVersion = 2
	// ProtocolVersionV1 is the first contract version (proto package
	// paysidecar.flow.v1). Hosts still speak it, so that plugins built
	// with an SDK from before version 2 keep working.
	ProtocolVersionV1 = 1
	// PluginName is the name under which the flow is dispensed.
	PluginName = "flow"
)

// APIVersions returns the contract versions a plugin built with this SDK
// speaks, newest first.
func APIVersions() []int { return []int{ProtocolVersion} }

// HostAPIVersions returns the contract versions a host built with this SDK
// speaks, newest first.
func HostAPIVersions() []int { return []int{ProtocolVersion, ProtocolVersionV1} }

// Handshake returns the handshake configuration shared by host and plugin.
// Which contract version they speak is negotiated by go-plugin from the
// versions of ServerPlugins and ClientPlugins: the plugin picks the highest
// version both speak.
func Handshake() goplugin.HandshakeConfig {
	return goplugin.HandshakeConfig{
		ProtocolVersion:  ProtocolVersion,
		MagicCookieKey:   MagicCookieKey,
		MagicCookieValue: MagicCookieValue,
	}
}

// ServerPlugins returns the plugin sets a plugin serves flow with, keyed
// by contract version.
func ServerPlugins(flow Flow) map[int]goplugin.PluginSet {
	return map[int]goplugin.PluginSet{
		ProtocolVersion: {PluginName: &GRPCPlugin{Impl: flow}},
	}
}

// ClientPlugins returns the plugin sets a host offers, keyed by contract
// version: every version in HostAPIVersions. The Flow dispensed for either
// version has the Go API of this package; for a version 1 plugin Check
// asks for its Info, and Configure sends only the settings.
func ClientPlugins() map[int]goplugin.PluginSet {
	return map[int]goplugin.PluginSet{
		ProtocolVersion:   {PluginName: &GRPCPlugin{}},
		ProtocolVersionV1: {PluginName: &v1Plugin{}},
	}
}
