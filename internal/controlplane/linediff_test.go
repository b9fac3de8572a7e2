package controlplane

import (
	"strings"
	"testing"
)

func TestLineDiff(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want string
	}{
		{"same", "x\ny\nz", "x\ny\nz", ""},
		{"changed middle", "a\nb\nc\nd\ne", "a\nb\nX\nd\ne", " b\n-c\n+X\n d\n"},
		{"added end", "a\nb", "a\nb\nc", " b\n+c\n"},
		{"removed start", "a\nb\nc", "b\nc", "-a\n b\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := lineDiff(strings.Split(tt.a, "\n"), strings.Split(tt.b, "\n"))
			if got != tt.want {
				t.Errorf("lineDiff() =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}
