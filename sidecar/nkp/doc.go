// Package nkp speaks the wire protocol of the NKP Open API, which is
// wire-compatible with Huifu DouGong v2.
//
// It owns every byte that crosses the wire: the canonical string that is
// signed, RSA PKCS#1 v1.5 SHA-256 signatures, the request and response
// envelopes, the asynchronous notification form, the two field dialects
// (profiles "nkp" and "dougong"), typed requests and responses for the
// trade endpoints, and the single conversion between integer fen and the
// upstream's two-decimal yuan strings. The sidecar and the sandbox upstream
// both build on it, so the two sides of every test speak the same protocol
// through independent code paths only where the protocol demands it (the
// server re-canonicalizes; the client verifies raw bytes first).
package nkp
