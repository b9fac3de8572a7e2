package envoymod

import (
	"encoding/json"
	"reflect"
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
