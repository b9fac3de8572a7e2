package upstream

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHandlerEcho(t *testing.T) {
	req := httptest.NewRequest(http.MethodPost, "http://api.example.com/v1/things?a=1&a=2&b=x",
		strings.NewReader("payload"))
	req.Header.Add("X-Trace", "one")
	req.Header.Add("X-Trace", "two")
	rec := httptest.NewRecorder()

	Handler("alpha").ServeHTTP(rec, req)

	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", rec.Code)
	}
	if got := rec.Header().Get(HeaderName); got != "alpha" {
		t.Errorf("%s = %q, want alpha", HeaderName, got)
	}
	var echo Echo
	if err := json.Unmarshal(rec.Body.Bytes(), &echo); err != nil {
		t.Fatalf("decode echo: %v\n%s", err, rec.Body)
	}
	checks := []struct{ field, got, want string }{
		{"upstream", echo.Upstream, "alpha"},
		{"method", echo.Method, http.MethodPost},
		{"path", echo.Path, "/v1/things"},
		{"host", echo.Host, "api.example.com"},
		{"query", echo.Query, "a=1&a=2&b=x"},
		{"headers[X-Trace]", echo.Headers["X-Trace"], "one, two"},
		{"body", echo.Body, "payload"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if got := strings.Join(echo.Args["a"], ","); got != "1,2" {
		t.Errorf("args[a] = %q, want 1,2", got)
	}
}

func TestHandlerSpecialPaths(t *testing.T) {
	tests := []struct {
		path     string
		wantCode int
		wantBody string
	}{
		{"/healthz", http.StatusOK, "ok\n"},
		{"/status/503", http.StatusServiceUnavailable, `"path": "/status/503"`},
		{"/status/418", http.StatusTeapot, `"upstream": "beta"`},
		{"/status/204", http.StatusNoContent, ""},
		{"/status/abc", http.StatusBadRequest, "status must be"},
		{"/status/99", http.StatusBadRequest, "status must be"},
		{"/delay/1ms", http.StatusOK, `"path": "/delay/1ms"`},
		{"/delay/forever", http.StatusBadRequest, "delay must be"},
		{"/delay/1h", http.StatusBadRequest, "delay must be"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Handler("beta").ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if rec.Code != tt.wantCode {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantCode)
			}
			if got := rec.Header().Get(HeaderName); got != "beta" {
				t.Errorf("%s = %q, want beta", HeaderName, got)
			}
			body := rec.Body.String()
			if tt.wantBody == "" && body != "" || !strings.Contains(body, tt.wantBody) {
				t.Errorf("body = %q, want it to contain %q", body, tt.wantBody)
			}
		})
	}
}

func TestHandlerBodyTooLarge(t *testing.T) {
	big := strings.NewReader(strings.Repeat("x", maxBody+1))
	rec := httptest.NewRecorder()
	Handler("gamma").ServeHTTP(rec, httptest.NewRequest(http.MethodPut, "/", big))
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("status = %d, want 400", rec.Code)
	}
}

func TestHandlerDelayStopsWhenClientGoesAway(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest(http.MethodGet, "/delay/30s", nil).WithContext(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Handler("delta").ServeHTTP(httptest.NewRecorder(), req)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("handler still waiting after the request context was cancelled")
	}
}

func TestServerStartClose(t *testing.T) {
	s, err := Start("", "srv")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || s.Port() == 0 {
		t.Fatalf("URL() = %q, Port() = %d; want a loopback URL with a port", s.URL(), s.Port())
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for i := 0; i < 3; i++ {
		resp, err := client.Get(s.URL() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get(HeaderName) != "srv" {
			t.Fatalf("GET /healthz = %d %s=%q", resp.StatusCode, HeaderName, resp.Header.Get(HeaderName))
		}
	}
	if got := s.Requests(); got != 3 {
		t.Errorf("Requests() = %d, want 3", got)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	client.CloseIdleConnections()
	if _, err := client.Get(s.URL() + "/healthz"); err == nil {
		t.Fatal("request after Close succeeded")
	}
}

func TestServeStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addr, err := Serve(ctx, "127.0.0.1:0", "ctx")
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr.String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := client.Get("http://" + addr.String() + "/")
		if err != nil {
			return
		}
		_ = resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("upstream still answering 5s after its context was cancelled")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStartListenError(t *testing.T) {
	s, err := Start("", "first")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := Start(s.Addr(), "second"); err == nil {
		t.Fatal("Start on an address in use succeeded")
	}
}
