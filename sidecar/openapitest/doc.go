// Package openapitest keeps sdk/openapi.yaml and the thin clients in
// sdk/clients honest. Its tests parse the specification and compare it with
// the routes registered in sidecar/api, the error codes in
// sidecar/api/errors.go and the JSON shapes in sdk/client, so the contract
// cannot drift from the server silently; and they run the Python, Node and
// PHP clients (where those runtimes are installed) against webhook
// signatures computed in Go and against a recording HTTP server.
package openapitest
