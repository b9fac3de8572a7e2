package policy

import "fmt"

// UnmarshalText decodes "error" or "warning", so diagnostics survive a JSON
// round trip through the admin API.
func (s *Severity) UnmarshalText(b []byte) error {
	switch string(b) {
	case "error":
		*s = SeverityError
	case "warning":
		*s = SeverityWarning
	default:
		return fmt.Errorf("unknown severity %q", b)
	}
	return nil
}
