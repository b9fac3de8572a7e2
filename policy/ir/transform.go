package ir

// RouteTransform converts a route's bodies between JSON and XML through
// Tollgate's external processing service.
type RouteTransform struct {
	// Request and Response are "json-to-xml", "xml-to-json" or "" (that
	// body is left alone); at least one is set.
	Request  string `json:"request,omitempty"`
	Response string `json:"response,omitempty"`
	// Root names the root element of json-to-xml output; "" when neither
	// direction is json-to-xml.
	Root string `json:"root,omitempty"`
	// MaxBodyBytes bounds a converted body.
	MaxBodyBytes int `json:"maxBodyBytes"`
	// FailOpen lets bodies pass unconverted when the service cannot be
	// reached; otherwise such requests fail (fail closed).
	FailOpen bool `json:"failOpen,omitempty"`
}

// NeedsTransform reports whether any route of the gateway has a transform,
// so its Envoys need the ext_proc filter and the service's cluster.
func (g *Gateway) NeedsTransform() bool {
	for _, vh := range g.VirtualHosts {
		for _, r := range vh.Routes {
			if r.Transform != nil {
				return true
			}
		}
	}
	return false
}
