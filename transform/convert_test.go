package transform

import (
	"bytes"
	"encoding/json/jsontext"
	"strings"
	"testing"
)

const decl = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"
const rootOpen = `<root xmlns:json="urn:tollgate:json"`

func TestJSONToXML(t *testing.T) {
	tests := []struct {
		name, in, root, want string
	}{
		{"string", `"hi"`, "", rootOpen + `>hi</root>`},
		{"number literal kept", `1.50e3`, "", rootOpen + ` json:type="number">1.50e3</root>`},
		{"booleans and null", `{"t":true,"f":false,"n":null}`, "",
			rootOpen + `><t json:type="boolean">true</t><f json:type="boolean">false</f><n json:type="null"/></root>`},
		{"member order kept", `{"b":"1","a":"2"}`, "", rootOpen + `><b>1</b><a>2</a></root>`},
		{"member array repeats", `{"tag":["a","b"]}`, "", rootOpen + `><tag json:array="true">a</tag><tag json:array="true">b</tag></root>`},
		{"single item array marked", `{"tag":[1]}`, "", rootOpen + `><tag json:array="true" json:type="number">1</tag></root>`},
		{"empty member array", `{"tag":[]}`, "", rootOpen + `><tag json:type="array"/></root>`},
		{"empty object", `{}`, "", rootOpen + ` json:type="object"/>`},
		{"top-level array", `["x",{}]`, "", rootOpen + ` json:type="array"><item>x</item><item json:type="object"/></root>`},
		{"nested array", `{"m":[[1]]}`, "", rootOpen + `><m json:array="true" json:type="array"><item json:type="number">1</item></m></root>`},
		{"escaping", `{"s":"<a & 'b'>\"\t\r\n"}`, "", rootOpen + `><s>&lt;a &amp; &#39;b&#39;&gt;&#34;&#x9;&#xD;&#xA;</s></root>`},
		{"non-name key", `{"1 a":"x","":"y","xmlish":"z"}`, "",
			rootOpen + `><member json:key="1 a">x</member><member json:key="">y</member><member json:key="xmlish">z</member></root>`},
		{"custom root", `"x"`, "order", `<order xmlns:json="urn:tollgate:json">x</order>`},
		{"unicode", `"é😀"`, "", rootOpen + `>é😀</root>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := JSONToXML([]byte(tt.in), tt.root)
			if err != nil {
				t.Fatalf("JSONToXML(%s): %v", tt.in, err)
			}
			if string(got) != decl+tt.want {
				t.Errorf("JSONToXML(%s)\n got %s\nwant %s", tt.in, got, decl+tt.want)
			}
		})
	}
}

func TestJSONToXMLErrors(t *testing.T) {
	tests := []struct {
		name, in, root, want string
	}{
		{"truncated", `{"a":`, "", "invalid JSON"},
		{"trailing data", `{} {}`, "", "after the top-level value"},
		{"duplicate name", `{"a":1,"a":2}`, "", "invalid JSON"},
		{"invalid utf-8", "\"\xff\"", "", "invalid JSON"},
		{"control character", `"a\u0001"`, "", "cannot be represented in XML"},
		{"control character in key", `{"a\u0001":1}`, "", "cannot be represented in XML"},
		{"empty", ``, "", "invalid JSON"},
		{"too deep", strings.Repeat("[", MaxDepth+2) + strings.Repeat("]", MaxDepth+2), "", "deeper than"},
		{"bad root", `1`, "1root", "not an XML name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := JSONToXML([]byte(tt.in), tt.root)
			if err == nil || !IsInputError(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("JSONToXML(%q) = %v, want an InputError containing %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestXMLToJSON(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain text", `<a>hi</a>`, `"hi"`},
		{"empty element is empty string", `<a/>`, `""`},
		{"children", `<order><id>7</id><item>a</item><item>b</item></order>`, `{"id":"7","item":["a","b"]}`},
		{"attributes and text", `<p lang="en">hello</p>`, `{"@lang":"en","#text":"hello"}`},
		{"pretty printed", "<a>\n  <b>1</b>\n  <c>2</c>\n</a>\n", `{"b":"1","c":"2"}`},
		{"namespaces dropped", `<x:a xmlns:x="urn:x"><x:b>1</x:b></x:a>`, `{"b":"1"}`},
		{"cdata and comments", `<a><!-- c --><![CDATA[<raw>]]></a>`, `"<raw>"`},
		{"hints", `<r xmlns:json="urn:tollgate:json"><n json:type="number"> 2 </n><b json:type="boolean">false</b><z json:type="null"/><o json:type="object"/><e json:type="array"/><s json:type="string">3</s></r>`,
			`{"n":2,"b":false,"z":null,"o":{},"e":[],"s":"3"}`},
		{"undeclared hint prefix", `<r><t json:array="true">1</t></r>`, `{"t":["1"]}`},
		{"array container", `<r json:type="array" xmlns:json="urn:tollgate:json"><x>1</x><y>2</y></r>`, `["1","2"]`},
		{"prolog and doctype", `<?xml version="1.0"?><!DOCTYPE a><a>1</a>`, `"1"`},
		{"entities", `<a>&lt;&amp;&#65;</a>`, `"<&A"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := XMLToJSON([]byte(tt.in))
			if err != nil {
				t.Fatalf("XMLToJSON(%s): %v", tt.in, err)
			}
			if string(got) != tt.want {
				t.Errorf("XMLToJSON(%s)\n got %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestXMLToJSONErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"not xml", `{"a":1}`, "invalid XML"},
		{"unclosed", `<a><b></a>`, "invalid XML"},
		{"two roots", `<a/><b/>`, "more than one root"},
		{"text outside", `<a/>junk`, "outside the root"},
		{"empty", ``, "no root element"},
		{"bad number", `<a json:type="number">1x</a>`, "not a JSON number"},
		{"bad boolean", `<a json:type="boolean">yes</a>`, "not a boolean"},
		{"unknown hint", `<a json:type="date">1</a>`, "unknown json:type"},
		{"unknown entity", `<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>`, "invalid XML"},
		{"duplicate member", `<a x="1"><member json:key="@x">2</member></a>`, "cannot convert"},
		{"too deep", strings.Repeat("<a>", MaxDepth+1) + strings.Repeat("</a>", MaxDepth+1), "deeper than"},
		{"non-utf-8 encoding", `<?xml version="1.0" encoding="ISO-8859-1"?><a/>`, "invalid XML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := XMLToJSON([]byte(tt.in))
			if err == nil || !IsInputError(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("XMLToJSON(%q) = %v, want an InputError containing %q", tt.in, err, tt.want)
			}
		})
	}
}

// roundTripSeeds are documents of the documented subset.
var roundTripSeeds = []string{
	`{"id":7,"name":"Ann","tags":["a","b"],"one":[1],"none":[],"obj":{},"n":null,"ok":true,"f":-1.5e-3}`,
	`[1,[2,[3,[]]],{"a":[[],[{}]]},"x",null]`,
	`{"weird key":{"1":"x","":"","xmlns":"v","@a":"b","#text":"t"},"s":"<&>\"'\t\r\n é"}`,
	`"just a string"`, `0`, `{"a":{"a":{"a":[{"a":"a"}]}}}`, `{"item":["x"],"member":[{"item":1}]}`,
}

func TestRoundTrip(t *testing.T) {
	for _, s := range roundTripSeeds {
		checkRoundTrip(t, []byte(s))
	}
}

// FuzzRoundTrip: every JSON value XML can hold survives JSON → XML → JSON
// unchanged (compared in canonical form: members in order, exact number
// literals); XMLToJSON never panics on the produced or mutated XML.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range roundTripSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkRoundTrip(t, in)
		_, _ = XMLToJSON(in) // arbitrary bytes as XML: an error, never a panic
	})
}

func checkRoundTrip(t *testing.T, in []byte) {
	t.Helper()
	x, err := JSONToXML(in, "")
	if err != nil {
		if !IsInputError(err) && !IsLimitError(err) {
			t.Fatalf("JSONToXML(%q): neither an InputError nor a LimitError: %v", in, err)
		}
		return
	}
	back, err := XMLToJSON(x)
	if err != nil {
		t.Fatalf("XMLToJSON(JSONToXML(%q)) = %v\nXML: %s", in, err, x)
	}
	if want := compact(t, in); !bytes.Equal(back, want) {
		t.Fatalf("round trip changed the document\n  in %s\n xml %s\n out %s", want, x, back)
	}
}

// compact re-encodes a JSON value compactly, with strings in the encoder's
// canonical escaping, so equal documents compare equal byte for byte.
func compact(t *testing.T, in []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	enc := jsontext.NewEncoder(&out)
	dec := jsontext.NewDecoder(bytes.NewReader(in))
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			break
		}
		if err := enc.WriteToken(tok); err != nil {
			t.Fatalf("re-encode %q: %v", in, err)
		}
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n"))
}
