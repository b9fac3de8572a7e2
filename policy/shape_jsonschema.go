package policy

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// SchemaID is the $id of the policy's JSON Schema, where editors find it.
const SchemaID = "https://raw.githubusercontent.com/tollgate/tollgate/main/policy.schema.json"

// JSONSchema renders DocumentShape as a JSON Schema (draft 2020-12) for
// editors (yaml-language-server) and CI linters: every object shape with a
// Ref becomes a $defs entry. It checks the shape of a policy (field names,
// types, allowed words and values, required fields), not the rules
// `tollgate validate` checks across fields.
func JSONSchema() ([]byte, error) {
	defs := map[string]any{}
	root := schemaOf(DocumentShape(), defs)
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = SchemaID
	root["title"] = "Tollgate policy"
	root["$defs"] = defs
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// schemaOf renders s; object shapes with a Ref other than the root go to
// defs and are referenced.
func schemaOf(s *Shape, defs map[string]any) map[string]any {
	if s.Type == "object" && s.Ref != "" && s.Ref != "Policy" {
		if _, done := defs[s.Ref]; !done {
			defs[s.Ref] = map[string]any{} // placeholder against cycles
			defs[s.Ref] = objectSchema(s, defs)
		}
		out := map[string]any{"$ref": "#/$defs/" + s.Ref}
		return out
	}
	if s.Type == "object" {
		return objectSchema(s, defs)
	}
	out := map[string]any{}
	if s.Doc != "" {
		out["description"] = s.Doc
	}
	switch s.Type {
	case "":
		if len(s.OneOf) > 0 {
			var choices []any
			for _, c := range s.OneOf {
				choices = append(choices, schemaOf(c, defs))
			}
			out["anyOf"] = choices
		}
	case "map":
		out["type"] = "object"
		out["additionalProperties"] = schemaOf(s.Values, defs)
	case "array":
		out["type"] = "array"
		out["items"] = schemaOf(s.Items, defs)
		if s.Min != nil {
			out["minItems"] = *s.Min
		}
	default:
		out["type"] = s.Type
		scalarSchema(s, out)
	}
	return out
}

func scalarSchema(s *Shape, out map[string]any) {
	if len(s.Enum) > 0 {
		var vals []any
		for _, e := range s.Enum {
			vals = append(vals, typedValue(s.Type, e))
		}
		out["enum"] = vals
		return
	}
	switch s.Type {
	case "string":
		if !s.AllowEmpty {
			out["minLength"] = 1
		}
		if s.Pattern != "" {
			out["pattern"] = s.Pattern
		}
	case "integer":
		if s.Min != nil {
			out["minimum"] = *s.Min
		}
		if s.Max != nil {
			out["maximum"] = *s.Max
		}
	}
}

// typedValue is an enum value as the JSON type of its shape.
func typedValue(typ, v string) any {
	switch typ {
	case "integer", "number":
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return f
		}
	case "boolean":
		return v == "true"
	}
	return v
}

func objectSchema(s *Shape, defs map[string]any) map[string]any {
	props := map[string]any{}
	var required []string
	for _, f := range s.Fields {
		props[f.Name] = schemaOf(f.Shape, defs)
		if f.Required {
			required = append(required, f.Name)
		}
	}
	out := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if s.Doc != "" {
		out["description"] = s.Doc
	}
	if len(required) > 0 {
		out["required"] = required
	}
	return out
}
