package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/policy"
)

// TestPushBodyDecoding checks that a push body must be exactly one JSON
// value within maxBody (issue 14 fault 6): trailing data is refused with
// 400 and nothing applied, an oversized body gets 413, with or without a
// Content-Length.
func TestPushBodyDecoding(t *testing.T) {
	valid, err := json.Marshal(PolicyRequest{Files: []store.File{{Name: "p.yaml", Content: validPolicy}}})
	if err != nil {
		t.Fatal(err)
	}
	huge := append([]byte(`{"files": [{"name": "p.yaml", "content": "`), bytes.Repeat([]byte("#"), 20<<20)...)
	huge = append(huge, `"}]}`...)
	tests := []struct {
		name    string
		body    io.Reader
		want    int
		applied bool
	}{
		{"one value", bytes.NewReader(valid), http.StatusOK, true},
		{"trailing space", bytes.NewReader(append(valid, " \n\t"...)), http.StatusOK, true},
		{"trailing garbage", bytes.NewReader(append(valid, "garbage"...)), http.StatusBadRequest, false},
		{"second value", bytes.NewReader(append(valid, valid...)), http.StatusBadRequest, false},
		{"20 MB", bytes.NewReader(huge), http.StatusRequestEntityTooLarge, false},
		{"20 MB chunked", io.MultiReader(bytes.NewReader(huge)), http.StatusRequestEntityTooLarge, false},
		{"invalid UTF-8", bytes.NewReader(bytes.Replace(valid, []byte("public"), []byte("pub\xffic"), 1)), http.StatusBadRequest, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestAPI(t, "tok")
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/policy", tt.body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer tok")
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want || !json.Valid(b) {
				t.Fatalf("status %d, body %.300s; want %d with a JSON body", resp.StatusCode, b, tt.want)
			}
			_, err = NewClient(srv.URL, "tok").Current(context.Background())
			if applied := err == nil; applied != tt.applied {
				t.Errorf("policy applied = %v (%v), want %v", applied, err, tt.applied)
			}
		})
	}
}

// TestClientRefusesInvalidUTF8 checks that the client does not send a file
// that JSON encoding would silently change (issue 14 fault 4).
func TestClientRefusesInvalidUTF8(t *testing.T) {
	srv := newTestAPI(t, "tok")
	_, err := NewClient(srv.URL, "tok").Push(context.Background(), PolicyRequest{Files: []store.File{{Name: "p.yaml", Content: "a: \xff"}}})
	if err == nil || !strings.Contains(err.Error(), "p.yaml is not valid UTF-8") {
		t.Fatalf("push: %v, want a refusal naming the file", err)
	}
}

// TestPushLimits checks that a pushed policy meets the same limits as a
// validated one (issue 14 fault 3) and that an answer with very many
// diagnostics is capped and well-formed JSON (issue 14 fault 5).
func TestPushLimits(t *testing.T) {
	var many strings.Builder
	many.WriteString("version: 1\nroutes:\n")
	for i := range 2000 {
		many.WriteString("  - {name: r, nope: 1, backend: b, auth: none}\n")
		_ = i
	}
	tests := []struct {
		name, content, want string
	}{
		{"nested lists", "version: 1\nroutes: " + strings.Repeat("[", 40000) + strings.Repeat("]", 40000), "nested more than"},
		{"many diagnostics", many.String(), "more errors not shown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestAPI(t, "tok")
			_, err := NewClient(srv.URL, "tok").Push(context.Background(), PolicyRequest{Files: []store.File{{Name: "p.yaml", Content: tt.content}}})
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnprocessableEntity {
				t.Fatalf("push: %v, want a 422", err)
			}
			ds := apiErr.Diagnostics
			if len(ds) == 0 || len(ds) > policy.MaxShownDiagnostics+2 {
				t.Fatalf("%d diagnostics, want 1 to %d", len(ds), policy.MaxShownDiagnostics+2)
			}
			if last := ds[len(ds)-1]; !strings.Contains(last.Summary, tt.want) {
				t.Errorf("last diagnostic %v, want one saying %q", last, tt.want)
			}
		})
	}
}
