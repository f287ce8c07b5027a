package plugin

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
)

// TestTuneRuntime: a plugin collects its heap earlier, under a soft memory
// limit, on at most two threads; each setting its environment names is
// left as the environment set it.
func TestTuneRuntime(t *testing.T) {
	gc, limit, procs := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64), runtime.GOMAXPROCS(8)
	t.Cleanup(func() {
		debug.SetGCPercent(gc)
		debug.SetMemoryLimit(limit)
		runtime.GOMAXPROCS(procs)
	})

	tuneRuntime(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != PluginGCPercent {
		t.Errorf("GOGC = %d, want %d", got, PluginGCPercent)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != PluginMemoryLimit {
		t.Errorf("memory limit = %d, want %d", got, PluginMemoryLimit)
	}
	if got := runtime.GOMAXPROCS(8); got != PluginMaxProcs {
		t.Errorf("GOMAXPROCS = %d, want %d", got, PluginMaxProcs)
	}

	env := map[string]string{"GOGC": "200", "GOMEMLIMIT": "1GiB", "GOMAXPROCS": "8"}
	tuneRuntime(func(k string) string { return env[k] })
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set, GOGC = %d, want it untouched (100)", got)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != math.MaxInt64 {
		t.Errorf("with GOMEMLIMIT set, the limit = %d, want it untouched", got)
	}
	if got := runtime.GOMAXPROCS(0); got != 8 {
		t.Errorf("with GOMAXPROCS set, GOMAXPROCS = %d, want it untouched (8)", got)
	}
}
