package plugin

import (
	"runtime"
	"syscall"
)

// setParentDeathSignal asks the kernel to send sig when the plugin's
// parent ends, and holds the thread it asked from until stop closes: the
// request belongs to that thread, so it must not be ended by the runtime
// while the plugin serves.
func setParentDeathSignal(sig syscall.Signal, stop <-chan struct{}) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(sig), 0)
	<-stop
}
