package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Server is a running upstream listening on a TCP address.
type Server struct {
	name     string
	ln       net.Listener
	srv      *http.Server
	requests atomic.Int64
	done     chan struct{}
	err      error
}

// Start listens on addr ("" means a free port on 127.0.0.1) and serves
// Handler(name) until Close.
func Start(addr, name string) (*Server, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: listen on %s: %w", name, addr, err)
	}
	s := &Server{name: name, ln: ln, done: make(chan struct{})}
	h := Handler(name)
	s.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.requests.Add(1)
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.err = fmt.Errorf("upstream %q: serve: %w", name, err)
		}
	}()
	return s, nil
}

// Serve starts an upstream like Start and closes it when ctx is done. It
// returns the address it listens on.
func Serve(ctx context.Context, addr, name string) (net.Addr, error) {
	s, err := Start(addr, name)
	if err != nil {
		return nil, err
	}
	go func() {
		<-ctx.Done()
		_ = s.Close()
	}()
	return s.ln.Addr(), nil
}

// Name returns the name the upstream answers with.
func (s *Server) Name() string { return s.name }

// Addr returns the host:port the upstream listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Host returns the IP address the upstream listens on.
func (s *Server) Host() string {
	return s.ln.Addr().(*net.TCPAddr).IP.String()
}

// Port returns the TCP port the upstream listens on.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// URL returns the base URL of the upstream, e.g. http://127.0.0.1:34567.
func (s *Server) URL() string {
	return "http://" + net.JoinHostPort(s.Host(), strconv.Itoa(s.Port()))
}

// Requests returns how many requests the upstream has received.
func (s *Server) Requests() int64 { return s.requests.Load() }

// Close stops the upstream: it lets in-flight requests finish for up to
// two seconds, then closes the remaining connections. It is safe to call
// more than once.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
	<-s.done
	return s.err
}
