package policy

import (
	"fmt"
	"os"
	"testing"
)

// base is a valid three-line policy prefix: gateway "gw", backend "be".
// Cases append a routes list starting on line 4.
const base = `version: 1
gateways: [{name: gw, listeners: [{name: http, port: 8080}]}]
backends: [{name: be, endpoints: ["10.0.0.1:80"]}]
`

// buildString builds one file named p.yaml.
func buildString(src string) Diagnostics {
	_, ds := Build([]File{{Name: "p.yaml", Content: []byte(src)}})
	return ds
}

// render formats diagnostics compactly for exact comparison:
// "line:col severity path: summary".
func render(ds Diagnostics) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%d:%d %s %s: %s", d.Range.Line, d.Range.Column, d.Severity, d.Path, d.Summary))
	}
	return out
}

// renderFiles is render with the file name in front.
func renderFiles(ds Diagnostics) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s:%d:%d %s: %s", d.Range.File, d.Range.Line, d.Range.Column, d.Path, d.Summary))
	}
	return out
}

func readFiles(t *testing.T, path string) []File {
	t.Helper()
	files, err := ReadPath(path)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
