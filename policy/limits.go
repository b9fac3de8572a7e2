package policy

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// Limits bound a policy's raw YAML. Load checks them on the bytes, before
// the YAML parser builds anything: the parser's memory grows with the number
// of nodes times their nesting depth (an 80 KB file of nested flow lists
// took 2.5 GB), so it must never see an input outside these bounds.
type Limits struct {
	// MaxBytes bounds the size of all files together.
	MaxBytes int
	// MaxFiles bounds the number of files.
	MaxFiles int
	// MaxDepth bounds the nesting of lists and mappings, block and flow.
	MaxDepth int
	// MaxNodes bounds the scalars, lists and mappings of all files.
	MaxNodes int
	// MaxScalarBytes bounds one scalar (a key or a value).
	MaxScalarBytes int
	// MaxItems bounds the items of one list or the entries of one mapping.
	MaxItems int
}

// DefaultLimits returns the limits Load applies. They leave ample room for
// a 10,000-route policy (about 2.4 MB and 250,000 nodes) and are far below
// what costs the control plane more than a few hundred MB to parse.
func DefaultLimits() Limits {
	return Limits{
		MaxBytes:       8 << 20,
		MaxFiles:       1000,
		MaxDepth:       32,
		MaxNodes:       1_000_000,
		MaxScalarBytes: 1 << 20,
		MaxItems:       100_000,
	}
}

// checkLimits checks files against lim, in order, and returns one error
// diagnostic per file that breaks a limit (the first break in that file),
// or nil. A file that breaks one is not parsed; Load marks the policy
// partial. The byte and node budgets are shared by all files, so once they
// are spent the remaining files are refused too.
func checkLimits(files []File, lim Limits) []*Diagnostic {
	out := make([]*Diagnostic, len(files))
	if len(files) > lim.MaxFiles {
		d := limitDiagnostic(files[lim.MaxFiles].Name, 1, 1,
			fmt.Sprintf("the policy has %d files, more than the limit of %d", len(files), lim.MaxFiles),
			"merge files: a policy directory may hold at most that many .yaml files")
		out[lim.MaxFiles] = &d
		return out
	}
	bytes, nodes := 0, 0
	for i, f := range files {
		bytes += len(f.Content)
		if bytes > lim.MaxBytes {
			d := limitDiagnostic(f.Name, 1, 1,
				fmt.Sprintf("the policy is larger than the limit of %d bytes (%d bytes so far, with this file)", lim.MaxBytes, bytes),
				"split the gateway's policy across control planes or shrink it: "+
					"the limit bounds the control plane's memory")
			out[i] = &d
			continue
		}
		if d := checkText(f); d != nil {
			out[i] = d
			continue
		}
		sc := newPrescanner(f.Content, lim, lim.MaxNodes-nodes)
		if err := sc.run(); err != nil {
			d := limitDiagnostic(f.Name, err.line, err.column, err.summary, err.fix)
			out[i] = &d
		}
		nodes += sc.nodes
	}
	return out
}

// checkText refuses a file that is not UTF-8 text, holds a NUL byte or
// ends a line with a bare CR: the parser would silently turn a bad byte
// into U+FFFD, and the prescan counts lines by LF.
func checkText(f File) *Diagnostic {
	b := f.Content
	if utf8.Valid(b) && bytes.IndexByte(b, 0) < 0 && bytes.IndexByte(b, '\r') < 0 {
		return nil // what scanText accepts, at a fraction of its cost
	}
	return scanText(f)
}

// scanText is checkText rune by rune, finding where the first problem is.
func scanText(f File) *Diagnostic {
	b := f.Content
	line, col := 1, 1
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && size == 1:
			d := limitDiagnostic(f.Name, line, col, fmt.Sprintf("invalid UTF-8 byte 0x%02x", b[0]),
				"save the file as UTF-8")
			return &d
		case r == 0:
			d := limitDiagnostic(f.Name, line, col, "NUL byte in the file",
				"remove it: a policy is text")
			return &d
		case r == '\r' && (len(b) == 1 || b[1] != '\n'):
			d := limitDiagnostic(f.Name, line, col, "a carriage return (CR) not followed by a line feed",
				"use LF or CRLF line ends")
			return &d
		case r == '\n':
			line, col = line+1, 1
		default:
			col++
		}
		b = b[size:]
	}
	return nil
}

func limitDiagnostic(file string, line, col int, summary, fix string) Diagnostic {
	return Diagnostic{
		Severity: SeverityError,
		Summary:  summary,
		Detail:   fix + "; nothing else in this file was checked",
		Range:    Range{File: file, Line: line, Column: col},
	}
}
