package acme

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestResponder(t *testing.T) {
	r := NewResponder()
	ctx := context.Background()
	if err := r.Present(ctx, "API.example.com", "tok1", "tok1.thumb"); err != nil {
		t.Fatal(err)
	}
	if err := r.Present(ctx, "www.example.com", "tok2", "tok2.thumb"); err != nil {
		t.Fatal(err)
	}
	if err := r.CleanUp(ctx, "www.example.com", "tok2", "tok2.thumb"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, host, path string
		status                   int
		body                     string
	}{
		{"served", "GET", "api.example.com", "/.well-known/acme-challenge/tok1", 200, "tok1.thumb"},
		{"host with port", "GET", "api.example.com:8080", "/.well-known/acme-challenge/tok1", 200, "tok1.thumb"},
		{"head", "HEAD", "api.example.com", "/.well-known/acme-challenge/tok1", 200, "tok1.thumb"}, // the recorder keeps the body
		{"other domain", "GET", "evil.example.com", "/.well-known/acme-challenge/tok1", 404, ""},
		{"cleaned up", "GET", "www.example.com", "/.well-known/acme-challenge/tok2", 404, ""},
		{"unknown token", "GET", "api.example.com", "/.well-known/acme-challenge/nope", 404, ""},
		{"no token", "GET", "api.example.com", "/.well-known/acme-challenge/", 404, ""},
		{"nested path", "GET", "api.example.com", "/.well-known/acme-challenge/tok1/x", 404, ""},
		{"other path", "GET", "api.example.com", "/tok1", 404, ""},
		{"post", "POST", "api.example.com", "/.well-known/acme-challenge/tok1", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "http://"+tt.host+tt.path, nil)
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d", rec.Code, tt.status)
			}
			if tt.status == http.StatusOK && rec.Body.String() != tt.body {
				t.Fatalf("body %q, want %q", rec.Body.String(), tt.body)
			}
		})
	}
}

func TestRenewAt(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		name        string
		lifetime    time.Duration
		renewBefore time.Duration
		want        time.Time
	}{
		{"90-day certificate, 30 days ahead", 90 * day, 30 * day, t0.Add(60 * day)},
		{"6-day certificate: a third of its lifetime", 6 * day, 30 * day, t0.Add(2 * day)},
		{"threshold above lifetime", 9 * time.Second, time.Hour, t0.Add(3 * time.Second)},
		{"threshold just under two thirds", 90 * day, 59 * day, t0.Add(31 * day)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Certificate{NotBefore: t0, NotAfter: t0.Add(tt.lifetime)}
			if got := c.RenewAt(tt.renewBefore); !got.Equal(tt.want) {
				t.Fatalf("RenewAt = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	m, err := New(Options{Directory: "https://ca.test/dir", Domains: []string{"a.test"}, Storage: &Storage{}, Responder: NewResponder(),
		RetryMin: time.Second, RetryMax: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		failures int
		want     time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {4, 8 * time.Second}, {5, 10 * time.Second}, {50, 10 * time.Second}}
	for _, tt := range tests {
		if got := m.backoff(tt.failures); got != tt.want {
			t.Errorf("backoff(%d) = %v, want %v", tt.failures, got, tt.want)
		}
	}
}

func TestNewRejects(t *testing.T) {
	base := Options{Directory: "https://ca.test/dir", Domains: []string{"a.test"}, Storage: &Storage{}, Responder: NewResponder()}
	tests := []struct {
		name string
		edit func(*Options)
	}{
		{"no directory", func(o *Options) { o.Directory = "" }},
		{"no domains", func(o *Options) { o.Domains = nil }},
		{"wildcard", func(o *Options) { o.Domains = []string{"*.a.test"} }},
		{"no storage", func(o *Options) { o.Storage = nil }},
		{"no responder", func(o *Options) { o.Responder = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			tt.edit(&o)
			if _, err := New(o); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
}
