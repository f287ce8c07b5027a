// Package plugin is the contract between the paysidecar host and its channel
// flow plugins, and everything a flow plugin needs to serve it.
//
// Each channel flow (WeChat JSAPI, WeChat mini-program, Alipay native) runs
// as its own process, launched and supervised by the host through
// hashicorp/go-plugin over gRPC. A plugin author implements Flow and calls
// Serve from main:
//
//	func main() {
//		plugin.Serve(myflow.New(plugin.NewLogger(os.Stderr, slog.LevelInfo)))
//	}
//
// The wire contract is a versioned gRPC service (proto package
// paysidecar.flow.v1, see proto/). Its generated code is internal to this
// module: the Go API here has no proto types, and the conversions between
// the two live in one file each direction (toproto.go, fromproto.go).
//
// # Lifecycle
//
// The host starts the plugin process, checks its Info (name, trade type,
// capabilities, contract versions), then calls Configure with the plugin's
// own settings and nothing else: the merchant's RSA key, the upstream
// credentials and the other plugins' settings never reach a plugin. After a
// restart the host configures the plugin again. Every other method may be
// called concurrently once Configure has succeeded.
//
// # Errors
//
// A Flow reports a failure the host can act on as an *Error with one of the
// stable codes (CodeInvalidRequest, CodeInvalidBuyer, CodeUnsupported,
// CodeCodeInvalid, CodeCodeExchangeFailed, CodeChannelUnavailable,
// CodeInternal). The *Error crosses the gRPC boundary unchanged. A failure
// of the connection itself (the plugin process died, the transport broke)
// is reported as an error wrapping ErrTransport instead.
//
// # Tracing
//
// Both sides install OpenTelemetry gRPC stats handlers that propagate W3C
// trace context and baggage, so a span started by the host is the parent of
// what the plugin does. A plugin that exports its own spans passes
// otlpexport.FromEnv to WithTracing; only such a plugin depends on the
// OpenTelemetry SDK and its exporter.
//
// Package plugintest runs a Flow over real gRPC in-process for tests, and
// package mockflow is a configurable Flow, also buildable as a plugin
// binary, for testing hosts.
package plugin
