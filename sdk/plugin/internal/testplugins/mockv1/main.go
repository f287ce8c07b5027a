// Command mockv1 is a flow plugin of contract version 1 (proto package
// paysidecar.flow.v1) only, written against that contract directly as a
// plugin built with an SDK from before version 2 is. Hosts use it to test
// that such plugins keep working.
//
// It reports the name "mock-v1" and trade type T_JSAPI, accepts the
// settings "label" and "app_secret" (secret) and refuses any other,
// echoes "label", its process id and the buyer's openid in ShapeOrder's
// fields, returns the upstream answer as pay parameters, and does not
// implement AuthorizeURL or ExchangeCode.
package main

import (
	"context"
	"encoding/json"
	"os"
	"sort"
	"strconv"
	"sync"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv1"
)

type server struct {
	flowv1.UnimplementedFlowServiceServer
	mu    sync.Mutex
	label string
}

func invalid(field, msg string) error {
	st, _ := status.New(codes.InvalidArgument, msg).WithDetails(&flowv1.Error{Code: plugin.CodeInvalidRequest, Message: msg, Field: field})
	return st.Err()
}

func (s *server) GetInfo(context.Context, *flowv1.GetInfoRequest) (*flowv1.GetInfoResponse, error) {
	return &flowv1.GetInfoResponse{Info: &flowv1.Info{
		Name: "mock-v1", Version: "1.0.0-mock", TradeType: "T_JSAPI", ApiVersions: []int32{1},
		Settings: []*flowv1.SettingSpec{
			{Key: "label", Description: "Echoed in ShapeOrder's fields."},
			{Key: "app_secret", Secret: true, Description: "Accepted and never used."},
		},
	}}, nil
}

func (s *server) Configure(_ context.Context, req *flowv1.ConfigureRequest) (*flowv1.ConfigureResponse, error) {
	var unknown []string
	for k := range req.GetSettings() {
		if k != "label" && k != "app_secret" {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, invalid(unknown[0], "unknown setting "+unknown[0])
	}
	s.mu.Lock()
	s.label = req.GetSettings()["label"]
	s.mu.Unlock()
	return &flowv1.ConfigureResponse{}, nil
}

func (s *server) ShapeOrder(_ context.Context, req *flowv1.ShapeOrderRequest) (*flowv1.ShapeOrderResponse, error) {
	s.mu.Lock()
	label := s.label
	s.mu.Unlock()
	return &flowv1.ShapeOrderResponse{TradeType: "T_JSAPI", Fields: map[string]string{
		"label": label, "pid": strconv.Itoa(os.Getpid()), "openid": req.GetBuyer().GetOpenid(), "contract": "v1",
	}}, nil
}

func (s *server) PayParams(_ context.Context, req *flowv1.PayParamsRequest) (*flowv1.PayParamsResponse, error) {
	b, err := json.Marshal(req.GetUpstream())
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &flowv1.PayParamsResponse{Kind: "mock_v1", Json: b}, nil
}

func (s *server) DecodeNotification(_ context.Context, req *flowv1.DecodeNotificationRequest) (*flowv1.DecodeNotificationResponse, error) {
	return &flowv1.DecodeNotificationResponse{Channel: "mock", ChannelTradeNo: req.GetFields()["out_trans_id"]}, nil
}

type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
}

func (grpcPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	flowv1.RegisterFlowServiceServer(s, &server{})
	return nil
}

func (grpcPlugin) GRPCClient(context.Context, *goplugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, nil
}

func main() {
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: goplugin.HandshakeConfig{
			ProtocolVersion: 1, MagicCookieKey: plugin.MagicCookieKey, MagicCookieValue: plugin.MagicCookieValue,
		},
		VersionedPlugins: map[int]goplugin.PluginSet{1: {plugin.PluginName: grpcPlugin{}}},
		GRPCServer:       goplugin.DefaultGRPCServer,
	})
}
