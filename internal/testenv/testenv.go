// Package testenv finds the programs that tests drive from outside Go
// (promtool, kubectl, chromium, php, …).
//
// A test that needs a missing program is skipped on a developer's machine,
// with the program's name in the skip message, so that `make test`'s
// summary of skipped tests says what to install. Under CI (the CI
// environment variable set, as .ci/run does) the same test fails instead:
// CI installs every program the tests use and must skip nothing.
package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// InCI reports whether the tests run under CI, where nothing may be
// skipped for a missing program.
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v != "" && v != "0" && v != "false"
}

// LookPath returns the path of the first of names found on PATH (a name
// with a slash is used as a path). When none is found it skips t, or fails
// it under CI; why names what to install.
func LookPath(t testing.TB, why string, names ...string) string {
	t.Helper()
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := strings.Join(names, " or ") + " is not installed (" + why + ")"
	if InCI() {
		t.Fatalf("%s; CI must install it", msg)
		return ""
	}
	t.Skip(msg)
	return ""
}
