package pluginhost

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestHCLogBridge(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l := newHCLogger(base, "wechat-jsapi")

	if l.GetLevel() != hclog.Debug || l.IsTrace() || !l.IsDebug() || !l.IsError() {
		t.Errorf("levels: GetLevel %v, IsTrace %v, IsDebug %v", l.GetLevel(), l.IsTrace(), l.IsDebug())
	}
	l.Trace("dropped")
	l.Named("stdio").With("conn", 7).Warn("hello", "plugin", "/usr/lib/x", "n", 1, "odd")
	l.Log(hclog.Error, "bad", "k", "v")
	l.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Info}).Print("from std")

	var entries []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		entries = append(entries, e)
	}
	if len(entries) != 3 {
		t.Fatalf("entries = %v", entries)
	}
	warn := entries[0]
	want := map[string]any{"level": "WARN", "msg": "hello", "plugin": "wechat-jsapi", "logger": "stdio",
		"conn": float64(7), "plugin_binary": "/usr/lib/x", "n": float64(1), "EXTRA_VALUE_AT_END": "odd"}
	for k, v := range want {
		if warn[k] != v {
			t.Errorf("%s = %v, want %v (entry %v)", k, warn[k], v, warn)
		}
	}
	if entries[1]["level"] != "ERROR" || entries[1]["k"] != "v" {
		t.Errorf("error entry = %v", entries[1])
	}
	if entries[2]["level"] != "INFO" || entries[2]["msg"] != "from std" {
		t.Errorf("standard logger entry = %v", entries[2])
	}
	if got := l.Named("a").Named("b").Name(); got != "a.b" {
		t.Errorf("Named = %q", got)
	}
	if got := l.Named("a").ResetNamed("c").Name(); got != "c" {
		t.Errorf("ResetNamed = %q", got)
	}
	if got := l.With("x", 1).ImpliedArgs(); len(got) != 2 {
		t.Errorf("ImpliedArgs = %v", got)
	}
}

func TestPluginEnv(t *testing.T) {
	t.Setenv("PATH", "/usr/bin:/bin")
	t.Setenv("PAYSIDECAR_PRIVATE_KEY", "secret")
	t.Setenv("OTEL_SERVICE_NAME", "flows")
	env := strings.Join(pluginEnv([]string{"OTEL_SERVICE_NAME", "PATH", "UNSET_VARIABLE_X"}), "\n")
	if !strings.Contains(env, "PATH=/usr/bin:/bin") || !strings.Contains(env, "OTEL_SERVICE_NAME=flows") {
		t.Errorf("env = %q", env)
	}
	if strings.Contains(env, "PAYSIDECAR_PRIVATE_KEY") || strings.Contains(env, "UNSET_VARIABLE_X") {
		t.Errorf("env holds what it should not: %q", env)
	}
	if strings.Count(env, "PATH=") != 1 {
		t.Errorf("PATH twice: %q", env)
	}
}
