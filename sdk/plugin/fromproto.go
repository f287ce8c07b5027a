package plugin

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv1"
)

// This file holds every conversion from the proto contract to the Go API.
// toproto.go holds the other direction.

func infoFromProto(p *flowv1.Info) Info {
	if p == nil {
		return Info{}
	}
	out := Info{Name: p.GetName(), Version: p.GetVersion(), TradeType: p.GetTradeType()}
	for _, c := range p.GetCapabilities() {
		out.Capabilities = append(out.Capabilities, Capability(c))
	}
	for _, v := range p.GetApiVersions() {
		out.APIVersions = append(out.APIVersions, int(v))
	}
	for _, s := range p.GetSettings() {
		out.Settings = append(out.Settings, SettingSpec{
			Key:         s.GetKey(),
			Required:    s.GetRequired(),
			Secret:      s.GetSecret(),
			Default:     s.GetDefaultValue(),
			Description: s.GetDescription(),
		})
	}
	return out
}

func buyerFromProto(p *flowv1.Buyer) Buyer {
	return Buyer{OpenID: p.GetOpenid(), AppID: p.GetAppId(), Code: p.GetCode()}
}

func identityFromProto(p *flowv1.Identity) Identity {
	return Identity{OpenID: p.GetOpenid(), UnionID: p.GetUnionid(), AppID: p.GetAppId()}
}

func orderInputFromProto(p *flowv1.ShapeOrderRequest) OrderInput {
	return OrderInput{
		MerchantID:  p.GetMerchantId(),
		PaymentID:   p.GetPaymentId(),
		OutTradeNo:  p.GetOutTradeNo(),
		AmountFen:   p.GetAmountFen(),
		Description: p.GetDescription(),
		Buyer:       buyerFromProto(p.GetBuyer()),
		ClientIP:    p.GetClientIp(),
		Metadata:    p.GetMetadata(),
	}
}

func orderShapeFromProto(p *flowv1.ShapeOrderResponse) OrderShape {
	return OrderShape{TradeType: p.GetTradeType(), Fields: p.GetFields(), Buyer: identityFromProto(p.GetBuyer())}
}

func payParamsInputFromProto(p *flowv1.PayParamsRequest) PayParamsInput {
	return PayParamsInput{
		PaymentID:  p.GetPaymentId(),
		OutTradeNo: p.GetOutTradeNo(),
		TradeType:  p.GetTradeType(),
		Upstream:   p.GetUpstream(),
	}
}

func payParamsFromProto(p *flowv1.PayParamsResponse) PayParams {
	return PayParams{Kind: p.GetKind(), JSON: p.GetJson()}
}

func notificationInputFromProto(p *flowv1.DecodeNotificationRequest) NotificationInput {
	return NotificationInput{TradeType: p.GetTradeType(), Fields: p.GetFields()}
}

func channelDetailFromProto(p *flowv1.DecodeNotificationResponse) ChannelDetail {
	return ChannelDetail{
		Channel:        p.GetChannel(),
		BuyerID:        p.GetBuyerId(),
		ChannelTradeNo: p.GetChannelTradeNo(),
		Extra:          p.GetExtra(),
	}
}

func authorizeInputFromProto(p *flowv1.AuthorizeURLRequest) AuthorizeInput {
	return AuthorizeInput{RedirectURI: p.GetRedirectUri(), Scope: p.GetScope(), State: p.GetState()}
}

func exchangeInputFromProto(p *flowv1.ExchangeCodeRequest) ExchangeInput {
	return ExchangeInput{Code: p.GetCode(), AppID: p.GetAppId()}
}

// fromStatus turns the error of a gRPC call into the Go API's error:
//   - a status with an Error detail becomes that *Error;
//   - a call whose own context ended, or whose deadline gRPC enforced,
//     wraps the context's error;
//   - a broken or refused connection wraps ErrTransport;
//   - Unimplemented without detail (an older plugin) becomes
//     CodeUnsupported;
//   - anything else becomes CodeInternal.
func fromStatus(ctx context.Context, method string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		if ctx.Err() != nil {
			return fmt.Errorf("plugin %s: %w", method, ctx.Err())
		}
		return fmt.Errorf("%w: %s: %w", ErrTransport, method, err)
	}
	for _, d := range st.Details() {
		if pe, ok := d.(*flowv1.Error); ok {
			return &Error{Code: pe.GetCode(), Message: pe.GetMessage(), Field: pe.GetField()}
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("plugin %s: %w", method, ctx.Err())
	}
	if _, ok := ctx.Deadline(); ok && st.Code() == codes.DeadlineExceeded {
		// gRPC enforces the caller's deadline with its own timer, which
		// may fire a moment before the context reports it.
		return fmt.Errorf("plugin %s: %w", method, context.DeadlineExceeded)
	}
	switch st.Code() {
	case codes.Unavailable, codes.Canceled, codes.DeadlineExceeded, codes.Unauthenticated, codes.PermissionDenied:
		return fmt.Errorf("%w: %s: %w", ErrTransport, method, err)
	case codes.Unimplemented:
		return &Error{Code: CodeUnsupported, Message: fmt.Sprintf("plugin does not implement %s", method)}
	}
	return &Error{Code: CodeInternal, Message: fmt.Sprintf("%s: %s", method, st.Message())}
}
