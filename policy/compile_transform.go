package policy

import (
	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/transform/contract"
)

// compileRouteTransform applies the transform defaults; nil stays nil.
func compileRouteTransform(t *RouteTransform) *ir.RouteTransform {
	if t == nil {
		return nil
	}
	out := &ir.RouteTransform{
		Request:      t.Request,
		Response:     t.Response,
		MaxBodyBytes: t.MaxBodyBytes,
		FailOpen:     t.FailureMode == "open",
	}
	if out.MaxBodyBytes == 0 {
		out.MaxBodyBytes = MaxTransformBodyBytes
	}
	if t.Request == contract.JSONToXML || t.Response == contract.JSONToXML {
		out.Root = t.RootElement
		if out.Root == "" {
			out.Root = DefaultTransformRoot
		}
	}
	return out
}
