package contract

import (
	"strings"
	"testing"
)

func TestValidConsumer(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"acme", true}, {"a", true}, {"Team.ops_1@corp-x", true}, {strings.Repeat("a", MaxConsumerLen), true},
		{"", false}, {strings.Repeat("a", MaxConsumerLen+1), false}, {".acme", false}, {"-acme", false},
		{"a b", false}, {"a\tb", false}, {" ab", false}, {"a\u202eb", false}, {"a\u0085b", false},
		{"caf\u00e9", false}, {"a\xffb", false}, {"a:b", false}, {"a,b", false},
	} {
		if got := ValidConsumer(tt.in); got != tt.want {
			t.Errorf("ValidConsumer(%q) = %t, want %t", tt.in, got, tt.want)
		}
	}
}

func TestHeaderSafe(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"", true}, {"acme", true}, {"a\tb", true}, {"a\u202eb", true}, {"a\u0085b", true}, {"a\xffb", true},
		{"a\rb", false}, {"a\nb", false}, {"a\x00b", false}, {"a\x7fb", false}, {"a\x01b", false}, {"a\x1fb", false},
	} {
		if got := HeaderSafe(tt.in); got != tt.want {
			t.Errorf("HeaderSafe(%q) = %t, want %t", tt.in, got, tt.want)
		}
	}
}
