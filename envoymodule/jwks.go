package main

import "github.com/tollgate/tollgate/extauthz/jwt"

// processJWKS is the JWKS bodies the module's filter configurations share
// in one Envoy process (jwt.JWKSStore). Each policy push that changes a
// listener's filters builds a new configuration whose verifier has no keys
// yet, and the config hook waits on Envoy's main thread for its first
// fetch (tgConfigNew); with the previous configuration's keys, fetched
// from the same URI within the refresh interval, it has nothing to wait
// for and refreshes in the background. It also records failed fetches
// (jwt.JWKSFailures): a new configuration does not wait for an endpoint
// whose last fetch failed. Process-wide like the cgo handle registry: the
// keys must outlive the configuration that fetched them. One entry per
// JWKS URI a policy ever named (each body at most 1 MiB).
var processJWKS = jwt.NewMemoryJWKS()
