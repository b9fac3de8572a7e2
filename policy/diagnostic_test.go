package policy

import (
	"encoding/json"
	"fmt"
	"strings"
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

// TestBuildCapsDiagnostics checks that Build returns at most
// MaxShownDiagnostics diagnostics plus a count of the rest, errors first
// (issue 14 fault 5: 200,000 diagnostics printed 32 MB).
func TestBuildCapsDiagnostics(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nobservability: {routeStats: false}\nroutes:\n")
	for i := range 5000 {
		fmt.Fprintf(&b, "  - {name: r%d, backend: b, nope: 1, auth: none}\n", i)
	}
	_, ds := Build([]File{{Name: "p.yaml", Content: []byte(b.String())}})
	if len(ds) > MaxShownDiagnostics+2 {
		t.Fatalf("Build returned %d diagnostics, want at most %d", len(ds), MaxShownDiagnostics+2)
	}
	if n := ds.Count(SeverityError); n < 5000 {
		t.Errorf("Count(error) = %d, want at least 5000 (the omitted ones included)", n)
	}
	last := ds[len(ds)-1]
	if last.Omitted == 0 || !strings.Contains(last.Summary, "more errors not shown") || last.Range.File != "p.yaml" {
		t.Errorf("last diagnostic %+v, want the count of the omitted errors", last)
	}
}

func TestDiagnosticsCapped(t *testing.T) {
	e := Diagnostic{Severity: SeverityError, Summary: "e"}
	w := Diagnostic{Severity: SeverityWarning, Summary: "w"}
	tests := []struct {
		name                    string
		ds                      Diagnostics
		want                    string // severities of the result, "E"/"W", then omitted counts
		errors, warnings, shown int
	}{
		{"under the cap", Diagnostics{w, e}, "WE", 1, 1, 2},
		{"errors first", Diagnostics{w, w, e, w, e}, "EE W3", 2, 3, 2},
		{"room for warnings", Diagnostics{w, e, w, w}, "WE W2", 1, 3, 2},
		{"too many errors", Diagnostics{e, e, e, w}, "EE E1 W1", 3, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.ds.Capped(2)
			var b strings.Builder
			for i, d := range got {
				if i == tt.shown {
					b.WriteString(" ")
				}
				b.WriteString(strings.ToUpper(d.Severity.String()[:1]))
				if d.Omitted > 0 {
					fmt.Fprintf(&b, "%d ", d.Omitted)
				}
			}
			if s := strings.TrimSpace(b.String()); s != tt.want {
				t.Errorf("Capped(2) = %q, want %q", s, tt.want)
			}
			if got.Count(SeverityError) != tt.errors || got.Count(SeverityWarning) != tt.warnings {
				t.Errorf("counts %d errors %d warnings, want %d %d", got.Count(SeverityError), got.Count(SeverityWarning), tt.errors, tt.warnings)
			}
		})
	}
}
