package policy

import (
	"fmt"
	"slices"

	"github.com/tollgate/tollgate/transform/contract"
)

// routeTransform checks the transform of the route at path.
func (c *checker) routeTransform(path string, t *RouteTransform) {
	if t == nil {
		return
	}
	tp := fieldPath(path, "transform")
	if c.src.isFailed(tp) {
		return
	}
	if t.Request == "" && t.Response == "" && !c.src.isFailed(fieldPath(tp, "request")) && !c.src.isFailed(fieldPath(tp, "response")) {
		c.errorf(tp, "add `response: json-to-xml` (or xml-to-json), `request: ...`, or both; or remove transform",
			"transform converts nothing: set request, response or both")
	}
	c.conversion(fieldPath(tp, "request"), t.Request)
	c.conversion(fieldPath(tp, "response"), t.Response)
	if t.RootElement != "" {
		c.rootElement(fieldPath(tp, "rootElement"), t)
	}
	if t.MaxBodyBytes < 0 || t.MaxBodyBytes > MaxTransformBodyBytes {
		c.errorf(fieldPath(tp, "maxBodyBytes"),
			fmt.Sprintf("give a byte count from 1 to %d (Envoy's buffer limit), or remove maxBodyBytes for the default", MaxTransformBodyBytes),
			"maxBodyBytes %d is out of range", t.MaxBodyBytes)
	}
	if t.FailureMode != "" && !slices.Contains(transformFailureModes, t.FailureMode) {
		c.errorf(fieldPath(tp, "failureMode"), withSuggestion(t.FailureMode, transformFailureModes,
			"use closed (the default: 503 when the service is unreachable, 504 when it times out) or open (bodies pass unconverted)"),
			"unknown failureMode %q", t.FailureMode)
	}
}

// conversion checks one of transform.request and transform.response.
func (c *checker) conversion(path, v string) {
	if v == "" || slices.Contains(transformConversions, v) {
		return
	}
	c.errorf(path, withSuggestion(v, transformConversions, "use json-to-xml or xml-to-json"), "unknown conversion %q", v)
}

// rootElement checks that the root element is a plain XML name and that a
// json-to-xml conversion uses it.
func (c *checker) rootElement(path string, t *RouteTransform) {
	if !contract.PlainName(t.RootElement) {
		c.errorf(path, `use an XML name: an ASCII letter or "_", then letters, digits, "_", "-" or ".", not starting with "xml"`,
			"invalid rootElement %q", t.RootElement)
		return
	}
	if t.Request != contract.JSONToXML && t.Response != contract.JSONToXML {
		c.errorf(path, "remove rootElement, or convert a body with json-to-xml",
			"rootElement is only used by json-to-xml, and this transform has none")
	}
}

// withSuggestion prefixes fix with a did-you-mean when v is close to one of
// words.
func withSuggestion(v string, words []string, fix string) string {
	if s, ok := closest(v, words); ok {
		return fmt.Sprintf("did you mean %q? ", s) + fix
	}
	return fix
}
