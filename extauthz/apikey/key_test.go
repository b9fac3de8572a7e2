package apikey

import (
	"bytes"
	"crypto/rand"
	"errors"
	"hash/crc32"
	"io"
	"strings"
	"testing"
)

func TestGenerateParses(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		key, id, err := Generate(rand.Reader)
		if err != nil {
			t.Fatalf("Generate: %v", err)
		}
		if len(key) != keyLen || !strings.HasPrefix(key, "tg_"+id+"_") {
			t.Fatalf("key %q with id %q: bad shape", key, id)
		}
		got, err := Parse(key)
		if err != nil || got != id {
			t.Fatalf("Parse(Generate()) = %q, %v; want %q, nil", got, err, id)
		}
		if seen[key] {
			t.Fatalf("Generate returned %q twice", key)
		}
		seen[key] = true
	}
}

func TestGenerateIsDeterministicInItsRandomness(t *testing.T) {
	src := bytes.Repeat([]byte{7, 250, 61, 62, 123, 255, 0, 200}, 20)
	k1, id1, err1 := Generate(bytes.NewReader(src))
	k2, id2, err2 := Generate(bytes.NewReader(src))
	if err1 != nil || err2 != nil {
		t.Fatalf("Generate: %v, %v", err1, err2)
	}
	if k1 != k2 || id1 != id2 {
		t.Errorf("same randomness, different keys: %q, %q", k1, k2)
	}
	// Bytes >= 248 are rejected (uniformity), so 250 and 255 never show up
	// as base62[250%62] = 'C' or base62[255%62] = 'H'.
	if strings.ContainsAny(k1[idStart:secretEnd], "CH") {
		t.Errorf("key %q uses a rejected byte", k1)
	}
}

func TestGenerateRandomnessFailure(t *testing.T) {
	tests := []struct {
		name string
		src  io.Reader
	}{
		{"error", errReader{}},
		{"short", bytes.NewReader([]byte{1, 2, 3})},
		{"only rejected bytes", bytes.NewReader(bytes.Repeat([]byte{255}, 500))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := Generate(tt.src); err == nil {
				t.Error("Generate succeeded, want an error")
			}
		})
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("entropy exhausted") }

// validKey is a well-formed key (of no store).
const validKey = "tg_27rPErmv_CMeFbET4B3Dwza7yUxQawqTycmfUq0On_3WwyLt"

func TestParse(t *testing.T) {
	tests := []struct {
		name   string
		key    string
		wantID string // "" means ErrMalformed
	}{
		{"valid", validKey, "27rPErmv"},
		{"empty", "", ""},
		{"prefix only", "tg_", ""},
		{"wrong prefix", "tx" + validKey[2:], ""},
		{"upper-case prefix", "TG" + validKey[2:], ""},
		{"too short", validKey[:keyLen-1], ""},
		{"too long", validKey + "0", ""},
		{"trailing newline", validKey[:keyLen-1] + "\n", ""},
		{"separator moved", validKey[:idEnd] + "x" + validKey[idEnd+1:], ""},
		{"second separator moved", validKey[:secretEnd] + "0" + validKey[secretEnd+1:], ""},
		{"non-base62 in id", validKey[:5] + "-" + validKey[6:], ""},
		{"non-base62 in secret", validKey[:20] + "+" + validKey[21:], ""},
		{"non-base62 in checksum", validKey[:keyLen-1] + "/", ""},
		{"non-ASCII", validKey[:20] + "\xc3" + validKey[21:], ""},
		{"checksum of another key", validKey[:keyLen-6] + "000000", ""},
		{"secret changed", validKey[:20] + "Z" + validKey[21:], ""},
		{"id changed", "tg_27rPErmw" + validKey[idEnd:], ""},
		{"bearer-like", "Bearer " + validKey[:keyLen-7], ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := Parse(tt.key)
			if tt.wantID == "" {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("Parse = %q, %v; want ErrMalformed", id, err)
				}
				if tt.key != "" && strings.Contains(err.Error(), tt.key) {
					t.Errorf("error %q contains the key", err)
				}
				return
			}
			if err != nil || id != tt.wantID {
				t.Fatalf("Parse = %q, %v; want %q, nil", id, err, tt.wantID)
			}
		})
	}
}

// TestParseDetectsEverySubstitution: CRC-32 catches every error burst of
// up to 32 bits, so any one-character change of a valid key is rejected.
func TestParseDetectsEverySubstitution(t *testing.T) {
	for range 5 {
		key, _, err := Generate(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		for i := idStart; i < keyLen; i++ {
			for c := range 256 {
				if byte(c) == key[i] {
					continue
				}
				mutated := key[:i] + string([]byte{byte(c)}) + key[i+1:]
				if _, err := Parse(mutated); err == nil {
					t.Fatalf("Parse accepted %q, a one-character change of %q", mutated, key)
				}
			}
		}
	}
}

// FuzzParse: Parse never panics, and what it accepts has the key's shape
// and re-parses to the same id. Seeds are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add(validKey)
	f.Fuzz(func(t *testing.T, key string) {
		id, err := Parse(key)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse error %v does not wrap ErrMalformed", err)
			}
			if id != "" {
				t.Fatalf("Parse returned id %q with an error", id)
			}
			return
		}
		if len(key) != keyLen || key[idStart:idEnd] != id || !strings.HasPrefix(key, keyPrefix) || !validID(id) {
			t.Fatalf("Parse accepted %q with id %q", key, id)
		}
		if crc32.ChecksumIEEE([]byte(key[:bodyLen])) != decodeBase62(t, key[secretEnd+1:]) {
			t.Fatalf("Parse accepted %q with a wrong checksum", key)
		}
	})
}

// decodeBase62 is the inverse of appendChecksum, written independently.
func decodeBase62(t *testing.T, s string) uint32 {
	var n uint64
	for i := range len(s) {
		n = n*62 + uint64(strings.IndexByte(base62, s[i]))
	}
	if n > 1<<32-1 {
		t.Fatalf("checksum %q is out of range", s)
	}
	return uint32(n)
}

func TestChecksumMatchesCRC32(t *testing.T) {
	for _, s := range []string{"", "a", validKey[:bodyLen], strings.Repeat("\xff", 100)} {
		if got, want := checksum(s), crc32.ChecksumIEEE([]byte(s)); got != want {
			t.Errorf("checksum(%q) = %#x, want %#x", s, got, want)
		}
	}
}
