package localproc

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestReadStatOfThisProcess(t *testing.T) {
	s, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.PPID != os.Getppid() {
		t.Errorf("PPID = %d, want %d", s.PPID, os.Getppid())
	}
	if s.StartedAfterBoot <= 0 {
		t.Errorf("StartedAfterBoot = %s, want after boot", s.StartedAfterBoot)
	}
	if _, err := ReadStat(-1); err == nil {
		t.Error("ReadStat(-1) succeeded")
	}
}

func TestStartFindsTheChildAndStopEndsIt(t *testing.T) {
	sleep := "/bin/sleep"
	if _, err := os.Stat(sleep); err != nil {
		t.Skip("no /bin/sleep")
	}
	p, err := Start(sleep, []string{"60"}, filepath.Join(t.TempDir(), "sleep.log"))
	if err != nil {
		t.Fatal(err)
	}
	if got := ChildNamed(os.Getpid(), "sleep"); got != p.PID() {
		t.Errorf("ChildNamed(sleep) = %d, want %d", got, p.PID())
	}
	if RSSMiB(p.PID()) <= 0 {
		t.Error("no resident memory read for the child")
	}
	p.Stop()
	select {
	case <-p.Exited:
	default:
		t.Error("Stop returned before the process exited")
	}
	if got := ChildNamed(os.Getpid(), "sleep"); got != 0 {
		t.Errorf("after Stop, ChildNamed(sleep) = %d", got)
	}
}

func TestContextSwitchesCountsEachSleep(t *testing.T) {
	// A thread that sleeps in the kernel leaves the CPU each time: a
	// voluntary switch the count must include.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := ContextSwitches(os.Getpid())
	const sleeps = 20
	for range sleeps {
		ts := syscall.Timespec{Nsec: int64(time.Millisecond)}
		if err := syscall.Nanosleep(&ts, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := ContextSwitches(os.Getpid()) - before; got < sleeps {
		t.Errorf("%d context switches over %d sleeps", got, sleeps)
	}
	if got := ContextSwitches(-1); got != 0 {
		t.Errorf("ContextSwitches(-1) = %d, want 0", got)
	}
}

func TestFreePortInStaysInItsRange(t *testing.T) {
	addr, err := FreePortIn(8000, 9005)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr)
	if p, err := strconv.Atoi(port); err != nil || p < 8000 || p > 9005 {
		t.Errorf("FreePortIn(8000, 9005) = %s", addr)
	}
	// With the only port of the range taken there is none to give. (The
	// port taken is one the kernel chose: binding the one FreePortIn gave
	// would race with other tests drawing from 8000-9005.)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := ln.Addr().(*net.TCPAddr).Port
	if got, err := FreePortIn(p, p); err == nil {
		t.Errorf("FreePortIn(%d, %d) = %s while the port is taken", p, p, got)
	}
}
