package ir

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"
)

// TestHashIsMarshalSum pins the version id to the first six bytes of the
// SHA-256 of json.Marshal's encoding: ids stored by earlier releases must
// stay the ids of the same policy, or an upgrade would reload every Envoy.
func TestHashIsMarshalSum(t *testing.T) {
	configs := []*Config{
		{},
		{Gateways: []Gateway{{Name: "public", VirtualHosts: []VirtualHost{{Name: "any", Domains: []string{"*"},
			Routes: []Route{{Name: "web <&>", Match: Match{PathPrefix: "/é"}, Backend: "web", Timeout: 15 * time.Second}}}}}}},
	}
	for _, c := range configs {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if got, want := c.Hash(), hex.EncodeToString(sum[:6]); got != want {
			t.Errorf("Hash() = %s, want %s (sha256 of json.Marshal)", got, want)
		}
	}
}
