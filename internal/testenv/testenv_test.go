package testenv

import (
	"os"
	"testing"
)

func TestInCI(t *testing.T) {
	for v, want := range map[string]bool{"": false, "0": false, "false": false, "FALSE": false, "1": true, "true": true, "yes": true} {
		t.Setenv("CI", v)
		if got := InCI(); got != want {
			t.Errorf("CI=%q: InCI() = %v, want %v", v, got, want)
		}
	}
}

func TestLookPathFindsAProgram(t *testing.T) {
	t.Setenv("CI", "")
	if p := LookPath(t, "any shell", "no-such-program-here", "sh"); p == "" {
		t.Fatal("sh was not found")
	}
}

// fakeTB records what LookPath does with a missing program.
type fakeTB struct {
	testing.TB
	skipped, failed bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Skip(...any)           { f.skipped = true }
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true }

func TestLookPathSkipsOrFailsUnderCI(t *testing.T) {
	t.Setenv("PATH", t.TempDir()+string(os.PathListSeparator))
	for ci, want := range map[string]string{"": "skip", "true": "fail"} {
		t.Setenv("CI", ci)
		f := &fakeTB{}
		LookPath(f, "a test", "no-such-program-here")
		if got := map[bool]string{true: "fail", false: "skip"}[f.failed]; got != want || f.failed == f.skipped {
			t.Errorf("CI=%q: skipped=%v failed=%v, want %s", ci, f.skipped, f.failed, want)
		}
	}
}
