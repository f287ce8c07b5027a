package plugin

import (
	"context"

	"google.golang.org/grpc"

	"github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv1"
)

// client is the host side of the contract: a Flow that calls a plugin.
type client struct {
	rpc flowv1.FlowServiceClient
}

var _ Flow = (*client)(nil)

// NewGRPCClient returns a Flow that calls the flow served on conn. Errors
// are *Error values for the plugin's answers, wrap ErrTransport for a
// broken connection, and wrap the context's error when ctx ended.
func NewGRPCClient(conn grpc.ClientConnInterface) Flow {
	return &client{rpc: flowv1.NewFlowServiceClient(conn)}
}

// Info implements Flow over gRPC.
func (c *client) Info(ctx context.Context) (Info, error) {
	resp, err := c.rpc.GetInfo(ctx, &flowv1.GetInfoRequest{})
	if err != nil {
		return Info{}, fromStatus(ctx, "Info", err)
	}
	return infoFromProto(resp.GetInfo()), nil
}

// Configure implements Flow over gRPC.
func (c *client) Configure(ctx context.Context, s Settings) error {
	_, err := c.rpc.Configure(ctx, &flowv1.ConfigureRequest{Settings: s})
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

// DecodeNotification implements Flow over gRPC.
func (c *client) DecodeNotification(ctx context.Context, in NotificationInput) (ChannelDetail, error) {
	resp, err := c.rpc.DecodeNotification(ctx, notificationInputToProto(in))
	if err != nil {
		return ChannelDetail{}, fromStatus(ctx, "DecodeNotification", err)
	}
	return channelDetailFromProto(resp), nil
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
