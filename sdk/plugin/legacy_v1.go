package plugin

import (
	"context"
	"errors"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv1"
)

// This file is the host side of contract version 1 (proto package
// paysidecar.flow.v1), kept so that plugins built with an SDK from before
// version 2 keep working. It adapts a version 1 plugin to the Go API:
// version 1 has no schema types, sandbox defaults, host services or
// health check, and its DecodeNotification is never called.

// v1Plugin binds a version 1 plugin to go-plugin on the host side.
type v1Plugin struct {
	goplugin.NetRPCUnsupportedPlugin
}

var _ goplugin.GRPCPlugin = (*v1Plugin)(nil)

// GRPCServer refuses: this SDK serves only the newest contract.
func (*v1Plugin) GRPCServer(*goplugin.GRPCBroker, *grpc.Server) error {
	return errors.New("plugin: contract version 1 is only spoken by hosts")
}

// GRPCClient returns a Flow that calls a version 1 plugin over conn.
func (*v1Plugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return &v1Client{rpc: flowv1.NewFlowServiceClient(conn)}, nil
}

// v1Client is a Flow that calls a version 1 plugin.
type v1Client struct {
	rpc flowv1.FlowServiceClient
}

var _ Flow = (*v1Client)(nil)

// Info implements Flow. Version 1 settings are all strings.
func (c *v1Client) Info(ctx context.Context) (Info, error) {
	resp, err := c.rpc.GetInfo(ctx, &flowv1.GetInfoRequest{})
	if err != nil {
		return Info{}, fromStatus(ctx, "Info", err)
	}
	p := resp.GetInfo()
	out := Info{Name: p.GetName(), Version: p.GetVersion(), TradeType: p.GetTradeType()}
	for _, cp := range p.GetCapabilities() {
		out.Capabilities = append(out.Capabilities, Capability(cp))
	}
	for _, v := range p.GetApiVersions() {
		out.APIVersions = append(out.APIVersions, int(v))
	}
	for _, s := range p.GetSettings() {
		out.Settings = append(out.Settings, SettingSpec{
			Key: s.GetKey(), Type: TypeString, Required: s.GetRequired(), Secret: s.GetSecret(),
			Default: s.GetDefaultValue(), Description: s.GetDescription(),
		})
	}
	return out, nil
}

// Configure implements Flow: a version 1 plugin takes only its settings.
func (c *v1Client) Configure(ctx context.Context, cfg Config) error {
	_, err := c.rpc.Configure(ctx, &flowv1.ConfigureRequest{Settings: cfg.Settings.values})
	return fromStatus(ctx, "Configure", err)
}

// ShapeOrder implements Flow.
func (c *v1Client) ShapeOrder(ctx context.Context, in OrderInput) (OrderShape, error) {
	resp, err := c.rpc.ShapeOrder(ctx, &flowv1.ShapeOrderRequest{
		MerchantId: in.MerchantID, PaymentId: in.PaymentID, OutTradeNo: in.OutTradeNo, AmountFen: in.AmountFen,
		Description: in.Description, ClientIp: in.ClientIP, Metadata: in.Metadata,
		Buyer: &flowv1.Buyer{Openid: in.Buyer.OpenID, AppId: in.Buyer.AppID, Code: in.Buyer.Code},
	})
	if err != nil {
		return OrderShape{}, fromStatus(ctx, "ShapeOrder", err)
	}
	b := resp.GetBuyer()
	return OrderShape{
		TradeType: resp.GetTradeType(), Fields: resp.GetFields(),
		Buyer: Identity{OpenID: b.GetOpenid(), UnionID: b.GetUnionid(), AppID: b.GetAppId()},
	}, nil
}

// PayParams implements Flow.
func (c *v1Client) PayParams(ctx context.Context, in PayParamsInput) (PayParams, error) {
	resp, err := c.rpc.PayParams(ctx, &flowv1.PayParamsRequest{
		PaymentId: in.PaymentID, OutTradeNo: in.OutTradeNo, TradeType: in.TradeType, Upstream: in.Upstream,
	})
	if err != nil {
		return PayParams{}, fromStatus(ctx, "PayParams", err)
	}
	return PayParams{Kind: resp.GetKind(), JSON: resp.GetJson()}, nil
}

// AuthorizeURL implements Flow.
func (c *v1Client) AuthorizeURL(ctx context.Context, in AuthorizeInput) (string, error) {
	resp, err := c.rpc.AuthorizeURL(ctx, &flowv1.AuthorizeURLRequest{RedirectUri: in.RedirectURI, Scope: in.Scope, State: in.State})
	if err != nil {
		return "", fromStatus(ctx, "AuthorizeURL", err)
	}
	return resp.GetUrl(), nil
}

// ExchangeCode implements Flow.
func (c *v1Client) ExchangeCode(ctx context.Context, in ExchangeInput) (Identity, error) {
	resp, err := c.rpc.ExchangeCode(ctx, &flowv1.ExchangeCodeRequest{Code: in.Code, AppId: in.AppID})
	if err != nil {
		return Identity{}, fromStatus(ctx, "ExchangeCode", err)
	}
	id := resp.GetIdentity()
	return Identity{OpenID: id.GetOpenid(), UnionID: id.GetUnionid(), AppID: id.GetAppId()}, nil
}

// Check implements Flow with the one call every version 1 plugin answers
// through its flow service: GetInfo.
func (c *v1Client) Check(ctx context.Context) error {
	_, err := c.rpc.GetInfo(ctx, &flowv1.GetInfoRequest{})
	return fromStatus(ctx, "Check", err)
}

// LaunchLinks implements Flow: version 1 has no launch links.
func (c *v1Client) LaunchLinks(context.Context, LaunchInput) (LaunchLinks, error) {
	return LaunchLinks{}, &Error{Code: CodeUnsupported, Message: "contract version 1 has no LaunchLinks"}
}
