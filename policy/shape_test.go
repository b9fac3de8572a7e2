package policy

import "testing"

// TestDocumentShapeMatchesLoader builds the document shape: object panics
// when a shape and the loader's field table disagree on the field names.
func TestDocumentShapeMatchesLoader(t *testing.T) {
	s := DocumentShape()
	if s.Type != "object" || len(s.Fields) != 7 {
		t.Fatalf("document shape: %+v", s)
	}
}
