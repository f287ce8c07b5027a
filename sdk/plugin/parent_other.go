//go:build !linux

package plugin

import "syscall"

// setParentDeathSignal waits for stop: only Linux has a parent-death
// signal, and elsewhere the watch of the parent process id finds out.
func setParentDeathSignal(_ syscall.Signal, stop <-chan struct{}) { <-stop }
