package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// requestTimeout bounds a request whose context has no deadline.
const requestTimeout = 10 * time.Second

// HTTPResponse is a fully read HTTP response.
type HTTPResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r *HTTPResponse) JSON(v any) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("decode %d response as JSON: %w: %q", r.Status, err, r.Body)
	}
	return nil
}

// HTTPClient sends requests to the data plane. It ignores proxy settings
// from the environment and does not follow redirects.
type HTTPClient struct {
	c *http.Client
}

// NewHTTPClient returns a client. With reuseConns false, every request opens
// its own connection, so no state carries from one request, or test, to
// the next.
func NewHTTPClient(reuseConns bool) *HTTPClient {
	return &HTTPClient{c: &http.Client{
		Transport: &http.Transport{DisableKeepAlives: !reuseConns},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

// Close closes the client's idle connections.
func (c *HTTPClient) Close() { c.c.CloseIdleConnections() }

// Do sends a request and reads the whole response. host, when not empty,
// is sent as the Host header. A ctx without deadline gets a 10s one.
func (c *HTTPClient) Do(ctx context.Context, method, url, host string,
	headers map[string]string, body []byte) (*HTTPResponse, error) {
	h := http.Header{}
	for k, v := range headers {
		h.Set(k, v)
	}
	return c.DoHeader(ctx, method, url, host, h, body)
}

// DoHeader is Do with a full header, for repeated header lines.
func (c *HTTPClient) DoHeader(ctx context.Context, method, url, host string,
	header http.Header, body []byte) (*HTTPResponse, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, requestTimeout)
		defer cancel()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	if host != "" {
		req.Host = host
	}
	req.Header = header
	resp, err := c.c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read body: %w", method, url, err)
	}
	return &HTTPResponse{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// Get sends a GET request; see Do.
func (c *HTTPClient) Get(ctx context.Context, url, host string, headers map[string]string) (*HTTPResponse, error) {
	return c.Do(ctx, http.MethodGet, url, host, headers, nil)
}

// HTTPGet sends a GET request on a new connection that is closed afterwards.
// host, when not empty, is sent as the Host header.
func HTTPGet(ctx context.Context, url, host string, headers map[string]string) (*HTTPResponse, error) {
	c := NewHTTPClient(false)
	defer c.Close()
	return c.Get(ctx, url, host, headers)
}
