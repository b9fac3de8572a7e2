package transform

import (
	"strconv"
	"strings"
	"testing"
)

// benchDoc is a ~10 KB JSON document: 100 records of mixed values.
func benchDoc() []byte {
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for i := range 100 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"id":` + strconv.Itoa(i) + `,"name":"item <` + strconv.Itoa(i) + `>","price":12.50,"tags":["a","b"],"ok":true,"note":null}`)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

func BenchmarkJSONToXML(b *testing.B) {
	in := benchDoc()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := JSONToXML(in, ""); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkXMLToJSON(b *testing.B) {
	in, err := JSONToXML(benchDoc(), "")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := XMLToJSON(in); err != nil {
			b.Fatal(err)
		}
	}
}
