package nkp

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain runs the tests and then fails if they left goroutines running,
// such as an HTTP server or connection that was never closed.
func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 && !fuzzing() {
		if stacks, ok := settle(before, 5*time.Second); !ok {
			fmt.Fprintf(os.Stderr, "tests left goroutines running:\n%s\n", stacks)
			code = 1
		}
	}
	os.Exit(code)
}

// fuzzing reports whether this process is a fuzzing coordinator or worker,
// whose own goroutines outlive the tests.
func fuzzing() bool {
	for _, name := range []string{"test.fuzz", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			return true
		}
	}
	return false
}

// settle waits until no more than n goroutines run, and otherwise returns
// the stacks of those that do.
func settle(n int, within time.Duration) (string, bool) {
	deadline := time.Now().Add(within)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			return strings.TrimSpace(string(buf)), false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "", true
}
