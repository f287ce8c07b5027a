package pluginhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/paysidecar/paysidecar/sdk/plugin"
)

// Plugin binaries built once by TestMain: the mock flow, a real flow, a
// plugin of contract version 1 and one of a version no host knows.
var (
	mockBin   string
	jsapiBin  string
	mockV1Bin string
	futureBin string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pluginhost-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mockBin = filepath.Join(dir, "mockflow")
	jsapiBin = filepath.Join(dir, "wechat-jsapi")
	mockV1Bin = filepath.Join(dir, "mockv1")
	futureBin = filepath.Join(dir, "future")
	for bin, pkg := range map[string]string{
		mockBin:   "github.com/paysidecar/paysidecar/sdk/plugin/mockflow/cmd/mockflow",
		jsapiBin:  "github.com/paysidecar/paysidecar/plugins/wechat-jsapi",
		mockV1Bin: "github.com/paysidecar/paysidecar/sdk/plugin/internal/testplugins/mockv1",
		futureBin: "github.com/paysidecar/paysidecar/sdk/plugin/internal/testplugins/future",
	} {
		build := exec.Command("go", "build", "-o", bin, pkg)
		// Plugins are built static, as the Makefile builds them.
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

// logBuffer collects the host's JSON log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// entries returns the log entries whose message is msg.
func (b *logBuffer) entries(msg string) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(b.buf.String(), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil && e["msg"] == msg {
			out = append(out, e)
		}
	}
	return out
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type harness struct {
	m    *Manager
	logs *logBuffer
	reg  *prometheus.Registry
}

// fastOptions make restarts quick enough for tests while leaving a
// plugin visibly down for a moment.
func fastOptions() []Option {
	return []Option{
		WithRestartBackoff(300*time.Millisecond, time.Second),
		WithStartTimeout(20 * time.Second),
	}
}

func newHarness(t *testing.T, cfgs []PluginConfig, opts ...Option) *harness {
	t.Helper()
	logs := &logBuffer{}
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := New(cfgs, logger, reg, append(fastOptions(), opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("host log:\n%s", logs.String())
		}
	})
	return &harness{m: m, logs: logs, reg: reg}
}

func sha256Hex(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func mockConfig(t *testing.T, label string) PluginConfig {
	return PluginConfig{Name: "mock", Path: mockBin, SHA256: sha256Hex(t, mockBin), Settings: map[string]string{"label": label}}
}

// waitFor polls cond every few milliseconds until it holds, failing the
// test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *harness) pid(name string) int {
	inst := h.m.byName[name]
	inst.mu.RLock()
	defer inst.mu.RUnlock()
	return inst.pid
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func shape(t *testing.T, f plugin.Flow, ctx context.Context, md map[string]string) plugin.OrderShape {
	t.Helper()
	s, err := f.ShapeOrder(ctx, plugin.OrderInput{PaymentID: "pay_1", Metadata: md})
	if err != nil {
		t.Fatalf("ShapeOrder: %v", err)
	}
	return s
}

func TestStartAndCall(t *testing.T) {
	h := newHarness(t, []PluginConfig{
		mockConfig(t, "first"),
		{Name: "wechat-jsapi", Path: jsapiBin, Settings: map[string]string{"app_id": "wx520c15f417810387", "app_secret": "topsecret-value-42"}},
	})
	if h.m.Ready() {
		t.Errorf("Ready before Start")
	}
	if _, err := h.m.Flow("mock"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Flow before Start: %v, want ErrUnavailable", err)
	}
	if err := h.m.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := h.m.Start(t.Context()); err == nil {
		t.Errorf("second Start succeeded")
	}
	if !h.m.Ready() {
		t.Errorf("not Ready after Start")
	}

	var names []string
	for _, info := range h.m.Infos() {
		names = append(names, info.Name+"/"+info.TradeType)
	}
	if strings.Join(names, ",") != "mock/T_JSAPI,wechat-jsapi/T_JSAPI" {
		t.Errorf("Infos = %v", names)
	}

	mock, err := h.m.Flow("mock")
	if err != nil {
		t.Fatal(err)
	}
	s := shape(t, mock, t.Context(), nil)
	if s.Fields["label"] != "first" {
		t.Errorf("the plugin did not get its settings: %v", s.Fields)
	}
	if s.Fields["pid"] != strconv.Itoa(h.pid("mock")) || s.Fields["pid"] == strconv.Itoa(os.Getpid()) {
		t.Errorf("answer from pid %s, plugin process is %d", s.Fields["pid"], h.pid("mock"))
	}

	jsapi, err := h.m.Flow("wechat-jsapi")
	if err != nil {
		t.Fatal(err)
	}
	u, err := jsapi.AuthorizeURL(t.Context(), plugin.AuthorizeInput{RedirectURI: "https://shop.example/cb", State: "s1"})
	want := "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx520c15f417810387&redirect_uri=https%3A%2F%2Fshop.example%2Fcb&response_type=code&scope=snsapi_base&state=s1#wechat_redirect"
	if err != nil || u != want {
		t.Errorf("AuthorizeURL = %q, %v", u, err)
	}
	if err := jsapi.Configure(t.Context(), plugin.Config{}); plugin.ErrorCode(err) != plugin.CodeUnsupported {
		t.Errorf("Configure through the manager: %v, want unsupported", err)
	}

	if _, err := h.m.Flow("alipay-native"); !errors.Is(err, ErrUnknownFlow) || errors.Is(err, ErrUnavailable) {
		t.Errorf("Flow(unknown) error = %v, want ErrUnknownFlow", err)
	}
	for _, name := range []string{"mock", "wechat-jsapi"} {
		if v := testutil.ToFloat64(h.m.metrics.up.WithLabelValues(name)); v != 1 {
			t.Errorf("paysidecar_plugin_up{plugin=%q} = %v", name, v)
		}
		if v := testutil.ToFloat64(h.m.metrics.restarts.WithLabelValues(name)); v != 0 {
			t.Errorf("paysidecar_plugin_restarts_total{plugin=%q} = %v", name, v)
		}
	}

	// The checksum of the binary configured without one is logged, and
	// the plugin's own log lines arrive under its name.
	computed := h.logs.entries("plugin checksum computed from the binary; pin it in the configuration")
	if len(computed) != 1 || computed[0]["plugin"] != "wechat-jsapi" || computed[0]["sha256"] != sha256Hex(t, jsapiBin) {
		t.Errorf("checksum log = %v", computed)
	}
	configured := h.logs.entries("configured")
	if len(configured) != 1 || configured[0]["plugin"] != "wechat-jsapi" || configured[0]["settings.app_id"] != "wx520c15f417810387" ||
		configured[0]["settings.app_secret"] != "[redacted]" || configured[0]["level"] != "INFO" {
		t.Errorf("plugin log lines = %v", configured)
	}
	if strings.Contains(h.logs.String(), "topsecret-value-42") {
		t.Errorf("a plugin setting's secret value appears in the host log")
	}
}

func TestRestartAfterKill(t *testing.T) {
	h := newHarness(t, []PluginConfig{mockConfig(t, "kept-across-restarts")})
	if err := h.m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	f, err := h.m.Flow("mock")
	if err != nil {
		t.Fatal(err)
	}
	oldPID := h.pid("mock")
	if err := syscall.Kill(oldPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}

	// While the plugin is down, calls and Flow fail with ErrUnavailable
	// (or, for a moment after the kill, a call still reaches the dying
	// connection and fails the same way).
	sawDown := false
	waitFor(t, 10*time.Second, "plugin seen unavailable", func() bool {
		_, callErr := f.ShapeOrder(t.Context(), plugin.OrderInput{})
		_, flowErr := h.m.Flow("mock")
		if callErr != nil && !errors.Is(callErr, ErrUnavailable) {
			t.Fatalf("call error %v does not wrap ErrUnavailable", callErr)
		}
		sawDown = errors.Is(flowErr, ErrUnavailable) && errors.Is(callErr, ErrUnavailable)
		return sawDown
	})
	if h.m.Ready() {
		t.Errorf("Ready while a plugin is down")
	}
	if v := testutil.ToFloat64(h.m.metrics.up.WithLabelValues("mock")); v != 0 {
		t.Errorf("paysidecar_plugin_up while down = %v", v)
	}

	waitFor(t, 15*time.Second, "restart", func() bool {
		return h.m.Ready() && testutil.ToFloat64(h.m.metrics.restarts.WithLabelValues("mock")) == 1
	})
	s := shape(t, f, t.Context(), nil) // the Flow handed out before the crash works again
	newPID := h.pid("mock")
	if newPID == oldPID || s.Fields["pid"] != strconv.Itoa(newPID) {
		t.Errorf("answered by pid %s; old %d, new %d", s.Fields["pid"], oldPID, newPID)
	}
	if s.Fields["label"] != "kept-across-restarts" {
		t.Errorf("restarted plugin was not configured again: %v", s.Fields)
	}
	if v := testutil.ToFloat64(h.m.metrics.up.WithLabelValues("mock")); v != 1 {
		t.Errorf("paysidecar_plugin_up after restart = %v", v)
	}
	if len(h.logs.entries("plugin restarted")) != 1 || len(h.logs.entries("plugin down; restarting")) != 1 {
		t.Errorf("restart not logged once")
	}
	if n := testutil.CollectAndCount(h.reg, "paysidecar_plugin_restarts_total"); n != 1 {
		t.Errorf("restarts series registered: %d", n)
	}
}

// TestExitNoticedWithoutCalls kills an idle plugin: nothing calls it and
// its health check is an hour away, so only the process's exit itself can
// tell the supervisor, which restarts it.
func TestExitNoticedWithoutCalls(t *testing.T) {
	h := newHarness(t, []PluginConfig{mockConfig(t, "idle")}, WithHealthCheck(time.Hour, time.Second))
	if err := h.m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	oldPID := h.pid("mock")
	if err := syscall.Kill(oldPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "restart", func() bool {
		return testutil.ToFloat64(h.m.metrics.restarts.WithLabelValues("mock")) == 1 && h.m.Ready()
	})
	down := h.logs.entries("plugin down; restarting")
	if len(down) != 1 || down[0]["reason"] != "process exited" {
		t.Errorf("restart logged as %v, want once for the process's exit", down)
	}
	if h.pid("mock") == oldPID {
		t.Errorf("the plugin still runs as pid %d", oldPID)
	}
}

func TestInFlightCallFailsUnavailable(t *testing.T) {
	h := newHarness(t, []PluginConfig{mockConfig(t, "x")})
	if err := h.m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	f, err := h.m.Flow("mock")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := f.ShapeOrder(ctx, plugin.OrderInput{PaymentID: "pay_inflight", Metadata: map[string]string{"mock.block": "true"}})
		done <- err
	}()
	// The plugin logs when the call is inside it; its line reaches the
	// host's logger with its attributes and the plugin's name.
	waitFor(t, 10*time.Second, "call blocked in the plugin", func() bool {
		for _, e := range h.logs.entries("mock call blocked") {
			if e["plugin"] == "mock" && e["payment_id"] == "pay_inflight" {
				return true
			}
		}
		return false
	})
	if err := syscall.Kill(h.pid("mock"), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the call in flight did not return after the plugin died")
	}
	var pe *plugin.Error
	if !errors.Is(err, ErrUnavailable) || errors.As(err, &pe) || ctx.Err() != nil {
		t.Fatalf("in-flight error = %v, want ErrUnavailable only", err)
	}
	waitFor(t, 15*time.Second, "restart", func() bool {
		return h.m.Ready() && testutil.ToFloat64(h.m.metrics.restarts.WithLabelValues("mock")) == 1
	})
	shape(t, f, t.Context(), nil)
}

func TestChecksum(t *testing.T) {
	t.Run("mismatch refuses to start", func(t *testing.T) {
		cfg := mockConfig(t, "x")
		cfg.SHA256 = sha256Hex(t, jsapiBin)
		h := newHarness(t, []PluginConfig{cfg})
		err := h.m.Start(t.Context())
		if !errors.Is(err, goplugin.ErrChecksumsDoNotMatch) || !strings.Contains(err.Error(), "mock") {
			t.Fatalf("Start error = %v, want a checksum mismatch naming the plugin", err)
		}
		if h.m.Ready() || len(h.logs.entries("plugin ready")) != 0 {
			t.Errorf("a plugin with a wrong checksum was started")
		}
	})

	t.Run("a computed checksum holds for restarts", func(t *testing.T) {
		bin := filepath.Join(t.TempDir(), "mockflow")
		copyFile(t, mockBin, bin)
		h := newHarness(t, []PluginConfig{{Name: "mock", Path: bin}})
		if err := h.m.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		// The binary is replaced while the plugin runs, then it dies.
		if err := os.Remove(bin); err != nil {
			t.Fatal(err)
		}
		copyFile(t, jsapiBin, bin)
		if err := syscall.Kill(h.pid("mock"), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 15*time.Second, "refused restart", func() bool {
			for _, e := range h.logs.entries("plugin restart failed") {
				if strings.Contains(fmt.Sprint(e["error"]), goplugin.ErrChecksumsDoNotMatch.Error()) {
					return true
				}
			}
			return false
		})
		if _, err := h.m.Flow("mock"); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Flow after refused restart: %v", err)
		}
		if testutil.ToFloat64(h.m.metrics.restarts.WithLabelValues("mock")) != 0 {
			t.Errorf("a refused restart was counted")
		}
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = in.Close() }()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestStartFailures(t *testing.T) {
	cases := []struct {
		name string
		cfg  PluginConfig
		want string
	}{
		{"missing setting", PluginConfig{Name: "wechat-jsapi", Path: jsapiBin, Settings: map[string]string{"app_secret": "s"}}, "app_id"},
		{"unknown setting", PluginConfig{Name: "wechat-jsapi", Path: jsapiBin, Settings: map[string]string{"app_id": "wx1", "app_secret": "s", "appsecret": "s"}}, "appsecret"},
		{"wrong binary for the name", PluginConfig{Name: "wechat-miniapp", Path: jsapiBin}, `is the plugin "wechat-jsapi", not "wechat-miniapp"`},
		{"refused configuration", PluginConfig{Name: "mock", Path: mockBin, Settings: map[string]string{"fail_configure": "no thanks"}}, "no thanks"},
		{"no such binary", PluginConfig{Name: "mock", Path: filepath.Join(t.TempDir(), "missing")}, "missing"},
		{"not a plugin", PluginConfig{Name: "mock", Path: "/bin/true"}, "mock"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// A healthy plugin first, to see it stopped when the second fails.
			first := mockConfig(t, "x")
			if c.cfg.Name == "mock" {
				first = PluginConfig{Name: "wechat-jsapi", Path: jsapiBin, Settings: map[string]string{"app_id": "wx1", "app_secret": "s"}}
			}
			h := newHarness(t, []PluginConfig{first, c.cfg}, WithStartTimeout(5*time.Second))
			err := h.m.Start(t.Context())
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.cfg.Name) {
				t.Fatalf("Start error = %v, want one naming %s and mentioning %q", err, c.cfg.Name, c.want)
			}
			if h.m.Ready() {
				t.Errorf("Ready after a failed Start")
			}
			ready := h.logs.entries("plugin ready")
			if len(ready) != 1 || ready[0]["plugin"] != first.Name {
				t.Fatalf("plugins ready before the failure: %v", ready)
			}
			for _, e := range ready {
				pid := int(e["pid"].(float64))
				waitFor(t, 10*time.Second, "first plugin stopped", func() bool { return !alive(pid) })
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	cases := []struct {
		name string
		cfgs []PluginConfig
		opts []Option
	}{
		{"no name", []PluginConfig{{Path: mockBin}}, nil},
		{"no path", []PluginConfig{{Name: "mock"}}, nil},
		{"twice", []PluginConfig{{Name: "mock", Path: mockBin}, {Name: "mock", Path: mockBin}}, nil},
		{"bad sha256", []PluginConfig{{Name: "mock", Path: mockBin, SHA256: "abc"}}, nil},
		{"bad backoff", nil, []Option{WithRestartBackoff(time.Second, time.Millisecond)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := New(c.cfgs, nil, nil, c.opts...); err == nil {
				t.Errorf("New accepted %+v", c.cfgs)
			}
		})
	}
	reg := prometheus.NewRegistry()
	if _, err := New(nil, nil, reg); err != nil {
		t.Fatal(err)
	}
	if _, err := New(nil, nil, reg); err == nil {
		t.Errorf("a second Manager on the same registry was accepted")
	}
}

func TestTraceAndBaggageReachThePlugin(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	h := newHarness(t, []PluginConfig{mockConfig(t, "x")}, WithTracerProvider(tp))
	if err := h.m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	f, err := h.m.Flow("mock")
	if err != nil {
		t.Fatal(err)
	}
	member, _ := baggage.NewMember("request_id", "req-77")
	bag, _ := baggage.New(member)
	ctx, root := tp.Tracer("test").Start(baggage.ContextWithBaggage(t.Context(), bag), "POST /v1/payments")
	s := shape(t, f, ctx, nil)
	root.End()

	var client sdktrace.ReadOnlySpan
	waitFor(t, 5*time.Second, "client span recorded", func() bool {
		for _, sp := range rec.Ended() {
			if sp.SpanKind() == trace.SpanKindClient && sp.Parent().SpanID() == root.SpanContext().SpanID() && strings.HasSuffix(sp.Name(), "/ShapeOrder") {
				client = sp
			}
		}
		return client != nil
	})
	if client == nil {
		t.Fatalf("no client span of the call under the host's span")
	}
	if s.Fields["trace_id"] != root.SpanContext().TraceID().String() {
		t.Errorf("plugin saw trace %s, want %s", s.Fields["trace_id"], root.SpanContext().TraceID())
	}
	if s.Fields["span_id"] != client.SpanContext().SpanID().String() {
		t.Errorf("plugin's parent span is %s, want the host's client span %s", s.Fields["span_id"], client.SpanContext().SpanID())
	}
	if s.Fields["baggage"] != "request_id=req-77" {
		t.Errorf("plugin saw baggage %q", s.Fields["baggage"])
	}
}

func TestPluginErrorsAndEnvironment(t *testing.T) {
	t.Setenv("PAYSIDECAR_TEST_PRIVATE_KEY", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC")
	t.Setenv("PAYSIDECAR_TEST_PASSED", "visible")
	h := newHarness(t, []PluginConfig{mockConfig(t, "x")}, WithEnv("PAYSIDECAR_TEST_PASSED"))
	if err := h.m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	f, err := h.m.Flow("mock")
	if err != nil {
		t.Fatal(err)
	}

	_, err = f.ShapeOrder(t.Context(), plugin.OrderInput{Metadata: map[string]string{"mock.error": plugin.CodeCodeInvalid, "mock.field": "buyer.code"}})
	var pe *plugin.Error
	if !errors.As(err, &pe) || pe.Code != plugin.CodeCodeInvalid || pe.Field != "buyer.code" || errors.Is(err, ErrUnavailable) {
		t.Errorf("plugin error through the host = %v", err)
	}
	_, err = f.ShapeOrder(t.Context(), plugin.OrderInput{Metadata: map[string]string{"mock.error": "made_up_code"}})
	if plugin.ErrorCode(err) != "made_up_code" {
		t.Errorf("unknown code = %v", err)
	}
	_, err = f.ShapeOrder(t.Context(), plugin.OrderInput{Metadata: map[string]string{"mock.trade_type": "A_NATIVE"}})
	if plugin.ErrorCode(err) != plugin.CodeInternal || !strings.Contains(err.Error(), "A_NATIVE") {
		t.Errorf("shape with another trade type than declared: %v", err)
	}
	if got := sampleCount(t, h.reg, "code_invalid") + sampleCount(t, h.reg, "other"); got != 2 {
		t.Errorf("call metric samples by outcome: %v", got)
	}

	if s := shape(t, f, t.Context(), map[string]string{"mock.getenv": "PAYSIDECAR_TEST_PRIVATE_KEY"}); s.Fields["env"] != "" {
		t.Errorf("the host's environment reached the plugin")
	}
	if s := shape(t, f, t.Context(), map[string]string{"mock.getenv": "PAYSIDECAR_TEST_PASSED"}); s.Fields["env"] != "visible" {
		t.Errorf("a variable named with WithEnv did not reach the plugin: %q", s.Fields["env"])
	}
	if s := shape(t, f, t.Context(), map[string]string{"mock.getenv": "PATH"}); s.Fields["env"] != os.Getenv("PATH") {
		t.Errorf("PATH did not reach the plugin")
	}

	shape(t, f, t.Context(), map[string]string{"mock.print": "printed past the logger"})
	waitFor(t, 5*time.Second, "printed line in the host log", func() bool {
		for _, e := range h.logs.entries("printed past the logger") {
			if e["plugin"] == "mock" && e["level"] == "WARN" && e["logger"] == "stderr" {
				return true
			}
		}
		return false
	})
}

// sampleCount returns how many ShapeOrder calls the call metric recorded
// with outcome.
func sampleCount(t *testing.T, reg *prometheus.Registry, outcome string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() != "paysidecar_plugin_call_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["plugin"] == "mock" && labels["method"] == "ShapeOrder" && labels["outcome"] == outcome {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

func TestClose(t *testing.T) {
	h := newHarness(t, []PluginConfig{mockConfig(t, "x")})
	if err := h.m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	f, err := h.m.Flow("mock")
	if err != nil {
		t.Fatal(err)
	}
	pid := h.pid("mock")
	if err := h.m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	waitFor(t, 10*time.Second, "plugin process gone", func() bool { return !alive(pid) })
	if h.m.Ready() {
		t.Errorf("Ready after Close")
	}
	if _, err := h.m.Flow("mock"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Flow after Close: %v", err)
	}
	if _, err := f.ShapeOrder(t.Context(), plugin.OrderInput{}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("call after Close: %v", err)
	}
	if v := testutil.ToFloat64(h.m.metrics.up.WithLabelValues("mock")); v != 0 {
		t.Errorf("paysidecar_plugin_up after Close = %v", v)
	}
	if err := h.m.Start(t.Context()); err == nil {
		t.Errorf("Start after Close succeeded")
	}
}
