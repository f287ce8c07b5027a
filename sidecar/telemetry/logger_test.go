package telemetry_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

// A logger made on a LevelVar follows the variable at once.
func TestLeveledLoggerFollowsItsLevel(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			var level slog.LevelVar
			level.Set(telemetry.ParseLevel("INFO"))
			log := telemetry.NewLeveledLogger(&buf, &level, format).With("component", "x")
			log.Debug("first")
			level.Set(telemetry.ParseLevel("debug"))
			log.Debug("second")
			level.Set(telemetry.ParseLevel("error"))
			log.Warn("third")
			if out := buf.String(); strings.Contains(out, "first") || !strings.Contains(out, "second") || strings.Contains(out, "third") {
				t.Errorf("logged:\n%s\nwant only the second record", out)
			}
		})
	}
}

func TestParseLevel(t *testing.T) {
	for name, want := range map[string]slog.Level{
		"debug": slog.LevelDebug, "Info": slog.LevelInfo, "WARN": slog.LevelWarn, "error": slog.LevelError, "": slog.LevelInfo,
	} {
		if got := telemetry.ParseLevel(name); got != want {
			t.Errorf("ParseLevel(%q) = %v, want %v", name, got, want)
		}
	}
}
