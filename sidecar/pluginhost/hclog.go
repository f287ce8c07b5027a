package pluginhost

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// levelTrace is slog's level for hclog's Trace, below Debug.
const levelTrace = slog.LevelDebug - 4

// slogHCLogger is an hclog.Logger that writes to a slog.Logger. go-plugin
// logs through it, and so does every line a plugin writes to its stderr:
// go-plugin parses the plugin's JSON lines and logs them here with their
// level, message and attributes, under a logger named after the binary.
type slogHCLogger struct {
	l       *slog.Logger
	name    string
	implied []any
	// quiet, when set, logs go-plugin's lines at debug level: the host
	// is ending a plugin it has already said everything about.
	quiet *atomic.Bool
}

var _ hclog.Logger = (*slogHCLogger)(nil)

// newHCLogger returns the hclog.Logger for one plugin: every line carries
// plugin=name.
func newHCLogger(l *slog.Logger, name string) *slogHCLogger {
	return &slogHCLogger{l: l.With("plugin", name), quiet: &atomic.Bool{}}
}

func slogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return levelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// Log implements hclog.Logger.
func (h *slogHCLogger) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off {
		return
	}
	lvl := slogLevel(level)
	if h.quiet.Load() && lvl > slog.LevelDebug {
		lvl = slog.LevelDebug
	}
	ctx := context.Background()
	if !h.l.Enabled(ctx, lvl) {
		return
	}
	attrs := make([]any, 0, len(args)+2)
	if h.name != "" {
		attrs = append(attrs, "logger", h.name)
	}
	attrs = append(attrs, flattenArgs(args)...)
	h.l.Log(ctx, lvl, msg, attrs...)
}

// flattenArgs turns hclog's key/value pairs into slog's, keeping an odd
// trailing value under the key "EXTRA_VALUE_AT_END" as hclog does. The key
// "plugin", which go-plugin uses for the binary's path, becomes
// "plugin_binary" so as not to shadow the plugin's name.
func flattenArgs(args []any) []any {
	out := make([]any, 0, len(args))
	for i := 0; i < len(args); i += 2 {
		if i+1 >= len(args) {
			out = append(out, "EXTRA_VALUE_AT_END", args[i])
			break
		}
		key, ok := args[i].(string)
		if !ok {
			key = fmt.Sprint(args[i])
		}
		if key == "plugin" {
			key = "plugin_binary"
		}
		out = append(out, key, args[i+1])
	}
	return out
}

// Trace implements hclog.Logger.
func (h *slogHCLogger) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }

// Debug implements hclog.Logger.
func (h *slogHCLogger) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }

// Info implements hclog.Logger.
func (h *slogHCLogger) Info(msg string, args ...any) { h.Log(hclog.Info, msg, args...) }

// Warn implements hclog.Logger.
func (h *slogHCLogger) Warn(msg string, args ...any) { h.Log(hclog.Warn, msg, args...) }

// Error implements hclog.Logger.
func (h *slogHCLogger) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }

func (h *slogHCLogger) enabled(level hclog.Level) bool {
	return h.l.Enabled(context.Background(), slogLevel(level))
}

// IsTrace implements hclog.Logger.
func (h *slogHCLogger) IsTrace() bool { return h.enabled(hclog.Trace) }

// IsDebug implements hclog.Logger.
func (h *slogHCLogger) IsDebug() bool { return h.enabled(hclog.Debug) }

// IsInfo implements hclog.Logger.
func (h *slogHCLogger) IsInfo() bool { return h.enabled(hclog.Info) }

// IsWarn implements hclog.Logger.
func (h *slogHCLogger) IsWarn() bool { return h.enabled(hclog.Warn) }

// IsError implements hclog.Logger.
func (h *slogHCLogger) IsError() bool { return h.enabled(hclog.Error) }

// ImpliedArgs implements hclog.Logger.
func (h *slogHCLogger) ImpliedArgs() []any { return append([]any(nil), h.implied...) }

// With implements hclog.Logger.
func (h *slogHCLogger) With(args ...any) hclog.Logger {
	return &slogHCLogger{
		l:       h.l.With(flattenArgs(args)...),
		name:    h.name,
		implied: append(append([]any(nil), h.implied...), args...),
		quiet:   h.quiet,
	}
}

// Name implements hclog.Logger.
func (h *slogHCLogger) Name() string { return h.name }

// Named implements hclog.Logger.
func (h *slogHCLogger) Named(name string) hclog.Logger {
	n := name
	if h.name != "" {
		n = h.name + "." + name
	}
	return &slogHCLogger{l: h.l, name: n, implied: h.implied, quiet: h.quiet}
}

// ResetNamed implements hclog.Logger.
func (h *slogHCLogger) ResetNamed(name string) hclog.Logger {
	return &slogHCLogger{l: h.l, name: name, implied: h.implied, quiet: h.quiet}
}

// SetLevel does nothing: the slog handler decides what is written.
func (h *slogHCLogger) SetLevel(hclog.Level) {}

// GetLevel returns the least hclog level the slog handler writes.
func (h *slogHCLogger) GetLevel() hclog.Level {
	for _, lvl := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if h.enabled(lvl) {
			return lvl
		}
	}
	return hclog.Off
}

// StandardLogger implements hclog.Logger.
func (h *slogHCLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(opts), "", 0)
}

// StandardWriter implements hclog.Logger.
func (h *slogHCLogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	level := hclog.Info
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		level = opts.ForceLevel
	}
	return &hclogWriter{h: h, level: level}
}

type hclogWriter struct {
	h     *slogHCLogger
	level hclog.Level
}

// Write logs p as one line at the writer's level.
func (w *hclogWriter) Write(p []byte) (int, error) {
	w.h.Log(w.level, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
