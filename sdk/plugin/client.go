package plugin

import (
	"context"
	"log/slog"
	"sync"

	goplugin "github.com/hashicorp/go-plugin"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"

	"github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv2"
)

// client is the host side of contract version 2: a Flow that calls a
// plugin.
type client struct {
	rpc    flowv2.FlowServiceClient
	broker *goplugin.GRPCBroker

	hostOnce  sync.Once
	hostID    uint32
	hostSpans bool
}

// hostServerOptions are GRPCServerOptions for the host's services, except
// that the export of a plugin's spans is not itself traced: it carries no
// trace context, so each call would start a trace of its own.
func hostServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(otel.GetTracerProvider()),
			otelgrpc.WithPropagators(Propagator()),
			otelgrpc.WithFilter(func(info *stats.RPCTagInfo) bool {
				return info.FullMethodName != flowv2.HostService_ExportSpans_FullMethodName
			}),
		)),
		grpc.ChainUnaryInterceptor(recoverUnary(slog.New(slog.DiscardHandler))),
		grpc.InitialWindowSize(windowSize), grpc.InitialConnWindowSize(windowSize),
	}
}

var _ Flow = (*client)(nil)

// Info implements Flow over gRPC.
func (c *client) Info(ctx context.Context) (Info, error) {
	resp, err := c.rpc.GetInfo(ctx, &flowv2.GetInfoRequest{})
	if err != nil {
		return Info{}, fromStatus(ctx, "Info", err)
	}
	return infoFromProto(resp.GetInfo()), nil
}

// Configure implements Flow over gRPC. The first Configure that carries a
// Host serves it to the plugin on go-plugin's broker for the life of the
// connection; a Host that is a SpanHost takes the plugin's spans.
func (c *client) Configure(ctx context.Context, cfg Config) error {
	if cfg.Host != nil && c.broker != nil {
		c.hostOnce.Do(func() {
			c.hostID = c.broker.NextId()
			_, c.hostSpans = cfg.Host.(SpanHost)
			// AcceptAndServe returns when the broker closes, that is when
			// the connection to the plugin ends.
			go c.broker.AcceptAndServe(c.hostID, func(opts []grpc.ServerOption) *grpc.Server {
				srv := grpc.NewServer(append(opts, hostServerOptions()...)...)
				flowv2.RegisterHostServiceServer(srv, &hostServer{host: cfg.Host})
				return srv
			})
		})
	}
	_, err := c.rpc.Configure(ctx, &flowv2.ConfigureRequest{
		Settings:     cfg.Settings.values,
		ApiVersion:   int32(cfg.APIVersion),
		Environment:  environmentToProto(cfg.Environment),
		HostBrokerId: c.hostID,
		HostKeys:     cfg.HostKeys,
		Merchants:    merchantsToProto(cfg.Settings, cfg.Merchants),
		HostSpans:    c.hostSpans,
	})
	return fromStatus(ctx, "Configure", err)
}

// ShapeOrder implements Flow over gRPC.
func (c *client) ShapeOrder(ctx context.Context, in OrderInput) (OrderShape, error) {
	resp, err := c.rpc.ShapeOrder(ctx, orderInputToProto(in))
	if err != nil {
		return OrderShape{}, fromStatus(ctx, "ShapeOrder", err)
	}
	return orderShapeFromProto(resp), nil
}

// PayParams implements Flow over gRPC.
func (c *client) PayParams(ctx context.Context, in PayParamsInput) (PayParams, error) {
	resp, err := c.rpc.PayParams(ctx, payParamsInputToProto(in))
	if err != nil {
		return PayParams{}, fromStatus(ctx, "PayParams", err)
	}
	return payParamsFromProto(resp), nil
}

// AuthorizeURL implements Flow over gRPC.
func (c *client) AuthorizeURL(ctx context.Context, in AuthorizeInput) (string, error) {
	resp, err := c.rpc.AuthorizeURL(ctx, authorizeInputToProto(in))
	if err != nil {
		return "", fromStatus(ctx, "AuthorizeURL", err)
	}
	return resp.GetUrl(), nil
}

// ExchangeCode implements Flow over gRPC.
func (c *client) ExchangeCode(ctx context.Context, in ExchangeInput) (Identity, error) {
	resp, err := c.rpc.ExchangeCode(ctx, exchangeInputToProto(in))
	if err != nil {
		return Identity{}, fromStatus(ctx, "ExchangeCode", err)
	}
	return identityFromProto(resp.GetIdentity()), nil
}

// LaunchLinks implements Flow over gRPC.
func (c *client) LaunchLinks(ctx context.Context, in LaunchInput) (LaunchLinks, error) {
	resp, err := c.rpc.LaunchLinks(ctx, launchInputToProto(in))
	if err != nil {
		return LaunchLinks{}, fromStatus(ctx, "LaunchLinks", err)
	}
	return launchLinksFromProto(resp), nil
}

// Check implements Flow over gRPC.
func (c *client) Check(ctx context.Context) error {
	_, err := c.rpc.Check(ctx, &flowv2.CheckRequest{})
	return fromStatus(ctx, "Check", err)
}
