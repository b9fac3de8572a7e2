package envoy

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/goccy/go-yaml"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// JSON renders m as indented protojson with the proto (snake_case) field
// names Envoy's documentation uses, ending in a newline. Unlike protojson's
// own multiline output, the whitespace is stable: the same message always
// renders to the same bytes with the same protobuf module version. Any
// fields are expanded, so their types must be linked into the program.
func JSON(m proto.Message) ([]byte, error) {
	compact, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("render %s as JSON: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact, "", "  "); err != nil {
		return nil, fmt.Errorf("indent %s JSON: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// YAML renders m as YAML, with fields in the same order as JSON.
func YAML(m proto.Message) ([]byte, error) {
	j, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("render %s as JSON: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		return nil, fmt.Errorf("convert %s JSON to YAML: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return y, nil
}

// BootstrapJSON renders Bootstrap(opts) as JSON; Envoy reads it from a file
// named *.json.
func BootstrapJSON(opts BootstrapOptions) ([]byte, error) {
	b, err := Bootstrap(opts)
	if err != nil {
		return nil, err
	}
	return JSON(b)
}

// BootstrapYAML renders Bootstrap(opts) as YAML; Envoy reads it from a file
// named *.yaml.
func BootstrapYAML(opts BootstrapOptions) ([]byte, error) {
	b, err := Bootstrap(opts)
	if err != nil {
		return nil, err
	}
	return YAML(b)
}
