// Package contract holds what Tollgate's xDS translator and its body
// transformation service (an Envoy external processor) must agree on: the
// Envoy cluster of the service and the per-route settings Envoy sends as
// gRPC initial metadata on every stream (ExtProcPerRoute overrides), so the
// service needs no policy table of its own.
//
// It imports nothing outside the standard library, so both sides can
// depend on it without depending on each other.
package contract

import (
	"fmt"
	"strconv"
	"strings"
)

// ClusterName is the Envoy cluster of the external processing service.
const ClusterName = "tollgate_extproc"

// MetadataKey is the gRPC metadata key carrying a route's Settings.
const MetadataKey = "x-tollgate-transform"

// Conversions.
const (
	JSONToXML = "json-to-xml"
	XMLToJSON = "xml-to-json"
)

// Settings are one route's transformation settings.
type Settings struct {
	// Request and Response are the conversions of the request and response
	// bodies: JSONToXML, XMLToJSON or "" (none).
	Request, Response string
	// Root names the root element of json-to-xml output.
	Root string
	// MaxBodyBytes bounds a body the service converts.
	MaxBodyBytes int
}

// Encode writes s as "request=C;response=C;root=R;max=N", leaving out empty
// fields.
func (s Settings) Encode() string {
	var parts []string
	for _, kv := range [][2]string{{"request", s.Request}, {"response", s.Response}, {"root", s.Root}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	if s.MaxBodyBytes > 0 {
		parts = append(parts, "max="+strconv.Itoa(s.MaxBodyBytes))
	}
	return strings.Join(parts, ";")
}

// Decode parses what Encode wrote.
func Decode(v string) (Settings, error) {
	var s Settings
	for part := range strings.SplitSeq(v, ";") {
		if part == "" {
			continue
		}
		key, val, _ := strings.Cut(part, "=")
		switch key {
		case "request", "response":
			if val != JSONToXML && val != XMLToJSON {
				return Settings{}, fmt.Errorf("%s: unknown conversion %q", key, val)
			}
			if key == "request" {
				s.Request = val
			} else {
				s.Response = val
			}
		case "root":
			s.Root = val
		case "max":
			n, err := strconv.Atoi(val)
			if err != nil || n <= 0 {
				return Settings{}, fmt.Errorf("max: %q is not a positive byte count", val)
			}
			s.MaxBodyBytes = n
		default:
			return Settings{}, fmt.Errorf("unknown setting %q", key)
		}
	}
	return s, nil
}

// PlainName reports whether s is used as an XML element name as is: an
// ASCII letter or "_", then ASCII letters, digits, "_", "-" or ".", not
// starting with "xml" in any case (reserved by XML). Root element names
// must be plain names.
func PlainName(s string) bool {
	if s == "" || len(s) >= 3 && strings.EqualFold(s[:3], "xml") {
		return false
	}
	for i := range len(s) {
		ch := s[i]
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch == '_':
		case i > 0 && (ch >= '0' && ch <= '9' || ch == '-' || ch == '.'):
		default:
			return false
		}
	}
	return true
}
