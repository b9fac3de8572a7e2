package policy

import "github.com/tollgate/tollgate/transform/contract"

// Transform defaults, applied by Compile.
const (
	// DefaultTransformRoot names the root element of json-to-xml output.
	DefaultTransformRoot = "root"
	// MaxTransformBodyBytes is the largest (and default) maxBodyBytes: 1 MiB,
	// Envoy's default buffer limit, above which Envoy itself refuses to
	// buffer a body (413 for a request, 500 for a response).
	MaxTransformBodyBytes = 1 << 20
)

// transformConversions are the values of transform.request and
// transform.response.
var transformConversions = []string{contract.JSONToXML, contract.XMLToJSON}

// transformFailureModes are the values of transform.failureMode.
var transformFailureModes = []string{"closed", "open"}

// RouteTransform converts a route's request and/or response bodies between
// JSON and XML through Tollgate's external processing service. Empty
// strings and 0 mean the field was left out.
type RouteTransform struct {
	// Request and Response are "json-to-xml" or "xml-to-json"; at least
	// one is set.
	Request, Response string
	// RootElement names the root element of json-to-xml output ("root").
	RootElement string
	// MaxBodyBytes bounds a converted body (1 MiB, also the maximum).
	MaxBodyBytes int
	// FailureMode is what Envoy does when the service cannot be reached
	// or fails: "closed" (503, or 504 when it does not answer in time; the
	// default) or "open" (the body passes unconverted).
	FailureMode string
}
