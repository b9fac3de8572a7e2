// Package envoy builds Envoy v3 API messages: small constructors named after
// the protos they return, one concern per file.
//
// The package knows nothing of Tollgate's policy or IR. It encodes Envoy
// knowledge only: which fields a resource needs to be accepted by Envoy 1.40,
// the safe defaults an edge proxy wants, and how extensions are wired
// (every extension carries a typed_config; the router is the last HTTP
// filter; xDS sources use ADS with transport and resource API version V3).
//
// Builders return fresh messages that the caller owns. They do not validate
// their arguments beyond what they need to build the message; run Validate
// on the result (PGV rules, including the contents of every Any) before
// sending it to Envoy.
package envoy
