// Package upstream is a small HTTP server used as a demo and test upstream
// behind the gateway. It echoes each request back as JSON so that tests can
// see what the data plane forwarded.
//
// Every response carries the header X-Upstream: <name>. Special paths:
//
//	/healthz           200 with body "ok"
//	/status/<code>     the echo, with status <code> (200..599)
//	/delay/<duration>  the echo after waiting <duration> (time.ParseDuration
//	                   syntax, at most 30s), or until the client goes away
//
// Any other path answers 200 with the echo.
package upstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// HeaderName is the response header naming the upstream that answered.
const HeaderName = "X-Upstream"

const (
	maxBody  = 1 << 20
	maxDelay = 30 * time.Second
)

// Echo is the JSON document the handler answers with.
type Echo struct {
	Upstream string              `json:"upstream"`
	Method   string              `json:"method"`
	Path     string              `json:"path"`
	Host     string              `json:"host"`
	Query    string              `json:"query"`
	Args     map[string][]string `json:"args"`
	Headers  map[string]string   `json:"headers"`
	Body     string              `json:"body,omitempty"`
}

// Handler returns a handler answering every request as upstream name.
func Handler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderName, name)
		path := r.URL.Path
		switch {
		case path == "/healthz":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = io.WriteString(w, "ok\n")
		case strings.HasPrefix(path, "/status/"):
			code, err := strconv.Atoi(strings.TrimPrefix(path, "/status/"))
			if err != nil || code < 200 || code > 599 {
				http.Error(w, "status must be an integer in 200..599", http.StatusBadRequest)
				return
			}
			writeEcho(w, r, name, code)
		case strings.HasPrefix(path, "/delay/"):
			handleDelay(w, r, name, strings.TrimPrefix(path, "/delay/"))
		default:
			writeEcho(w, r, name, http.StatusOK)
		}
	})
}

func handleDelay(w http.ResponseWriter, r *http.Request, name, arg string) {
	d, err := time.ParseDuration(arg)
	if err != nil || d < 0 || d > maxDelay {
		http.Error(w, "delay must be a duration in 0s..30s", http.StatusBadRequest)
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		writeEcho(w, r, name, http.StatusOK)
	case <-r.Context().Done():
	}
}

func writeEcho(w http.ResponseWriter, r *http.Request, name string, code int) {
	echo, err := NewEcho(r, name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if !bodyAllowed(code) || r.Method == http.MethodHead {
		return
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(echo)
}

// NewEcho describes r as seen by upstream name. It reads up to 1 MiB of the
// request body.
func NewEcho(r *http.Request, name string) (Echo, error) {
	echo := Echo{
		Upstream: name,
		Method:   r.Method,
		Path:     r.URL.Path,
		Host:     r.Host,
		Query:    r.URL.RawQuery,
		Args:     r.URL.Query(),
		Headers:  make(map[string]string, len(r.Header)),
	}
	for k, v := range r.Header {
		echo.Headers[k] = strings.Join(v, ", ")
	}
	if r.Body == nil {
		return echo, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return echo, fmt.Errorf("read request body: %w", err)
	}
	if len(body) > maxBody {
		return echo, errors.New("request body larger than 1 MiB")
	}
	echo.Body = string(body)
	return echo, nil
}

func bodyAllowed(code int) bool {
	return code != http.StatusNoContent && code != http.StatusNotModified
}
