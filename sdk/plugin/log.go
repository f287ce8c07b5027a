package plugin

import (
	"io"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// hclogTimeFormat is the timestamp layout the host's go-plugin client
// parses from a plugin's JSON log lines.
const hclogTimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// NewLogger returns a logger for a flow plugin. It writes JSON lines in the
// format of hclog (keys "@timestamp", "@level", "@message") to w, which
// should be the plugin's stderr: the host parses each line and logs it
// again through its own logger, at the same level and under the plugin's
// name. Values that are secret must never be logged.
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: hclogKeys}))
}

// hclogKeys renames slog's built-in keys to hclog's.
func hclogKeys(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.TimeKey:
		if a.Value.Kind() == slog.KindTime {
			return slog.String("@timestamp", a.Value.Time().Format(hclogTimeFormat))
		}
	case slog.LevelKey:
		if lvl, ok := a.Value.Any().(slog.Level); ok {
			return slog.String("@level", hclogLevelName(lvl))
		}
	case slog.MessageKey:
		return slog.String("@message", a.Value.String())
	}
	return a
}

// hclogLevelName names a slog level as hclog does.
func hclogLevelName(l slog.Level) string {
	switch {
	case l < slog.LevelDebug:
		return "trace"
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	default:
		return "error"
	}
}

// newGoPluginLogger returns the hclog logger go-plugin's server uses for
// its own messages: JSON lines on w that the host bridges like NewLogger's.
func newGoPluginLogger(w io.Writer, level slog.Level) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Output:     w,
		JSONFormat: true,
		Level:      hclog.LevelFromString(hclogLevelName(level)),
	})
}
