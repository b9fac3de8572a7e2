package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Severity tells whether a Diagnostic blocks the policy (an error) or is
// only advice (a warning).
type Severity int

// The severities. The zero value is invalid so a forgotten field is visible.
const (
	SeverityError Severity = iota + 1
	SeverityWarning
)

// String returns "error", "warning", or "invalid" for any other value.
func (s Severity) String() string {
	switch s {
	case SeverityError:
		return "error"
	case SeverityWarning:
		return "warning"
	default:
		return "invalid"
	}
}

// MarshalText encodes the severity as its String, so JSON carries "error"
// or "warning" rather than a number.
func (s Severity) MarshalText() ([]byte, error) {
	return []byte(s.String()), nil
}

// Range is the place in a policy file that a Diagnostic is about. Line and
// Column are 1-based; zero means unknown (e.g. a policy built in Go code).
type Range struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
}

// String returns "file:line:col", leaving out the unknown parts.
func (r Range) String() string {
	parts := make([]string, 0, 3)
	if r.File != "" {
		parts = append(parts, r.File)
	}
	if r.Line > 0 {
		parts = append(parts, strconv.Itoa(r.Line))
		if r.Column > 0 {
			parts = append(parts, strconv.Itoa(r.Column))
		}
	}
	return strings.Join(parts, ":")
}

// Diagnostic is one problem found in a policy. Summary states the problem,
// Detail how to fix it. Path is the field path in the merged policy, e.g.
// "routes[2].match.pathRegex", with 0-based indices into the merged lists.
type Diagnostic struct {
	Severity Severity `json:"severity"`
	Summary  string   `json:"summary"`
	Detail   string   `json:"detail,omitempty"`
	Path     string   `json:"path,omitempty"`
	Range    Range    `json:"range"`
	// Omitted is set on the entries that end a capped list (see Capped):
	// how many more diagnostics of this severity were found but left out.
	Omitted int `json:"omitted,omitempty"`
}

// String formats the diagnostic on one line, compiler style:
//
//	policy.yaml:12:7: error: routes[2].match.pathRegex: invalid regex "(": ...; fix: ...
func (d Diagnostic) String() string {
	var b strings.Builder
	if r := d.Range.String(); r != "" {
		b.WriteString(r)
		b.WriteString(": ")
	}
	b.WriteString(d.Severity.String())
	b.WriteString(": ")
	if d.Path != "" {
		b.WriteString(d.Path)
		b.WriteString(": ")
	}
	b.WriteString(d.Summary)
	if d.Detail != "" {
		b.WriteString("; fix: ")
		b.WriteString(d.Detail)
	}
	return b.String()
}

// Diagnostics is a list of problems, in the order they were found.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Count returns how many diagnostics of severity s were found, counting
// those a capped list left out.
func (ds Diagnostics) Count(s Severity) int {
	n := 0
	for _, d := range ds {
		if d.Severity == s {
			n += max(1, d.Omitted)
		}
	}
	return n
}

// MaxShownDiagnostics is how many diagnostics Build returns at most, plus
// one entry per severity saying how many more it left out.
const MaxShownDiagnostics = 100

// Capped returns ds when it holds at most n diagnostics. Otherwise it keeps
// n of them, in order, errors first (the first n errors, then the first
// warnings while room is left), and appends one entry per severity with
// omissions, whose Omitted says how many were left out and whose Range is
// the first left-out one's.
func (ds Diagnostics) Capped(n int) Diagnostics {
	if len(ds) <= n {
		return ds
	}
	room := map[Severity]int{SeverityError: n}
	room[SeverityWarning] = max(0, n-len(ds.Errors()))
	out := make(Diagnostics, 0, n+2)
	var left [2]*Diagnostic
	omitted := [2]int{}
	for i, d := range ds {
		if room[d.Severity] > 0 && len(out) < n {
			room[d.Severity]--
			out = append(out, d)
			continue
		}
		k := 0
		if d.Severity != SeverityError {
			k = 1
		}
		if left[k] == nil {
			left[k] = &ds[i]
		}
		omitted[k]++
	}
	for k, first := range left {
		if first != nil {
			out = append(out, omittedEntry(*first, omitted[k]))
		}
	}
	return out
}

func omittedEntry(first Diagnostic, n int) Diagnostic {
	return Diagnostic{
		Severity: first.Severity,
		Summary:  fmt.Sprintf("%d more %ss not shown (only the first %d diagnostics are)", n, first.Severity, MaxShownDiagnostics),
		Detail:   "fix the ones shown and validate again",
		Range:    first.Range,
		Omitted:  n,
	}
}

// Errors returns the error diagnostics only.
func (ds Diagnostics) Errors() Diagnostics {
	return ds.filter(SeverityError)
}

// Warnings returns the warning diagnostics only.
func (ds Diagnostics) Warnings() Diagnostics {
	return ds.filter(SeverityWarning)
}

func (ds Diagnostics) filter(s Severity) Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Severity == s {
			out = append(out, d)
		}
	}
	return out
}

// Err returns nil when there are no errors, and otherwise an error whose
// text lists every error diagnostic, one per line. Warnings are left out.
func (ds Diagnostics) Err() error {
	errs := ds.Errors()
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errors.New(errs[0].String())
	}
	lines := make([]string, 0, len(errs)+1)
	lines = append(lines, fmt.Sprintf("policy has %d errors:", errs.Count(SeverityError)))
	for _, d := range errs {
		lines = append(lines, "  "+d.String())
	}
	return errors.New(strings.Join(lines, "\n"))
}
