package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ok" {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	tests := []struct {
		name     string
		args     []string
		wantCode int
	}{
		{"2xx", []string{"probe", srv.URL + "/ok"}, ExitOK},
		{"503", []string{"probe", srv.URL + "/readyz"}, ExitFailed},
		{"nothing listening", []string{"probe", "--timeout", "1s", "http://127.0.0.1:1/"}, ExitFailed},
		{"no URL", []string{"probe"}, ExitUsage},
		{"bad URL", []string{"probe", "http://[::1"}, ExitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := Execute(tt.args, &out, &errOut); code != tt.wantCode {
				t.Fatalf("tollgate %v = exit %d (%s), want %d", tt.args, code, errOut.String(), tt.wantCode)
			}
		})
	}
}
