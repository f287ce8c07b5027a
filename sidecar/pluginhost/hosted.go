package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/paysidecar/paysidecar/sdk/plugin"
)

// hostedFlow is the Flow the Manager hands out: each call goes to the
// plugin's current process, is timed, and has a broken connection turned
// into ErrUnavailable.
type hostedFlow struct {
	m    *Manager
	inst *instance
}

var _ plugin.Flow = (*hostedFlow)(nil)

// call runs fn against the current process of h's plugin.
func call[T any](ctx context.Context, h *hostedFlow, method string, fn func(context.Context, plugin.Flow) (T, error)) (T, error) {
	var zero T
	name := h.inst.cfg.Name
	f, err := h.inst.current()
	if err != nil {
		h.m.metrics.calls.WithLabelValues(name, method, "unavailable").Observe(0)
		return zero, err
	}
	start := time.Now()
	out, err := fn(ctx, f)
	outcome := "ok"
	switch {
	case err == nil:
	case errors.Is(err, plugin.ErrTransport):
		outcome = "unavailable"
		h.inst.requestCheck()
		err = fmt.Errorf("%w: plugin %s %s: %w", ErrUnavailable, name, method, err)
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		outcome = "canceled"
		err = fmt.Errorf("plugin %s %s: %w", name, method, err)
	default:
		outcome = outcomeOf(err)
		err = fmt.Errorf("plugin %s %s: %w", name, method, err)
	}
	h.m.metrics.calls.WithLabelValues(name, method, outcome).Observe(time.Since(start).Seconds())
	if err != nil {
		return zero, err
	}
	return out, nil
}

// Info implements plugin.Flow on the plugin's current process.
func (h *hostedFlow) Info(ctx context.Context) (plugin.Info, error) {
	return call(ctx, h, "Info", func(ctx context.Context, f plugin.Flow) (plugin.Info, error) { return f.Info(ctx) })
}

// Configure is refused: a plugin's settings come from the Manager's
// configuration, which is applied at every start.
func (h *hostedFlow) Configure(context.Context, plugin.Config) error {
	return &plugin.Error{Code: plugin.CodeUnsupported, Message: "plugins are configured by the plugin manager only"}
}

// ShapeOrder implements plugin.Flow on the plugin's current process.
// It refuses an answer whose trade type differs from the one the plugin
// declared in its Info, so a plugin cannot order another kind of trade
// than the one it was configured for.
func (h *hostedFlow) ShapeOrder(ctx context.Context, in plugin.OrderInput) (plugin.OrderShape, error) {
	return call(ctx, h, "ShapeOrder", func(ctx context.Context, f plugin.Flow) (plugin.OrderShape, error) {
		out, err := f.ShapeOrder(ctx, in)
		if err != nil {
			return out, err
		}
		h.inst.mu.RLock()
		declared := h.inst.info.TradeType
		h.inst.mu.RUnlock()
		if out.TradeType != declared {
			return plugin.OrderShape{}, plugin.Errorf(plugin.CodeInternal, "", "plugin answered trade type %q but declares %q", out.TradeType, declared)
		}
		return out, nil
	})
}

// PayParams implements plugin.Flow on the plugin's current process.
func (h *hostedFlow) PayParams(ctx context.Context, in plugin.PayParamsInput) (plugin.PayParams, error) {
	return call(ctx, h, "PayParams", func(ctx context.Context, f plugin.Flow) (plugin.PayParams, error) {
		return f.PayParams(ctx, in)
	})
}

// Check implements plugin.Flow on the plugin's current process.
func (h *hostedFlow) Check(ctx context.Context) error {
	_, err := call(ctx, h, "Check", func(ctx context.Context, f plugin.Flow) (struct{}, error) {
		return struct{}{}, f.Check(ctx)
	})
	return err
}

// AuthorizeURL implements plugin.Flow on the plugin's current process.
func (h *hostedFlow) AuthorizeURL(ctx context.Context, in plugin.AuthorizeInput) (string, error) {
	return call(ctx, h, "AuthorizeURL", func(ctx context.Context, f plugin.Flow) (string, error) {
		return f.AuthorizeURL(ctx, in)
	})
}

// ExchangeCode implements plugin.Flow on the plugin's current process.
func (h *hostedFlow) ExchangeCode(ctx context.Context, in plugin.ExchangeInput) (plugin.Identity, error) {
	return call(ctx, h, "ExchangeCode", func(ctx context.Context, f plugin.Flow) (plugin.Identity, error) {
		return f.ExchangeCode(ctx, in)
	})
}

// outcomeOf is the metric label of a plugin's error: its code when it is
// one of the contract's, "other" for anything a plugin made up, so that a
// plugin cannot grow the metric's label set.
func outcomeOf(err error) string {
	switch code := plugin.ErrorCode(err); code {
	case plugin.CodeInvalidRequest, plugin.CodeInvalidBuyer, plugin.CodeUnsupported, plugin.CodeCodeInvalid,
		plugin.CodeCodeExchangeFailed, plugin.CodeChannelUnavailable, plugin.CodeInternal:
		return code
	default:
		return "other"
	}
}

// LaunchLinks implements plugin.Flow on the plugin's current process.
func (h *hostedFlow) LaunchLinks(ctx context.Context, in plugin.LaunchInput) (plugin.LaunchLinks, error) {
	return call(ctx, h, "LaunchLinks", func(ctx context.Context, f plugin.Flow) (plugin.LaunchLinks, error) {
		return f.LaunchLinks(ctx, in)
	})
}
