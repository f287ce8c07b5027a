package plugin

import (
	"runtime"
	"runtime/debug"
)

// The Go runtime settings Serve gives a plugin process unless its
// environment sets GOGC, GOMEMLIMIT or GOMAXPROCS. A flow plugin runs
// beside every sidecar, holds little (a call's request and answer) and
// does little work per call, so it trades a little CPU for memory: the
// heap may grow by half its live size between collections instead of
// doubling, the runtime collects harder as its memory nears a soft limit,
// and it schedules on at most two threads, which keeps idle threads,
// their stacks and the scheduler's spinning small.
const (
	// PluginGCPercent is the GOGC of a plugin process.
	PluginGCPercent = 50
	// PluginMemoryLimit is the soft memory limit (GOMEMLIMIT) of a plugin
	// process, in bytes: 12 MiB of memory the Go runtime manages.
	PluginMemoryLimit = 12 << 20
	// PluginMaxProcs bounds GOMAXPROCS of a plugin process.
	PluginMaxProcs = 2
)

// tuneRuntime applies the plugin runtime settings, each unless getenv
// names the variable that overrides it.
func tuneRuntime(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(PluginGCPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(PluginMemoryLimit)
	}
	if getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) > PluginMaxProcs {
		runtime.GOMAXPROCS(PluginMaxProcs)
	}
}
