package loadgen

import (
	"fmt"
	"net"
	"net/http"
	"time"
)

// FreePorts returns n distinct free loopback ports (held open together
// while choosing, so they differ).
func FreePorts(n int) ([]int, error) {
	var out []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// FreePort returns one free loopback port.
func FreePort() (int, error) {
	p, err := FreePorts(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

// WaitTCP waits until addr accepts connections.
func WaitTCP(addr string, timeout time.Duration) error {
	return poll(timeout, fmt.Sprintf("%s not accepting", addr), func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// WaitHTTP waits until GET url, with the Authorization value authz when
// not empty, answers 200.
func WaitHTTP(url, authz string, timeout time.Duration) error {
	return poll(timeout, fmt.Sprintf("%s never answered 200", url), func() bool { return Status(url, authz) == http.StatusOK })
}

// Status returns the status of GET url with an Authorization value, or 0.
func Status(url, authz string) int {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// poll checks cond every 20 ms until it holds or timeout passes.
func poll(timeout time.Duration, msg string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return nil
		}
		time.Sleep(20 * time.Millisecond) // poll interval of a bounded wait
	}
	return fmt.Errorf("%s after %s", msg, timeout)
}
