package envoy

import (
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// RE2 program-size limits set by RuntimeLayers. Envoy rejects a regex whose
// compiled RE2 program is larger than the error level (default 100) and
// warns above the warn level. Tollgate's policy validation caps regexes at
// 1000 Go RE2 instructions; Envoy's C++ RE2 counts differently (Unicode
// classes cost about 5.5 times as much there: [\p{L}\p{N}]{0,450} is 902 Go
// instructions and 4954 in Envoy), so the error level leaves a wide margin
// above 1000 × that ratio. RE2 matches in linear time; the limit guards
// memory, not CPU.
const (
	RE2MaxProgramSizeErrorLevel = 100000
	RE2MaxProgramSizeWarnLevel  = 50000
)

// Runtime layer names.
const (
	StaticRuntimeLayerName = "static"
	AdminRuntimeLayerName  = "admin"
)

// RuntimeLayers returns the layered runtime of a Tollgate Envoy: a static
// layer with the RE2 program-size limits, then an admin layer so operators
// can override runtime keys through the admin /runtime_modify endpoint.
func RuntimeLayers() *bootstrapv3.LayeredRuntime {
	static := &structpb.Struct{Fields: map[string]*structpb.Value{
		"re2.max_program_size.error_level": structpb.NewNumberValue(RE2MaxProgramSizeErrorLevel),
		"re2.max_program_size.warn_level":  structpb.NewNumberValue(RE2MaxProgramSizeWarnLevel),
	}}
	return &bootstrapv3.LayeredRuntime{
		Layers: []*bootstrapv3.RuntimeLayer{
			{
				Name:           StaticRuntimeLayerName,
				LayerSpecifier: &bootstrapv3.RuntimeLayer_StaticLayer{StaticLayer: static},
			},
			{
				Name:           AdminRuntimeLayerName,
				LayerSpecifier: &bootstrapv3.RuntimeLayer_AdminLayer_{AdminLayer: &bootstrapv3.RuntimeLayer_AdminLayer{}},
			},
		},
	}
}
