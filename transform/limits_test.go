package transform

import (
	"strconv"
	"strings"
	"testing"
)

// amplifyingJSON returns a JSON document of about size bytes whose XML is
// about keyLen times larger: {"kk…k":[0,0,…]}. Every 2-byte item becomes an
// element named after the member, so the name is written twice per item
// (the case of issue 12: 14 KB in, megabytes out).
func amplifyingJSON(keyLen, size int) []byte {
	items := max(1, (size-keyLen-8)/2)
	return []byte(`{"` + strings.Repeat("k", keyLen) + `":[0` + strings.Repeat(",0", items-1) + `]}`)
}

// manyElementsXML returns an XML document of n empty elements in a root.
func manyElementsXML(n int) []byte {
	return []byte("<r>" + strings.Repeat("<a/>", n) + "</r>")
}

// TestAmplificationIsBounded is the regression test of issue 12 item 2,
// through the package functions (the service's default 1 MiB body bound,
// so at most 4 MiB of output). Before the bounds, 14 KB of JSON with a
// 1000-byte member name became 13 MB of XML, and 800 KB of XML holding
// 200 000 empty elements became a tree of about 16 MB on the heap.
func TestAmplificationIsBounded(t *testing.T) {
	const bound = 4 << 20
	jsonToXML := func(in []byte) ([]byte, error) { return JSONToXML(in, "") }
	tests := []struct {
		name    string
		convert func([]byte) ([]byte, error)
		in      []byte
	}{
		{"json-to-xml: a member name repeated per array item", jsonToXML, amplifyingJSON(1000, 14<<10)},
		{"json-to-xml: a long member name", jsonToXML, amplifyingJSON(7000, 14<<10)},
		{"xml-to-json: 200 000 elements", XMLToJSON, manyElementsXML(200_000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.convert(tt.in)
			if err == nil || len(out) > bound {
				t.Fatalf("%d bytes converted to %d bytes (err %v), want an error and no output over %d", len(tt.in), len(out), err, bound)
			}
		})
	}
}

// TestLimits: each bound stops the conversion with a LimitError, and the
// output buffer never held (or allocated) more than the output bound.
func TestLimits(t *testing.T) {
	small := Limits{MaxOutputBytes: 4096, MaxElements: 100, MaxNameBytes: 16}
	roomy := small
	roomy.MaxElements = MaxElements
	long := strings.Repeat("n", 17)
	tests := []struct {
		name, dir, in, want string
		lim                 Limits
	}{
		{"json output", "json", string(amplifyingJSON(16, 600)), "exceed 4096 bytes of XML", roomy},
		{"json output, one long string", "json", `"` + strings.Repeat("<", 2000) + `"`, "exceed 4096 bytes of XML", roomy},
		{"json elements", "json", "[" + strings.Repeat("0,", 100) + "0]", "more than 100 XML elements", small},
		{"json member name", "json", `{"` + long + `":1}`, "member name has 17 bytes", small},
		{"json keyed member name", "json", `{"1` + long + `":1}`, "member name has 18 bytes", small},
		{"xml output", "xml", "<a>" + strings.Repeat("\"", 2100) + "</a>", "exceed 4096 bytes of JSON", small},
		{"xml elements", "xml", string(manyElementsXML(100)), "more than 100 XML elements", small},
		{"xml attributes", "xml", "<r" + attrs(100) + "/>", "more than 100 XML elements", small},
		{"xml element name", "xml", "<" + long + "/>", "element name has 17 bytes", small},
		{"xml attribute name", "xml", "<a " + long + `="1"/>`, "attribute name has 17 bytes", small},
		{"xml json:key", "xml", `<a><b json:key="` + long + `"/></a>`, "json:key has 17 bytes", small},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out *boundedBuffer
			var err error
			if tt.dir == "json" {
				out, err = tt.lim.jsonToXML([]byte(tt.in), "")
			} else {
				out, err = tt.lim.xmlToJSON([]byte(tt.in))
			}
			if !IsLimitError(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a LimitError containing %q", err, tt.want)
			}
			if len(out.buf) > out.max || cap(out.buf) > out.max || out.max > tt.lim.MaxOutputBytes+1 {
				t.Fatalf("output buffer held %d bytes in %d allocated, over the bound %d", len(out.buf), cap(out.buf), tt.lim.MaxOutputBytes)
			}
		})
	}
}

func attrs(n int) string {
	var b strings.Builder
	for i := range n + 1 {
		b.WriteString(" a" + strconv.Itoa(i) + `=""`)
	}
	return b.String()
}

// TestLimitsAtTheBound: a conversion exactly at every bound succeeds, one
// less on any bound fails; type hints and namespace declarations are not
// counted as attributes.
func TestLimitsAtTheBound(t *testing.T) {
	doc := `{"a":[1,"x",{"b":null}],"c d":true}`
	xml, err := JSONToXML([]byte(doc), "")
	if err != nil {
		t.Fatal(err)
	}
	json, err := XMLToJSON(xml)
	if err != nil {
		t.Fatal(err)
	}
	elements := strings.Count(string(xml), "<") - strings.Count(string(xml), "</") - 1 // start tags, minus the declaration
	for _, c := range []struct {
		name    string
		convert func(Limits) ([]byte, error)
		outLen  int
		maxName int // the longest name checked: a member name, or an element name
	}{
		{"json-to-xml", func(l Limits) ([]byte, error) { return l.JSONToXML([]byte(doc), "") }, len(xml), len("c d")},
		{"xml-to-json", func(l Limits) ([]byte, error) { return l.XMLToJSON(xml) }, len(json), len("member")},
	} {
		exact := Limits{MaxOutputBytes: c.outLen, MaxElements: elements, MaxNameBytes: c.maxName}
		if out, err := c.convert(exact); err != nil || len(out) != c.outLen {
			t.Errorf("%s within exact limits: %d bytes, %v; want %d bytes", c.name, len(out), err, c.outLen)
		}
		for _, tighten := range []func(*Limits){
			func(l *Limits) { l.MaxOutputBytes-- },
			func(l *Limits) { l.MaxElements-- },
			func(l *Limits) { l.MaxNameBytes-- },
		} {
			tight := exact
			tighten(&tight)
			if _, err := c.convert(tight); !IsLimitError(err) {
				t.Errorf("%s within %+v: %v, want a LimitError", c.name, tight, err)
			}
		}
	}
}

func TestLimitsFor(t *testing.T) {
	for _, tt := range []struct{ maxBody, wantOut int }{{0, 4 << 20}, {-1, 4 << 20}, {1000, 4000}, {1 << 20, 4 << 20}} {
		if got := LimitsFor(tt.maxBody); got != (Limits{MaxOutputBytes: tt.wantOut, MaxElements: MaxElements, MaxNameBytes: MaxNameBytes}) {
			t.Errorf("LimitsFor(%d) = %+v", tt.maxBody, got)
		}
	}
}
