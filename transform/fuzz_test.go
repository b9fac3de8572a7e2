package transform

import (
	"bytes"
	"encoding/json/jsontext"
	"encoding/xml"
	"io"
	"testing"
)

// fuzzLimits are the limits of a route whose body bound is the input's size
// plus extra (the service converts no body over its route's bound).
func fuzzLimits(in []byte, extra uint16) Limits {
	return LimitsFor(len(in) + int(extra))
}

// checkBounded fails unless the conversion of in ended within l: the
// output buffer never held or allocated more than the output bound (one
// byte more for the JSON encoder's newline, trimmed), and an error is an
// InputError or a LimitError.
func checkBounded(t *testing.T, in []byte, l Limits, out *boundedBuffer, err error) {
	t.Helper()
	if len(out.buf) > l.MaxOutputBytes+1 || cap(out.buf) > l.MaxOutputBytes+1 {
		t.Fatalf("%q within %+v: output buffer held %d bytes in %d allocated", in, l, len(out.buf), cap(out.buf))
	}
	if err != nil && !IsInputError(err) && !IsLimitError(err) {
		t.Fatalf("%q: neither an InputError nor a LimitError: %v", in, err)
	}
}

// FuzzJSONToXML: for any input and route bound, JSONToXML never panics,
// never holds more output than the bound, fails only with an InputError or
// a LimitError, and on success writes at most the bound of well-formed XML.
// The corpus (testdata/fuzz/FuzzJSONToXML) holds the amplification case.
func FuzzJSONToXML(f *testing.F) {
	for _, s := range roundTripSeeds {
		f.Add([]byte(s), uint16(0))
	}
	f.Add(amplifyingJSON(100, 1000), uint16(0))
	f.Fuzz(func(t *testing.T, in []byte, extra uint16) {
		l := fuzzLimits(in, extra)
		out, err := l.jsonToXML(in, "")
		checkBounded(t, in, l, out, err)
		if err != nil {
			return
		}
		if len(out.buf) > l.MaxOutputBytes {
			t.Fatalf("%q: %d bytes of XML, over the bound %d", in, len(out.buf), l.MaxOutputBytes)
		}
		dec := xml.NewDecoder(bytes.NewReader(out.buf))
		for {
			if _, err := dec.Token(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("JSONToXML(%q) is not well-formed XML: %v\n%s", in, err, out.buf)
			}
		}
	})
}

// FuzzXMLToJSON: for any input and route bound, XMLToJSON never panics,
// never holds more output than the bound, fails only with an InputError or
// a LimitError, and on success writes at most the bound of valid JSON.
func FuzzXMLToJSON(f *testing.F) {
	for _, s := range roundTripSeeds {
		x, err := JSONToXML([]byte(s), "")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(x, uint16(0))
	}
	f.Add(manyElementsXML(50), uint16(0))
	f.Add([]byte(`<a b="1" c="&#34;&#34;&#34;"><b/><b/><member json:key="@b">x</member></a>`), uint16(0))
	f.Fuzz(func(t *testing.T, in []byte, extra uint16) {
		l := fuzzLimits(in, extra)
		out, err := l.xmlToJSON(in)
		checkBounded(t, in, l, out, err)
		if err != nil {
			return
		}
		got := bytes.TrimSuffix(out.buf, []byte("\n"))
		if len(got) > l.MaxOutputBytes || !jsontext.Value(got).IsValid() {
			t.Fatalf("XMLToJSON(%q) = %d bytes (bound %d), valid JSON %v: %s", in, len(got), l.MaxOutputBytes, jsontext.Value(got).IsValid(), got)
		}
	})
}
