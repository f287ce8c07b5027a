// Package plugin is the contract between the paysidecar host and its channel
// flow plugins, and everything a flow plugin needs to serve it.
//
// Each channel flow (WeChat JSAPI, WeChat mini-program, Alipay native,
// UnionPay QR, …) runs as its own process, launched and supervised by the
// host through hashicorp/go-plugin over gRPC. A plugin author implements
// Flow, embedding UnsupportedFlow for the optional methods, and calls Serve
// from main:
//
//	func main() {
//		plugin.Serve(myflow.New())
//	}
//
// The wire contract is a versioned gRPC service (proto packages
// paysidecar.flow.v1 and paysidecar.flow.v2, see proto/). Its generated
// code is internal to this module: the Go API here has no proto types, and
// the conversions between the two live in one file each direction
// (toproto.go, fromproto.go; legacy_v1.go for version 1).
//
// # Versions
//
// A plugin built with this SDK speaks contract version 2; a host speaks 2
// and 1. At start go-plugin agrees on the highest version both speak (see
// ServerPlugins and ClientPlugins); the host passes the agreed version to
// the plugin in Config.APIVersion, and refuses a plugin that speaks no
// version it knows. A version 1 plugin, built before version 2, is driven
// through the same Go API by the host.
//
// # Lifecycle
//
// The host starts the plugin process, reads its Info (name, trade type,
// capabilities, what the application must give, settings schema), checks
// the configured settings against the schema and calls Configure with
// them, the agreed version, the environment (whether the host runs against
// its sandbox, whose URL the sandbox defaults may use) and its services.
// The SDK enforces the schema again inside the plugin before the flow's
// Configure sees anything: defaults are filled in, unknown and missing
// required settings and values of the wrong type are refused. The
// merchant's RSA key, the upstream credentials and the other plugins'
// settings never reach a plugin. After a restart the host configures the
// plugin again. Every other method may be called concurrently once
// Configure has succeeded; Check is called periodically.
//
// # Pay parameters
//
// A create asks the flow to shape the order (ShapeOrder), signs and sends
// it, and turns the verified answer into the front end's pay parameters.
// A flow whose parameters follow from the answer's fields returns a
// PayRecipe with its shape, and the host builds them itself with
// PayRecipe.Build, so that the create costs one plugin call. PayParams
// serves the other cases: a flow without a recipe, a recipe using an
// operation the host does not know, and parameters built later from an
// answer the host kept. A flow that gives a recipe implements PayParams
// as the Build of the same recipe; plugintest.PayParams checks that the
// two agree.
//
// # Host services
//
// Config.Host calls back into the host over go-plugin's broker: Sign and
// Verify with keys the host keeps and names (the host decides which names a
// flow may use), and Log through the host's logger, which removes the
// values of the flow's secret settings. A flow that speaks a channel's own
// signed protocol can thus do so without ever holding a private key. A
// host whose Host is also a SpanHost takes the plugin's spans too (see
// Tracing); it says so in the request that configures the plugin, so that
// a plugin of an older host, which does not, drops them.
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
// what the plugin does. A plugin that records its own spans passes
// hosttrace.Setup to WithTracing: its spans, in the traces the host
// samples, go to the host over the broker connection it already has and
// leave with the host's own, to the host's collector, under the plugin's
// service name. (otlpexport.FromEnv instead exports them over OTLP/gRPC
// from the plugin itself, at the cost of an exporter and a connection in
// every plugin process.) Only a plugin that uses either depends on the
// OpenTelemetry SDK.
//
// Package plugintest runs a Flow in-process the way a host does for tests,
// with a Host of real RSA keys, and package mockflow is a Flow that uses
// every method and host service, also buildable as a plugin binary, for
// testing hosts.
package plugin
