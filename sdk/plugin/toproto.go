package plugin

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv1"
)

// This file holds every conversion from the Go API to the proto contract.
// fromproto.go holds the other direction.

func infoToProto(i Info) *flowv1.Info {
	out := &flowv1.Info{
		Name:      i.Name,
		Version:   i.Version,
		TradeType: i.TradeType,
	}
	for _, c := range i.Capabilities {
		out.Capabilities = append(out.Capabilities, string(c))
	}
	for _, v := range i.APIVersions {
		out.ApiVersions = append(out.ApiVersions, int32(v))
	}
	for _, s := range i.Settings {
		out.Settings = append(out.Settings, &flowv1.SettingSpec{
			Key:          s.Key,
			Required:     s.Required,
			Secret:       s.Secret,
			DefaultValue: s.Default,
			Description:  s.Description,
		})
	}
	return out
}

func buyerToProto(b Buyer) *flowv1.Buyer {
	return &flowv1.Buyer{Openid: b.OpenID, AppId: b.AppID, Code: b.Code}
}

func identityToProto(id Identity) *flowv1.Identity {
	return &flowv1.Identity{Openid: id.OpenID, Unionid: id.UnionID, AppId: id.AppID}
}

func orderInputToProto(in OrderInput) *flowv1.ShapeOrderRequest {
	return &flowv1.ShapeOrderRequest{
		MerchantId:  in.MerchantID,
		PaymentId:   in.PaymentID,
		OutTradeNo:  in.OutTradeNo,
		AmountFen:   in.AmountFen,
		Description: in.Description,
		Buyer:       buyerToProto(in.Buyer),
		ClientIp:    in.ClientIP,
		Metadata:    in.Metadata,
	}
}

func orderShapeToProto(s OrderShape) *flowv1.ShapeOrderResponse {
	out := &flowv1.ShapeOrderResponse{TradeType: s.TradeType, Fields: s.Fields}
	if !s.Buyer.IsZero() {
		out.Buyer = identityToProto(s.Buyer)
	}
	return out
}

func payParamsInputToProto(in PayParamsInput) *flowv1.PayParamsRequest {
	return &flowv1.PayParamsRequest{
		PaymentId:  in.PaymentID,
		OutTradeNo: in.OutTradeNo,
		TradeType:  in.TradeType,
		Upstream:   in.Upstream,
	}
}

func payParamsToProto(p PayParams) *flowv1.PayParamsResponse {
	return &flowv1.PayParamsResponse{Kind: p.Kind, Json: p.JSON}
}

func notificationInputToProto(in NotificationInput) *flowv1.DecodeNotificationRequest {
	return &flowv1.DecodeNotificationRequest{TradeType: in.TradeType, Fields: in.Fields}
}

func channelDetailToProto(d ChannelDetail) *flowv1.DecodeNotificationResponse {
	return &flowv1.DecodeNotificationResponse{
		Channel:        d.Channel,
		BuyerId:        d.BuyerID,
		ChannelTradeNo: d.ChannelTradeNo,
		Extra:          d.Extra,
	}
}

func authorizeInputToProto(in AuthorizeInput) *flowv1.AuthorizeURLRequest {
	return &flowv1.AuthorizeURLRequest{RedirectUri: in.RedirectURI, Scope: in.Scope, State: in.State}
}

func exchangeInputToProto(in ExchangeInput) *flowv1.ExchangeCodeRequest {
	return &flowv1.ExchangeCodeRequest{Code: in.Code, AppId: in.AppID}
}

// grpcCode is the gRPC status code an *Error travels with. The code is
// only a coarse hint for gRPC tooling; the client reads the Error detail.
func grpcCode(code string) codes.Code {
	switch code {
	case CodeInvalidRequest, CodeInvalidBuyer, CodeCodeInvalid:
		return codes.InvalidArgument
	case CodeUnsupported:
		return codes.Unimplemented
	case CodeCodeExchangeFailed:
		return codes.FailedPrecondition
	case CodeChannelUnavailable:
		return codes.Unavailable
	case CodeInternal:
		return codes.Internal
	}
	return codes.Unknown
}

// toStatus turns a flow's error into a gRPC status error that carries an
// Error detail. Context errors travel as plain Canceled or
// DeadlineExceeded statuses; any other error becomes CodeInternal.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	var pe *Error
	if !errors.As(err, &pe) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return status.FromContextError(err).Err()
		}
		pe = &Error{Code: CodeInternal, Message: err.Error()}
	}
	st := status.New(grpcCode(pe.Code), pe.Message)
	withDetail, derr := st.WithDetails(&flowv1.Error{Code: pe.Code, Message: pe.Message, Field: pe.Field})
	if derr != nil {
		// Only a detail that cannot be marshalled fails here; the plain
		// status still says what went wrong.
		return st.Err()
	}
	return withDetail.Err()
}
