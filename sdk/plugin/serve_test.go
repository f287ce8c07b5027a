package plugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/plugin/hosttrace"
)

// Plugin binaries built by TestMain: the mock flow, a plugin of contract
// version 1 only, and one of a version no host knows.
var mockBinary, mockV1Binary, futureBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sdkplugin-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mockBinary = filepath.Join(dir, "mockflow")
	mockV1Binary = filepath.Join(dir, "mockv1")
	futureBinary = filepath.Join(dir, "future")
	for bin, pkg := range map[string]string{
		mockBinary:   "github.com/paysidecar/paysidecar/sdk/plugin/mockflow/cmd/mockflow",
		mockV1Binary: "github.com/paysidecar/paysidecar/sdk/plugin/internal/testplugins/mockv1",
		futureBinary: "github.com/paysidecar/paysidecar/sdk/plugin/internal/testplugins/future",
	} {
		build := exec.Command("go", "build", "-o", bin, pkg)
		// Plugins are built static, as the sidecar's Makefile builds them.
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", pkg, err)
			_ = os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left running:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of loggers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newClient(t *testing.T, bin string, versions map[int]goplugin.PluginSet, logOut *syncBuffer) *goplugin.Client {
	t.Helper()
	c := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  plugin.Handshake(),
		VersionedPlugins: versions,
		Cmd:              exec.Command(bin),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		GRPCDialOptions:  plugin.GRPCDialOptions(nil),
		Logger:           hclog.New(&hclog.LoggerOptions{Output: logOut, JSONFormat: true, Level: hclog.Debug}),
		StartTimeout:     20 * time.Second,
	})
	t.Cleanup(c.Kill)
	return c
}

// TestServeOverGoPlugin launches the mock flow binary the way the host
// does (handshake, AutoMTLS, gRPC only) and calls it.
func TestServeOverGoPlugin(t *testing.T) {
	logs := &syncBuffer{}
	c := newClient(t, mockBinary, plugin.ClientPlugins(), logs)
	rpc, err := c.Client()
	if err != nil {
		t.Fatalf("start plugin: %v", err)
	}
	if c.NegotiatedVersion() != plugin.ProtocolVersion {
		t.Errorf("negotiated version %d", c.NegotiatedVersion())
	}
	raw, err := rpc.Dispense(plugin.PluginName)
	if err != nil {
		t.Fatalf("dispense: %v", err)
	}
	f, ok := raw.(plugin.Flow)
	if !ok {
		t.Fatalf("dispensed %T, not a plugin.Flow", raw)
	}
	info, err := f.Info(t.Context())
	if err != nil || info.Name != "mock" {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	if _, err := plugin.Configure(t.Context(), f, map[string]string{"label": "from-host"}, plugin.Config{APIVersion: c.NegotiatedVersion()}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	shape, err := f.ShapeOrder(t.Context(), plugin.OrderInput{PaymentID: "p1"})
	if err != nil {
		t.Fatalf("ShapeOrder: %v", err)
	}
	if shape.Fields["label"] != "from-host" || shape.Fields["pid"] == fmt.Sprint(os.Getpid()) || shape.Fields["api_version"] != "2" {
		t.Errorf("ShapeOrder fields = %v; want the configured label from another process", shape.Fields)
	}
	if _, err := f.ExchangeCode(t.Context(), plugin.ExchangeInput{Code: "invalid"}); plugin.ErrorCode(err) != plugin.CodeCodeInvalid {
		t.Errorf("ExchangeCode(invalid) error = %v, want code_invalid", err)
	}

	// A plugin log line arrives in the host's logger as a structured
	// entry with its level, message and attributes.
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := f.ShapeOrder(ctx, plugin.OrderInput{PaymentID: "p-blocked", Metadata: map[string]string{"mock.block": "true"}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("blocked call error = %v", err)
	}
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(logs.String(), "mock call blocked") })
	var entry map[string]any
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "mock call blocked") {
			if err := json.Unmarshal([]byte(line), &entry); err != nil {
				t.Fatalf("host log line %q: %v", line, err)
			}
		}
	}
	if entry["@level"] != "info" || entry["payment_id"] != "p-blocked" {
		t.Errorf("bridged entry = %v", entry)
	}
}

// TestServeRefusesOtherVersions checks that a host speaking only another
// contract version is refused at start with a clear error.
func TestServeRefusesOtherVersions(t *testing.T) {
	c := newClient(t, mockBinary, map[int]goplugin.PluginSet{plugin.ProtocolVersion + 1: {plugin.PluginName: &plugin.GRPCPlugin{}}}, &syncBuffer{})
	_, err := c.Client()
	if err == nil || !strings.Contains(err.Error(), "incompatible API version") {
		t.Fatalf("start error = %v, want an incompatible version error", err)
	}
}

// TestVersionNegotiation starts real plugin processes of each contract
// version against a host that speaks versions 1 and 2: the highest version
// both speak is agreed, a version 1 plugin works through the same Go API,
// and a plugin speaking only a version the host does not know is refused.
func TestVersionNegotiation(t *testing.T) {
	cases := []struct {
		name    string
		bin     string
		version int
		flow    string
	}{
		{"v2 plugin", mockBinary, 2, "mock"},
		{"v1 plugin", mockV1Binary, 1, "mock-v1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			client := newClient(t, c.bin, plugin.ClientPlugins(), &syncBuffer{})
			rpc, err := client.Client()
			if err != nil {
				t.Fatalf("start: %v", err)
			}
			if client.NegotiatedVersion() != c.version {
				t.Fatalf("negotiated version %d, want %d", client.NegotiatedVersion(), c.version)
			}
			raw, err := rpc.Dispense(plugin.PluginName)
			if err != nil {
				t.Fatal(err)
			}
			f := raw.(plugin.Flow)
			info, err := plugin.Configure(t.Context(), f, map[string]string{"label": "negotiated"}, plugin.Config{APIVersion: client.NegotiatedVersion()})
			if err != nil || info.Name != c.flow || !slices.Contains(info.APIVersions, c.version) {
				t.Fatalf("Configure: info %+v, %v", info, err)
			}
			s, err := f.ShapeOrder(t.Context(), plugin.OrderInput{PaymentID: "p", Buyer: plugin.Buyer{OpenID: "o-neg"}})
			if err != nil || s.Fields["label"] != "negotiated" || s.TradeType != "T_JSAPI" {
				t.Fatalf("ShapeOrder = %+v, %v", s, err)
			}
			pp, err := f.PayParams(t.Context(), plugin.PayParamsInput{PaymentID: "p", Upstream: map[string]string{"qr_code": "https://x"}})
			if err != nil || !strings.Contains(string(pp.JSON), "https://x") {
				t.Fatalf("PayParams = %s, %v", pp.JSON, err)
			}
			if err := f.Check(t.Context()); err != nil {
				t.Errorf("Check: %v", err)
			}
			if _, err := plugin.Configure(t.Context(), f, map[string]string{"labl": "typo"}, plugin.Config{}); !strings.Contains(fmt.Sprint(err), "labl") {
				t.Errorf("unknown setting: %v", err)
			}
		})
	}

	t.Run("v1 plugin without optional methods", func(t *testing.T) {
		client := newClient(t, mockV1Binary, plugin.ClientPlugins(), &syncBuffer{})
		rpc, err := client.Client()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := rpc.Dispense(plugin.PluginName)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.(plugin.Flow).AuthorizeURL(t.Context(), plugin.AuthorizeInput{}); plugin.ErrorCode(err) != plugin.CodeUnsupported {
			t.Errorf("AuthorizeURL of a v1 plugin without it: %v", err)
		}
	})

	t.Run("future plugin", func(t *testing.T) {
		client := newClient(t, futureBinary, plugin.ClientPlugins(), &syncBuffer{})
		_, err := client.Client()
		if err == nil || !strings.Contains(err.Error(), "incompatible API version") || !strings.Contains(err.Error(), "99") {
			t.Fatalf("start error = %v, want an incompatible version error naming version 99", err)
		}
	})
}

// TestServeWithoutHost checks that the binary started by hand explains
// itself and exits with status 1.
func TestServeWithoutHost(t *testing.T) {
	cmd := exec.CommandContext(t.Context(), mockBinary)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("run without host: %v", err)
	}
	if !strings.Contains(stderr.String(), "This binary is a plugin") {
		t.Errorf("stderr = %q", stderr.String())
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// spanHost is a host's services that take the plugin's spans, into a
// recorder, and nothing else.
type spanHost struct {
	*hosttrace.Receiver
}

func (spanHost) Sign(context.Context, string, string, []byte) ([]byte, error) {
	return nil, &plugin.Error{Code: plugin.CodeUnsupported, Message: "no keys"}
}

func (spanHost) Verify(context.Context, string, string, []byte, []byte) error {
	return &plugin.Error{Code: plugin.CodeUnsupported, Message: "no keys"}
}

func (spanHost) Log(context.Context, slog.Level, string, ...slog.Attr) error { return nil }

// TestSpansThroughTheHost runs the mock flow, which exports its spans
// through its host (package hosttrace), beside a host that takes them: the
// span of a call in a trace the host samples arrives at the host with the
// plugin's service name, in the host's trace, as the child of the host's
// span; a call in a trace the host does not sample sends nothing.
func TestSpansThroughTheHost(t *testing.T) {
	c := newClient(t, mockBinary, plugin.ClientPlugins(), &syncBuffer{})
	rpc, err := c.Client()
	if err != nil {
		t.Fatalf("start plugin: %v", err)
	}
	raw, err := rpc.Dispense(plugin.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	f := raw.(plugin.Flow)
	rec := tracetest.NewSpanRecorder()
	if _, err := plugin.Configure(t.Context(), f, map[string]string{"label": "spans"}, plugin.Config{APIVersion: c.NegotiatedVersion(), Host: spanHost{hosttrace.NewReceiver(rec)}}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	pluginSpan := func(traceID trace.TraceID) sdktrace.ReadOnlySpan {
		for _, s := range rec.Ended() {
			if s.SpanContext().TraceID() == traceID && s.Name() == "paysidecar.flow.v2.FlowService/ShapeOrder" {
				return s
			}
		}
		return nil
	}

	quietCtx, quiet := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample())).Tracer("test").Start(t.Context(), "quiet")
	if _, err := f.ShapeOrder(quietCtx, plugin.OrderInput{PaymentID: "p-quiet"}); err != nil {
		t.Fatal(err)
	}
	quiet.End()
	ctx, root := sdktrace.NewTracerProvider().Tracer("test").Start(t.Context(), "POST /v1/payments")
	if _, err := f.ShapeOrder(ctx, plugin.OrderInput{PaymentID: "p-traced"}); err != nil {
		t.Fatal(err)
	}
	root.End()
	waitFor(t, 10*time.Second, func() bool { return pluginSpan(root.SpanContext().TraceID()) != nil })
	s := pluginSpan(root.SpanContext().TraceID())
	if s.Parent().SpanID() != root.SpanContext().SpanID() || !s.Parent().IsRemote() || s.SpanKind() != trace.SpanKindServer {
		t.Errorf("plugin span: parent %v (remote %v), kind %v; want the host's span %v, remote, server", s.Parent().SpanID(), s.Parent().IsRemote(), s.SpanKind(), root.SpanContext().SpanID())
	}
	if v, _ := s.Resource().Set().Value("service.name"); v.AsString() != "paysidecar-plugin-mock" {
		t.Errorf("plugin span's service.name = %q", v.AsString())
	}
	// The plugin sends its spans in the order they ended, so the unsampled
	// call's span would have come first.
	if pluginSpan(quiet.SpanContext().TraceID()) != nil {
		t.Errorf("the span of an unsampled trace reached the host")
	}
}
