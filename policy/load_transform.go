package policy

import (
	"go.yaml.in/yaml/v3"
)

// loadRouteTransform loads a route's transform mapping.
func loadRouteTransform(l *loader, r *Route, path string, n *yaml.Node) {
	r.Transform = &RouteTransform{}
	mapping(l, path, n, r.Transform, transformFields())
}

func transformFields() []field[RouteTransform] {
	str := func(name string, dst func(*RouteTransform) *string) field[RouteTransform] {
		return field[RouteTransform]{name: name, load: func(l *loader, t *RouteTransform, path string, n *yaml.Node) {
			*dst(t) = l.str(path, n)
		}}
	}
	return []field[RouteTransform]{
		str("request", func(t *RouteTransform) *string { return &t.Request }),
		str("response", func(t *RouteTransform) *string { return &t.Response }),
		str("rootElement", func(t *RouteTransform) *string { return &t.RootElement }),
		{name: "maxBodyBytes", load: func(l *loader, t *RouteTransform, path string, n *yaml.Node) {
			if v, ok := l.integer(path, n); ok {
				if v == 0 {
					l.fail(path, n, "maxBodyBytes must be greater than 0, got 0",
						"give a byte count from 1 to 1048576, or remove maxBodyBytes for the default (1048576)")
					return
				}
				t.MaxBodyBytes = v
			}
		}},
		str("failureMode", func(t *RouteTransform) *string { return &t.FailureMode }),
	}
}
