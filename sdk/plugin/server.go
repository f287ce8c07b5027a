package plugin

import (
	"context"

	"github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv1"
)

// server serves a Flow over the gRPC contract inside a plugin process.
type server struct {
	flowv1.UnimplementedFlowServiceServer
	impl Flow
}

// GetInfo serves the method of the same name of the flow.
func (s *server) GetInfo(ctx context.Context, _ *flowv1.GetInfoRequest) (*flowv1.GetInfoResponse, error) {
	info, err := s.info(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &flowv1.GetInfoResponse{Info: infoToProto(info)}, nil
}

func (s *server) info(ctx context.Context) (Info, error) {
	info, err := s.impl.Info(ctx)
	if err != nil {
		return Info{}, err
	}
	if len(info.APIVersions) == 0 {
		info.APIVersions = APIVersions()
	}
	return info, nil
}

// Configure serves the method of the same name of the flow.
func (s *server) Configure(ctx context.Context, req *flowv1.ConfigureRequest) (*flowv1.ConfigureResponse, error) {
	info, err := s.info(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	settings := Settings(req.GetSettings())
	if settings == nil {
		settings = Settings{}
	}
	if err := settings.CheckKeys(info.Settings); err != nil {
		return nil, toStatus(err)
	}
	if err := s.impl.Configure(ctx, settings); err != nil {
		return nil, toStatus(err)
	}
	return &flowv1.ConfigureResponse{}, nil
}

// ShapeOrder serves the method of the same name of the flow.
func (s *server) ShapeOrder(ctx context.Context, req *flowv1.ShapeOrderRequest) (*flowv1.ShapeOrderResponse, error) {
	out, err := s.impl.ShapeOrder(ctx, orderInputFromProto(req))
	if err != nil {
		return nil, toStatus(err)
	}
	return orderShapeToProto(out), nil
}

// PayParams serves the method of the same name of the flow.
func (s *server) PayParams(ctx context.Context, req *flowv1.PayParamsRequest) (*flowv1.PayParamsResponse, error) {
	out, err := s.impl.PayParams(ctx, payParamsInputFromProto(req))
	if err != nil {
		return nil, toStatus(err)
	}
	return payParamsToProto(out), nil
}

// DecodeNotification serves the method of the same name of the flow.
func (s *server) DecodeNotification(ctx context.Context, req *flowv1.DecodeNotificationRequest) (*flowv1.DecodeNotificationResponse, error) {
	out, err := s.impl.DecodeNotification(ctx, notificationInputFromProto(req))
	if err != nil {
		return nil, toStatus(err)
	}
	return channelDetailToProto(out), nil
}

// AuthorizeURL serves the method of the same name of the flow.
func (s *server) AuthorizeURL(ctx context.Context, req *flowv1.AuthorizeURLRequest) (*flowv1.AuthorizeURLResponse, error) {
	out, err := s.impl.AuthorizeURL(ctx, authorizeInputFromProto(req))
	if err != nil {
		return nil, toStatus(err)
	}
	return &flowv1.AuthorizeURLResponse{Url: out}, nil
}

// ExchangeCode serves the method of the same name of the flow.
func (s *server) ExchangeCode(ctx context.Context, req *flowv1.ExchangeCodeRequest) (*flowv1.ExchangeCodeResponse, error) {
	out, err := s.impl.ExchangeCode(ctx, exchangeInputFromProto(req))
	if err != nil {
		return nil, toStatus(err)
	}
	return &flowv1.ExchangeCodeResponse{Identity: identityToProto(out)}, nil
}
