//go:build unix

package keygen

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestWriteModesIgnoreUmask writes under a permissive, a usual and a strict
// umask. The umask is process-wide, so this test must not run in parallel
// with others that create files.
func TestWriteModesIgnoreUmask(t *testing.T) {
	for _, umask := range []int{0o000, 0o002, 0o022, 0o027, 0o077} {
		t.Run(fmt.Sprintf("umask %04o", umask), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "new")
			old := syscall.Umask(umask)
			defer syscall.Umask(old)

			f, err := Write(dir, 0)
			if err != nil {
				t.Fatalf("Write: %v", err)
			}
			checkPair(t, f)
			// The directory is created 0700 less the umask: never wider.
			fi, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if perm := fi.Mode().Perm(); perm&^DirMode != 0 {
				t.Errorf("directory mode %v is wider than %v", perm, DirMode)
			}

			f, err = Write(dir, 0, Force())
			if err != nil {
				t.Fatalf("Write with Force: %v", err)
			}
			checkPair(t, f)
		})
	}
}
