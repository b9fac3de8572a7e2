package envoymod

import (
	"encoding/json"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// exceptionSeeds are tables as json.Marshal writes them, and texts it
// never writes (the scanner must leave those to encoding/json).
var exceptionSeeds = []string{
	`[]`, `[{}]`,
	`[{"id":"k1","revoked":true},{"id":"k2","tier":"pro","roles":["user","reader"],"exp":1700000000}]`,
	`[{"id":"k1","roles":[]}]`, `[{"exp":-0,"id":""}]`, `[{"id":"a","id":"b"}]`, `[{"ID":"k1"}]`,
	`[{"id":"k1","other":1}]`, `[ {"id":"k1"}]`, `[{"id":"k\u0031"}]`, `[{"id":"é"}]`, `[{"exp":1.5}]`,
	`[{"exp":01}]`, `[{"exp":9223372036854775808}]`, `[{"revoked":null}]`, `null`, `[{"roles":["a",]}]`,
	`[{"id":"k1"}]x`, `[{"id":"k1"},]`, `{"id":"k1"}`, `[{"tier":"a\"b"}]`, `[{"roles":null}]`,
}

// FuzzDecodeExceptions: whatever decodeExceptions accepts, encoding/json
// decodes to exactly the same table.
func FuzzDecodeExceptions(f *testing.F) {
	for _, s := range exceptionSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := decodeExceptions(b)
		if !ok {
			return
		}
		var want []KeyException
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("%q: accepted, encoding/json refuses it: %v", b, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: %#v, encoding/json %#v", b, got, want)
		}
	})
}

// TestDecodeFilterConfig: DecodeFilterConfig decodes as json.Unmarshal,
// through the scanner or encoding/json, and refuses what it refuses.
func TestDecodeFilterConfig(t *testing.T) {
	docs := []string{`{"keyHeader":"x"}`, `{"keyHeader":"x","keys":null}`, `{"keys":{"fresh":true}}`, `[]`, `{"keys":1}`}
	for _, exc := range exceptionSeeds {
		docs = append(docs, `{"jwt":[],"keyHeader":"x","cacheSize":5,"keys":{"publicKey":"pk","namespace":"ns",`+
			`"fresh":true,"epoch":"e1","exceptions":`+exc+`}}`)
	}
	for _, doc := range docs {
		got, gotErr := DecodeFilterConfig([]byte(doc))
		var want FilterConfig
		wantErr := json.Unmarshal([]byte(doc), &want)
		if (gotErr != nil) != (wantErr != nil) {
			t.Errorf("%s: error %v, encoding/json's %v", doc, gotErr, wantErr)
			continue
		}
		if gotErr == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %#v, want %#v", doc, got, want)
		}
	}
}

// TestDecodeExceptionsReadsMarshal: the scanner reads what json.Marshal
// writes of a table of key ids, tiers and roles (the common case), and
// leaves text with escapes to encoding/json.
func TestDecodeExceptionsReadsMarshal(t *testing.T) {
	table := []KeyException{{ID: "k000000000000000000001", Revoked: true},
		{ID: "k000000000000000000002", Tier: "pro", Roles: []string{"user", "reader:x"}, ExpiresAt: 1700000000},
		{ID: "k000000000000000000003", ExpiresAt: -5}}
	b, err := json.Marshal(table)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := decodeExceptions(b); !ok || !reflect.DeepEqual(got, table) {
		t.Fatalf("%s: %v %#v", b, ok, got)
	}
	b, err = json.Marshal([]KeyException{{ID: "k1", Roles: []string{"a<b"}}}) // written \u003c
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := decodeExceptions(b); ok || !strings.Contains(string(b), `\u003c`) {
		t.Fatalf("%s: the scanner read an escape", b)
	}
}

// repeatedExceptionDocs repeat the exceptions field (or the keys object):
// encoding/json decodes the second array into the elements of the first,
// so the first's revocation stays; json.Marshal never writes these, but
// DecodeFilterConfig must not read a table without that revocation.
var repeatedExceptionDocs = []string{
	`{"keys":{"publicKey":"pk","fresh":true,"epoch":"e","exceptions":[{"id":"k1","revoked":true}],` +
		`"exceptions":[{"id":"k1"}]}}`,
	`{"keys":{"publicKey":"pk","fresh":true,"epoch":"e","exceptions":[{"id":"k1","revoked":true}]},` +
		`"keys":{"exceptions":[{"id":"k1"}]}}`,
	`{"keys":{"exceptions":[{"id":"k1","revoked":true}],"exceptions":null,"exceptions":[{"id":"k1"}]}}`,
	`{"keys":{"exceptions":[{"id":"k1","revoked":true}]},"keys":null,"keys":{"exceptions":[{"id":"k1"}]}}`,
	`{"keys":{"exceptions":[{"id":"k1","revoked":true}]},"keys":{"fresh":true}}`,
	`{"keys":{"Exceptions":[{"id":"k1","tier":"pro"}],"exceptions":[{"id":"k1"}]}}`,
}

// TestDecodeFilterConfigRepeatedExceptions: a repeated exceptions field
// decodes as encoding/json decodes it (the revocation kept).
func TestDecodeFilterConfigRepeatedExceptions(t *testing.T) {
	for _, doc := range repeatedExceptionDocs {
		got, gotErr := DecodeFilterConfig([]byte(doc))
		var want FilterConfig
		wantErr := json.Unmarshal([]byte(doc), &want)
		if gotErr != nil || wantErr != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %#v (%v), encoding/json %#v (%v)", doc, got.Keys, gotErr, want.Keys, wantErr)
		}
	}
}

// FuzzDecodeFilterConfig: DecodeFilterConfig accepts what json.Unmarshal
// accepts, with the same FilterConfig.
func FuzzDecodeFilterConfig(f *testing.F) {
	for _, s := range exceptionSeeds {
		f.Add([]byte(`{"keys":{"publicKey":"pk","fresh":true,"epoch":"e1","exceptions":` + s + `}}`))
	}
	for _, s := range repeatedExceptionDocs {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, gotErr := DecodeFilterConfig(b)
		var want FilterConfig
		wantErr := json.Unmarshal(b, &want)
		if (gotErr != nil) != (wantErr != nil) {
			t.Fatalf("%q: error %v, encoding/json's %v", b, gotErr, wantErr)
		}
		if gotErr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: %#v, encoding/json %#v", b, got, want)
		}
	})
}

// TestDecodeExceptionsBracesInStrings: ids made of '{' (a 1 MB table of
// them) do not make the scanner reserve room for a million entries before
// reading one.
func TestDecodeExceptionsBracesInStrings(t *testing.T) {
	b := []byte(`[{"id":"` + strings.Repeat("{", 1<<20) + `"}]`)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, ok := decodeExceptions(b)
	runtime.ReadMemStats(&after)
	if !ok || len(got) != 1 || len(got[0].ID) != 1<<20 {
		t.Fatalf("ok %v, %d entries", ok, len(got))
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 40<<20 {
		t.Errorf("decoding 1 MB allocated %d MB, want at most 40", d>>20)
	}
}
