package policy

import (
	"fmt"
	"slices"
	"sort"
)

// Shape describes the YAML a policy field accepts: its type, allowed
// values and documentation. The JSON Schema (`tollgate schema`,
// policy.schema.json) and the generated policy reference
// (docs/reference/policy) are both rendered from DocumentShape.
//
// Field names and which fields are required are not written here: they
// come from the loader's own field tables (object), so the shape can only
// say what the value of a loader field looks like. object panics when a
// shape names a field the loader does not have, or misses one it has;
// TestDocumentShapeMatchesLoader keeps that from shipping.
type Shape struct {
	// Type is "string", "integer", "number", "boolean", "array", "object"
	// (fixed fields), "map" (free keys, each value Values) or "" for a
	// choice between OneOf.
	Type string
	Doc  string
	// Enum lists the allowed values of a string (or integer) shape.
	Enum []string
	// Min and Max bound an integer, or an array's length.
	Min, Max *int
	// Pattern is a regular expression a string must match (ECMA 262).
	Pattern string
	// AllowEmpty lets a string be "" (the loader refuses empty strings
	// otherwise).
	AllowEmpty bool
	Items      *Shape       // array
	Fields     []ShapeField // object, in the loader's order
	Values     *Shape       // map
	OneOf      []*Shape
	// Ref names the shape: object shapes with a Ref get their own
	// definition in the JSON Schema and their own section in the reference.
	Ref string
}

// ShapeField is one field of an object shape.
type ShapeField struct {
	Name     string
	Required bool
	Shape    *Shape
}

func intp(v int) *int { return &v }

func sString(doc string) *Shape { return &Shape{Type: "string", Doc: doc} }
func sDuration(doc string) *Shape {
	return &Shape{Type: "string", Doc: doc, Pattern: `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`}
}
func sPercent(doc string) *Shape {
	return &Shape{Type: "string", Doc: doc, Pattern: `^[0-9]+(\.[0-9]+)?%$`}
}
func sBool(doc string) *Shape { return &Shape{Type: "boolean", Doc: doc} }
func sInt(doc string, minMax ...int) *Shape {
	s := &Shape{Type: "integer", Doc: doc}
	if len(minMax) > 0 {
		s.Min = intp(minMax[0])
	}
	if len(minMax) > 1 {
		s.Max = intp(minMax[1])
	}
	return s
}
func sEnum(doc string, values ...string) *Shape {
	return &Shape{Type: "string", Doc: doc, Enum: values}
}
func sList(doc string, items *Shape) *Shape { return &Shape{Type: "array", Doc: doc, Items: items} }
func sStrings(doc string) *Shape            { return sList(doc, &Shape{Type: "string"}) }
func sMap(doc string, values *Shape) *Shape { return &Shape{Type: "map", Doc: doc, Values: values} }
func sOneOf(doc string, choices ...*Shape) *Shape {
	return &Shape{Doc: doc, OneOf: choices}
}

// sWord is the single string value word (`none`, `off`, `unlimited`).
func sWord(word, doc string) *Shape { return &Shape{Type: "string", Doc: doc, Enum: []string{word}} }

// object builds the shape of a mapping the loader reads with fields: names
// and required come from fields, the value shapes from props (by name).
func object[T any](ref, doc string, fields []field[T], props map[string]*Shape) *Shape {
	s := &Shape{Type: "object", Doc: doc, Ref: ref}
	for _, f := range fields {
		p, ok := props[f.name]
		if !ok {
			panic(fmt.Sprintf("policy shape %s: loader field %q has no shape", ref, f.name))
		}
		s.Fields = append(s.Fields, ShapeField{Name: f.name, Required: f.required, Shape: p})
	}
	var extra []string
	for name := range props {
		if !slices.ContainsFunc(fields, func(f field[T]) bool { return f.name == name }) {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		panic(fmt.Sprintf("policy shape %s: %v are not fields of the loader", ref, extra))
	}
	return s
}

// DocumentShape returns the shape of a policy file.
func DocumentShape() *Shape {
	return object("Policy", "A Tollgate policy file. A policy is one file or a directory of *.yaml/*.yml files whose lists are concatenated.",
		documentFields(), map[string]*Shape{
			"version":       &Shape{Type: "integer", Doc: "Policy format version; only 1 exists.", Min: intp(1), Max: intp(1)},
			"gateways":      sList("Envoy fleets; an Envoy whose bootstrap has node.cluster NAME gets gateway NAME's configuration.", gatewayShape()),
			"routes":        sList("Request rules. Their order in the file does not matter (see precedence).", routeShape()),
			"backends":      sList("Upstream services. A backend no route uses gets a warning.", backendShape()),
			"auth":          authShape(),
			"rateLimits":    rateLimitsShape(),
			"observability": observabilityShape(),
		})
}

// nameDoc is the rule every resource name follows.
const nameDoc = "Lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit."

func sName(doc string) *Shape {
	return &Shape{Type: "string", Doc: doc + " " + nameDoc, Pattern: `^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`}
}
