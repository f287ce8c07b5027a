// Package e2e holds the end-to-end tests of the sidecar: they build the
// real paysidecar and plugin binaries, run them as processes against the
// sandbox upstream over loopback HTTP, and check what an application and
// the upstream see. It has no non-test code.
package e2e
