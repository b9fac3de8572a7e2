package certs

import "testing"

func TestIsInlinePEM(t *testing.T) {
	tests := []struct {
		v    string
		want bool
	}{
		{"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", true},
		{"  \n-----BEGIN PRIVATE KEY-----\n", true},
		{"Bag Attributes\n    localKeyID: 01 02\n-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n", true},
		{"Bag Attributes\n    localKeyID: 01 02\n", true}, // a line break: never a path, never quoted as one
		{"/etc/tollgate/tls/api.pem", false},
		{"certs/api.key", false},
	}
	for _, tt := range tests {
		if got := IsInlinePEM(tt.v); got != tt.want {
			t.Errorf("IsInlinePEM(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
}
