package policy

import "testing"

func TestClosest(t *testing.T) {
	fields := []string{"hosts", "path", "pathPrefix", "pathRegex", "methods", "headers"}
	tests := []struct {
		in    string
		cands []string
		want  string
	}{
		{in: "pathprefix", cands: fields, want: "pathPrefix"},
		{in: "pathRegx", cands: fields, want: "pathRegex"},
		{in: "host", cands: fields, want: "hosts"},
		{in: "method", cands: fields, want: "methods"},
		{in: "colour", cands: fields, want: ""},
		{in: "x", cands: []string{"y"}, want: ""},
		{in: "user-servce", cands: []string{"web", "user-service"}, want: "user-service"},
		{in: "a", cands: nil, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got, _ := closest(tt.in, tt.cands); got != tt.want {
				t.Errorf("closest(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestLevenshtein(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "", 3}, {"", "abc", 3}, {"kitten", "sitting", 3}, {"flaw", "lawn", 2}, {"same", "same", 0},
	}
	for _, tt := range tests {
		if got := levenshtein(tt.a, tt.b); got != tt.want {
			t.Errorf("levenshtein(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
