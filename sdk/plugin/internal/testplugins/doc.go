// Package testplugins holds plugin binaries that only tests build: a
// plugin of contract version 1, as built with an SDK from before version 2
// (mockv1), and one that speaks only a version no host knows yet (future).
// They let hosts test version negotiation against real processes.
package testplugins
