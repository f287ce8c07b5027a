package plugin

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv2"
)

// This file holds every conversion from the Go API to the version 2 proto
// contract. fromproto.go holds the other direction; legacy_v1.go holds the
// conversions of version 1.

func infoToProto(i Info) *flowv2.Info {
	out := &flowv2.Info{
		Name:      i.Name,
		Version:   i.Version,
		TradeType: i.TradeType,
		Buyer:     string(i.Buyer),
	}
	for _, c := range i.Capabilities {
		out.Capabilities = append(out.Capabilities, string(c))
	}
	for _, v := range i.APIVersions {
		out.ApiVersions = append(out.ApiVersions, int32(v))
	}
	for _, s := range i.Settings {
		out.Settings = append(out.Settings, &flowv2.SettingSpec{
			Key:            s.Key,
			Type:           string(s.Type),
			Required:       s.Required,
			Secret:         s.Secret,
			DefaultValue:   s.Default,
			SandboxDefault: s.SandboxDefault,
			Description:    s.Description,
			Enum:           s.Enum,
			PerMerchant:    s.PerMerchant,
		})
	}
	return out
}

func environmentToProto(e Environment) *flowv2.Environment {
	return &flowv2.Environment{Sandbox: e.Sandbox, SandboxUrl: e.SandboxURL}
}

func buyerToProto(b Buyer) *flowv2.Buyer {
	return &flowv2.Buyer{Openid: b.OpenID, AppId: b.AppID, Code: b.Code}
}

func identityToProto(id Identity) *flowv2.Identity {
	return &flowv2.Identity{Openid: id.OpenID, Unionid: id.UnionID, AppId: id.AppID}
}

func orderInputToProto(in OrderInput) *flowv2.ShapeOrderRequest {
	return &flowv2.ShapeOrderRequest{
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

func orderShapeToProto(s OrderShape) *flowv2.ShapeOrderResponse {
	out := &flowv2.ShapeOrderResponse{TradeType: s.TradeType, Fields: s.Fields}
	if !s.Buyer.IsZero() {
		out.Buyer = identityToProto(s.Buyer)
	}
	if s.PayParams != nil {
		out.PayParams = &flowv2.PayRecipe{Kind: s.PayParams.Kind, Root: payValueToProto(s.PayParams.Root)}
	}
	return out
}

func payValueToProto(v PayValue) *flowv2.PayValue {
	out := &flowv2.PayValue{Op: string(v.Op), Field: v.Field, Prefix: v.Prefix, Literal: v.Literal}
	for _, m := range v.Members {
		out.Members = append(out.Members, &flowv2.PayMember{Name: m.Name, Value: payValueToProto(m.Value)})
	}
	return out
}

func payParamsInputToProto(in PayParamsInput) *flowv2.PayParamsRequest {
	return &flowv2.PayParamsRequest{
		PaymentId:  in.PaymentID,
		OutTradeNo: in.OutTradeNo,
		TradeType:  in.TradeType,
		Upstream:   in.Upstream,
		MerchantId: in.MerchantID,
	}
}

func payParamsToProto(p PayParams) *flowv2.PayParamsResponse {
	return &flowv2.PayParamsResponse{Kind: p.Kind, Json: p.JSON}
}

func authorizeInputToProto(in AuthorizeInput) *flowv2.AuthorizeURLRequest {
	return &flowv2.AuthorizeURLRequest{RedirectUri: in.RedirectURI, Scope: in.Scope, State: in.State, MerchantId: in.MerchantID}
}

func exchangeInputToProto(in ExchangeInput) *flowv2.ExchangeCodeRequest {
	return &flowv2.ExchangeCodeRequest{Code: in.Code, AppId: in.AppID, MerchantId: in.MerchantID}
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func launchInputToProto(in LaunchInput) *flowv2.LaunchLinksRequest {
	return &flowv2.LaunchLinksRequest{
		MerchantId: in.MerchantID, CheckoutId: in.CheckoutID, OutTradeNo: in.OutTradeNo,
		ExpiresAt: unixOrZero(in.ExpiresAt), Query: in.Query,
	}
}

func launchLinksToProto(l LaunchLinks) *flowv2.LaunchLinksResponse {
	out := &flowv2.LaunchLinksResponse{
		UrlScheme: l.URLScheme, UrlSchemeExpiresAt: unixOrZero(l.URLSchemeExpiresAt),
		UrlLink: l.URLLink, UrlLinkExpiresAt: unixOrZero(l.URLLinkExpiresAt),
		PlainScheme: l.PlainScheme,
	}
	if l.App != nil {
		out.App = &flowv2.AppLaunch{UserName: l.App.UserName, Path: l.App.Path, MiniProgramType: int32(l.App.MiniProgramType)}
	}
	return out
}

// merchantsToProto sends each merchant's settings as what differs from
// the flow's own settings: the merchant's per-merchant values, which the
// plugin applies over the flow's settings again.
func merchantsToProto(base Settings, m map[string]Settings) map[string]*flowv2.MerchantSettings {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]*flowv2.MerchantSettings, len(m))
	for id, s := range m {
		own := map[string]string{}
		for k, v := range s.values {
			if base.values[k] != v {
				own[k] = v
			}
		}
		out[id] = &flowv2.MerchantSettings{Settings: own}
	}
	return out
}

func attrsToProto(attrs []slog.Attr) []*flowv2.Attr {
	out := make([]*flowv2.Attr, 0, len(attrs))
	for _, a := range attrs {
		out = append(out, &flowv2.Attr{Key: a.Key, Value: a.Value.Resolve().String()})
	}
	return out
}

// grpcCode is the gRPC status code an *Error travels with. The code is
// only a coarse hint for gRPC tooling; the receiver reads the Error detail.
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

// toStatus turns an error into a gRPC status error that carries an Error
// detail. A *SettingsError becomes CodeInvalidRequest naming its first
// key and listing every problem. Context errors travel as plain Canceled
// or DeadlineExceeded statuses; any other error becomes CodeInternal.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	var pe *Error
	var se *SettingsError
	switch {
	case errors.As(err, &pe):
	case errors.As(err, &se) && len(se.Problems) > 0:
		pe = &Error{Code: CodeInvalidRequest, Field: se.Problems[0].Key, Message: se.Error()}
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	default:
		pe = &Error{Code: CodeInternal, Message: err.Error()}
	}
	st := status.New(grpcCode(pe.Code), pe.Message)
	withDetail, derr := st.WithDetails(&flowv2.Error{Code: pe.Code, Message: pe.Message, Field: pe.Field})
	if derr != nil {
		// Only a detail that cannot be marshalled fails here; the plain
		// status still says what went wrong.
		return st.Err()
	}
	return withDetail.Err()
}
