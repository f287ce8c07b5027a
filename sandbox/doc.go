// Package sandbox emulates the NKP Open API (wire-compatible with Huifu
// DouGong v2) and the WeChat endpoints the payment flows use, so that the
// sidecar can be run, tested and benchmarked on one machine with no network.
//
// A Server verifies every request's signature, keeps an in-memory ledger of
// orders, refunds, closes and merchant applications, answers in the signed
// upstream envelope, sends signed asynchronous notifications with the
// upstream's timeout and retry rules, serves a cashier page for Alipay native
// orders and reconciliation files generated from its ledger, and exposes
// simulation controls under /_sandbox/ (settle payments and refunds, inject
// faults, list notifications, mint WeChat codes, read ledger statistics).
// README.md in this directory documents every endpoint and control.
//
// Everything random is derived from Config.Seed, so two servers given the
// same seed and the same calls in the same order answer with the same ids
// and inject the same faults. Time comes from Config.Clock, so tests can
// drive expiry and review delays without sleeping.
//
// The lifecycle is New, Handler (mount it on any listener), Close. Close
// stops every notification and auto-settlement goroutine and waits for them.
package sandbox
