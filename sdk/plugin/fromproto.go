package plugin

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv1"
	"github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv2"
)

// This file holds every conversion from the version 2 proto contract to
// the Go API, and the error boundary of both versions. toproto.go holds
// the other direction; legacy_v1.go holds the conversions of version 1.

func infoFromProto(p *flowv2.Info) Info {
	if p == nil {
		return Info{}
	}
	out := Info{Name: p.GetName(), Version: p.GetVersion(), TradeType: p.GetTradeType(), Buyer: BuyerRule(p.GetBuyer())}
	for _, c := range p.GetCapabilities() {
		out.Capabilities = append(out.Capabilities, Capability(c))
	}
	for _, v := range p.GetApiVersions() {
		out.APIVersions = append(out.APIVersions, int(v))
	}
	for _, s := range p.GetSettings() {
		out.Settings = append(out.Settings, SettingSpec{
			Key:            s.GetKey(),
			Type:           SettingType(s.GetType()),
			Required:       s.GetRequired(),
			Secret:         s.GetSecret(),
			Default:        s.GetDefaultValue(),
			SandboxDefault: s.GetSandboxDefault(),
			PerMerchant:    s.GetPerMerchant(),
			Description:    s.GetDescription(),
			Enum:           s.GetEnum(),
		})
	}
	return out
}

func attrsFromProto(p []*flowv2.Attr) []slog.Attr {
	out := make([]slog.Attr, 0, len(p))
	for _, a := range p {
		out = append(out, slog.String(a.GetKey(), a.GetValue()))
	}
	return out
}

func environmentFromProto(p *flowv2.Environment) Environment {
	return Environment{Sandbox: p.GetSandbox(), SandboxURL: p.GetSandboxUrl()}
}

func buyerFromProto(p *flowv2.Buyer) Buyer {
	return Buyer{OpenID: p.GetOpenid(), AppID: p.GetAppId(), Code: p.GetCode()}
}

func identityFromProto(p *flowv2.Identity) Identity {
	return Identity{OpenID: p.GetOpenid(), UnionID: p.GetUnionid(), AppID: p.GetAppId()}
}

func orderInputFromProto(p *flowv2.ShapeOrderRequest) OrderInput {
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

func orderShapeFromProto(p *flowv2.ShapeOrderResponse) OrderShape {
	out := OrderShape{TradeType: p.GetTradeType(), Fields: p.GetFields(), Buyer: identityFromProto(p.GetBuyer())}
	if r := p.GetPayParams(); r != nil {
		out.PayParams = &PayRecipe{Kind: r.GetKind(), Root: payValueFromProto(r.GetRoot(), 0)}
	}
	return out
}

// payValueFromProto converts a recipe's value, stopping deeper than any
// recipe Check accepts (such a recipe then fails Check).
func payValueFromProto(p *flowv2.PayValue, depth int) PayValue {
	if depth > maxRecipeDepth {
		return PayValue{Op: "too_deep"}
	}
	out := PayValue{Op: PayOp(p.GetOp()), Field: p.GetField(), Prefix: p.GetPrefix(), Literal: p.GetLiteral()}
	for _, m := range p.GetMembers() {
		out.Members = append(out.Members, PayMember{Name: m.GetName(), Value: payValueFromProto(m.GetValue(), depth+1)})
	}
	return out
}

func payParamsInputFromProto(p *flowv2.PayParamsRequest) PayParamsInput {
	return PayParamsInput{
		PaymentID:  p.GetPaymentId(),
		OutTradeNo: p.GetOutTradeNo(),
		TradeType:  p.GetTradeType(),
		Upstream:   p.GetUpstream(),
		MerchantID: p.GetMerchantId(),
	}
}

func payParamsFromProto(p *flowv2.PayParamsResponse) PayParams {
	return PayParams{Kind: p.GetKind(), JSON: p.GetJson()}
}

func authorizeInputFromProto(p *flowv2.AuthorizeURLRequest) AuthorizeInput {
	return AuthorizeInput{RedirectURI: p.GetRedirectUri(), Scope: p.GetScope(), State: p.GetState(), MerchantID: p.GetMerchantId()}
}

func exchangeInputFromProto(p *flowv2.ExchangeCodeRequest) ExchangeInput {
	return ExchangeInput{Code: p.GetCode(), AppID: p.GetAppId(), MerchantID: p.GetMerchantId()}
}

func timeOrZero(unix int64) time.Time {
	if unix == 0 {
		return time.Time{}
	}
	return time.Unix(unix, 0).UTC()
}

func launchInputFromProto(p *flowv2.LaunchLinksRequest) LaunchInput {
	return LaunchInput{
		MerchantID: p.GetMerchantId(), CheckoutID: p.GetCheckoutId(), OutTradeNo: p.GetOutTradeNo(),
		ExpiresAt: timeOrZero(p.GetExpiresAt()), Query: p.GetQuery(),
	}
}

func launchLinksFromProto(p *flowv2.LaunchLinksResponse) LaunchLinks {
	out := LaunchLinks{
		URLScheme: p.GetUrlScheme(), URLSchemeExpiresAt: timeOrZero(p.GetUrlSchemeExpiresAt()),
		URLLink: p.GetUrlLink(), URLLinkExpiresAt: timeOrZero(p.GetUrlLinkExpiresAt()),
		PlainScheme: p.GetPlainScheme(),
	}
	if a := p.GetApp(); a != nil {
		out.App = &AppLaunch{UserName: a.GetUserName(), Path: a.GetPath(), MiniProgramType: int(a.GetMiniProgramType())}
	}
	return out
}

// fromStatus turns the error of a gRPC call of either contract version
// into the Go API's error:
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
		switch pe := d.(type) {
		case *flowv2.Error:
			return &Error{Code: pe.GetCode(), Message: pe.GetMessage(), Field: pe.GetField()}
		case *flowv1.Error:
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
