package policy

import (
	"encoding/json"
	"testing"
)

func TestDiagnosticString(t *testing.T) {
	tests := []struct {
		name string
		d    Diagnostic
		want string
	}{
		{
			name: "full",
			d: Diagnostic{
				Severity: SeverityError, Summary: `invalid regex "(": missing closing )`, Detail: "write valid RE2 syntax",
				Path: "routes[2].match.pathRegex", Range: Range{File: "policy.yaml", Line: 12, Column: 7},
			},
			want: `policy.yaml:12:7: error: routes[2].match.pathRegex: invalid regex "(": missing closing ); fix: write valid RE2 syntax`,
		},
		{
			name: "warning without detail",
			d:    Diagnostic{Severity: SeverityWarning, Summary: "unused", Path: "backends[0]", Range: Range{File: "a.yaml", Line: 3, Column: 1}},
			want: "a.yaml:3:1: warning: backends[0]: unused",
		},
		{
			name: "no position, no path",
			d:    Diagnostic{Severity: SeverityError, Summary: "broken"},
			want: "error: broken",
		},
		{
			name: "file only",
			d:    Diagnostic{Severity: SeverityError, Summary: "broken", Range: Range{File: "a.yaml"}},
			want: "a.yaml: error: broken",
		},
		{
			name: "zero severity",
			d:    Diagnostic{Summary: "x"},
			want: "invalid: x",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDiagnosticJSON(t *testing.T) {
	d := Diagnostic{Severity: SeverityWarning, Summary: "s", Path: "p", Range: Range{File: "f", Line: 1, Column: 2}}
	got, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"severity":"warning","summary":"s","path":"p","range":{"file":"f","line":1,"column":2}}`
	if string(got) != want {
		t.Errorf("JSON = %s, want %s", got, want)
	}
}

func TestDiagnosticsHelpers(t *testing.T) {
	e := Diagnostic{Severity: SeverityError, Summary: "e"}
	w := Diagnostic{Severity: SeverityWarning, Summary: "w"}
	tests := []struct {
		name      string
		ds        Diagnostics
		hasErrors bool
		errors    int
		warnings  int
		err       string
	}{
		{name: "none", ds: nil, err: "<nil>"},
		{name: "warning only", ds: Diagnostics{w}, warnings: 1, err: "<nil>"},
		{name: "one error", ds: Diagnostics{w, e}, hasErrors: true, errors: 1, warnings: 1, err: "error: e"},
		{name: "two errors", ds: Diagnostics{e, w, e}, hasErrors: true, errors: 2, warnings: 1, err: "policy has 2 errors:\n  error: e\n  error: e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := struct {
				hasErrors        bool
				errors, warnings int
				err              string
			}{tt.ds.HasErrors(), len(tt.ds.Errors()), len(tt.ds.Warnings()), errString(tt.ds.Err())}
			if got.hasErrors != tt.hasErrors || got.errors != tt.errors || got.warnings != tt.warnings || got.err != tt.err {
				t.Errorf("got %+v", got)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
