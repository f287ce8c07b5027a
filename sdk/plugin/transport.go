package plugin

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// Propagator returns the propagator both sides use: W3C trace context and
// baggage. It is fixed rather than taken from the global OpenTelemetry
// setup, so that host and plugin always agree.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// windowSize is the gRPC flow-control window of host and plugin
// connections, per stream and per connection.
const windowSize = 1 << 20

// GRPCServerOptions returns the options of a plugin's gRPC server: an
// OpenTelemetry stats handler that continues the host's trace, fixed
// flow-control windows, and an interceptor that turns a panic in a flow
// into a CodeInternal error (logged with its stack on logger) instead of
// killing the plugin. A nil tp means the global provider; a nil logger
// discards.
func GRPCServerOptions(tp trace.TracerProvider, logger *slog.Logger) []grpc.ServerOption {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return []grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(tp),
			otelgrpc.WithPropagators(Propagator()),
		)),
		grpc.ChainUnaryInterceptor(recoverUnary(logger)),
		// Fixed flow-control windows (see GRPCDialOptions).
		grpc.InitialWindowSize(windowSize), grpc.InitialConnWindowSize(windowSize),
	}
}

// GRPCDialOptions returns the options of the host's connection to a
// plugin: an OpenTelemetry stats handler that sends the caller's trace
// context and baggage along, and fixed flow-control windows. A nil tp
// means the global provider.
func GRPCDialOptions(tp trace.TracerProvider) []grpc.DialOption {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return []grpc.DialOption{
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(
			otelgrpc.WithTracerProvider(tp),
			otelgrpc.WithPropagators(Propagator()),
		)),
		// Fixed flow-control windows, larger than any message of the
		// contract, turn off gRPC's bandwidth-delay estimation, which
		// would otherwise answer data with extra PING frames: on a Unix
		// socket there is no bandwidth to estimate, and each ping wakes
		// both processes.
		grpc.WithInitialWindowSize(windowSize), grpc.WithInitialConnWindowSize(windowSize),
	}
}

func recoverUnary(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				logger.ErrorContext(ctx, "flow panicked", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				resp = nil
				err = toStatus(&Error{Code: CodeInternal, Message: fmt.Sprintf("flow panicked in %s", info.FullMethod)})
			}
		}()
		return handler(ctx, req)
	}
}
