package plugin_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sdk/plugin"
)

// TestNewLoggerWritesHCLogJSON checks the keys and formats the host's
// go-plugin client parses from a plugin's stderr.
func TestNewLoggerWritesHCLogJSON(t *testing.T) {
	cases := []struct {
		level slog.Level
		want  string
	}{
		{slog.LevelDebug - 4, "trace"},
		{slog.LevelDebug, "debug"},
		{slog.LevelInfo, "info"},
		{slog.LevelWarn, "warn"},
		{slog.LevelError, "error"},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		l := plugin.NewLogger(&buf, slog.LevelDebug-4)
		l.Log(t.Context(), c.level, "hello", "payment_id", "p1", slog.Group("g", "time", "not-a-time"))
		var m map[string]any
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", buf.String(), err)
		}
		if m["@level"] != c.want || m["@message"] != "hello" || m["payment_id"] != "p1" {
			t.Errorf("level %v: line = %s", c.level, buf.String())
		}
		ts, _ := m["@timestamp"].(string)
		if _, err := time.Parse("2006-01-02T15:04:05.000000Z07:00", ts); err != nil {
			t.Errorf("@timestamp %q does not parse as hclog's: %v", ts, err)
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := m[k]; ok {
				t.Errorf("slog key %q left in %s", k, buf.String())
			}
		}
		if g, _ := m["g"].(map[string]any); g["time"] != "not-a-time" {
			t.Errorf("grouped attribute renamed: %s", buf.String())
		}
	}
	var buf bytes.Buffer
	plugin.NewLogger(&buf, slog.LevelInfo).Debug("quiet")
	if buf.Len() != 0 {
		t.Errorf("debug line written at level info: %s", buf.String())
	}
}
