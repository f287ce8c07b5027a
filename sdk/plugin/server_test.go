package plugin

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv2"
)

// schemaFlow is a flow with a schema that records what Configure got.
type schemaFlow struct {
	UnsupportedFlow
	got *Config
}

func (f schemaFlow) Info(context.Context) (Info, error) {
	return Info{Name: "schema", Settings: Schema{
		{Key: "app_id", Required: true},
		{Key: "app_secret", Secret: true},
		{Key: "timeout", Type: TypeDuration, Default: "3s"},
	}}, nil
}

func (f schemaFlow) Configure(_ context.Context, c Config) error {
	*f.got = c
	return nil
}

func (schemaFlow) ShapeOrder(context.Context, OrderInput) (OrderShape, error) {
	return OrderShape{}, nil
}

func (schemaFlow) PayParams(context.Context, PayParamsInput) (PayParams, error) {
	return PayParams{}, nil
}

// TestServerEnforcesTheSchema sends the plugin's server settings no host
// built with this SDK would send: the plugin refuses them itself, before
// the flow sees them, and fills defaults in for what it accepts.
func TestServerEnforcesTheSchema(t *testing.T) {
	var got Config
	s := &server{impl: schemaFlow{got: &got}, logger: slog.New(slog.DiscardHandler)}
	_, err := s.Configure(t.Context(), &flowv2.ConfigureRequest{Settings: map[string]string{"app_secret": "not-for-logs", "timeout": "soon", "extra": "1"}})
	err = fromStatus(t.Context(), "Configure", err)
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != CodeInvalidRequest || pe.Field != "app_id" {
		t.Fatalf("error = %v, want invalid_request naming app_id first", err)
	}
	for _, want := range []string{"app_id: required", "extra: unknown setting", "timeout: must be a positive duration"} {
		if !strings.Contains(pe.Message, want) {
			t.Errorf("message %q lacks %q", pe.Message, want)
		}
	}
	if strings.Contains(pe.Message, "not-for-logs") || got.Settings.Has("app_secret") {
		t.Errorf("refused settings reached the flow or the message: %q", pe.Message)
	}
	if _, err := s.Configure(t.Context(), &flowv2.ConfigureRequest{Settings: map[string]string{"app_id": "wx1"}, ApiVersion: 2}); err != nil {
		t.Fatal(err)
	}
	if got.Settings.Get("app_id") != "wx1" || got.Settings.Duration("timeout").String() != "3s" || got.APIVersion != 2 {
		t.Errorf("configured with %v, version %d", got.Settings, got.APIVersion)
	}
	if _, ok := got.Host.(noHost); !ok || got.Logger == nil {
		t.Errorf("without host services the flow got host %T and logger %v", got.Host, got.Logger)
	}
	if err := got.Host.Verify(t.Context(), "k", AlgRSASHA256, nil, nil); ErrorCode(err) != CodeUnsupported {
		t.Errorf("a host call without host services: %v", err)
	}
}
