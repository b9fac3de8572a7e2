package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/internal/controlplane"
	"github.com/tollgate/tollgate/internal/store"
)

// Client calls the admin API.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
}

// NewClient returns a client for the server at base (http://host:port).
func NewClient(base, token string) *Client {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return &Client{BaseURL: strings.TrimRight(base, "/"), Token: token, HTTP: &http.Client{Timeout: 60 * time.Second}}
}

// maxResponse bounds an answer the client reads: a stored policy (up to
// maxBody of YAML) grows when JSON escapes it. A longer answer is an error,
// never a truncated one.
const maxResponse = 4 * maxBody

// APIError is a non-2xx answer.
type APIError struct {
	Status int
	ErrorResponse
	// Raw is the push result of a push that proxies rejected.
	Raw json.RawMessage
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s (HTTP %d)", e.ErrorResponse.Error, e.Status)
}

// Push pushes files.
func (c *Client) Push(ctx context.Context, req PolicyRequest) (*controlplane.PushResult, error) {
	var out controlplane.PushResult
	if err := checkUTF8(req); err != nil {
		return nil, err
	}
	return &out, c.do(ctx, http.MethodPost, "/v1/policy", req, &out)
}

// Validate validates files on the server.
func (c *Client) Validate(ctx context.Context, req PolicyRequest) (*ValidateResponse, error) {
	var out ValidateResponse
	if err := checkUTF8(req); err != nil {
		return nil, err
	}
	return &out, c.do(ctx, http.MethodPost, "/v1/policy/validate", req, &out)
}

// Diff returns what pushing files would change.
func (c *Client) Diff(ctx context.Context, req PolicyRequest) (*controlplane.PushResult, error) {
	var out controlplane.PushResult
	if err := checkUTF8(req); err != nil {
		return nil, err
	}
	return &out, c.do(ctx, http.MethodPost, "/v1/policy/diff", req, &out)
}

// checkUTF8 refuses files that are not UTF-8: encoding them to JSON would
// silently turn a bad byte into U+FFFD.
func checkUTF8(req PolicyRequest) error {
	for _, f := range req.Files {
		if !utf8.ValidString(f.Content) {
			return fmt.Errorf("policy file %s is not valid UTF-8: save it as UTF-8 (tollgate validate shows where)", f.Name)
		}
	}
	return nil
}

// Current returns the served policy.
func (c *Client) Current(ctx context.Context) (*store.Version, error) {
	var out store.Version
	return &out, c.do(ctx, http.MethodGet, "/v1/policy", nil, &out)
}

// Version returns a stored policy version.
func (c *Client) Version(ctx context.Context, id string) (*store.Version, error) {
	var out store.Version
	return &out, c.do(ctx, http.MethodGet, "/v1/policy/versions/"+id, nil, &out)
}

// History returns the push history, oldest first.
func (c *Client) History(ctx context.Context) ([]store.Event, error) {
	var out []store.Event
	return out, c.do(ctx, http.MethodGet, "/v1/history", nil, &out)
}

// Rollback serves a stored version again.
func (c *Client) Rollback(ctx context.Context, req RollbackRequest) (*controlplane.PushResult, error) {
	var out controlplane.PushResult
	return &out, c.do(ctx, http.MethodPost, "/v1/rollback", req, &out)
}

// Status returns the fleet status.
func (c *Client) Status(ctx context.Context) (*controlplane.Status, error) {
	var out controlplane.Status
	return &out, c.do(ctx, http.MethodGet, "/v1/status", nil, &out)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("reach tollgate server %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if len(b) > maxResponse {
		return fmt.Errorf("read response: HTTP %d answer larger than %d bytes", resp.StatusCode, maxResponse)
	}
	if resp.StatusCode/100 != 2 {
		return apiError(resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}

func apiError(code int, b []byte) error {
	e := &APIError{Status: code}
	var raw struct {
		Result json.RawMessage `json:"result"`
	}
	if json.Unmarshal(b, &e.ErrorResponse) != nil || e.ErrorResponse.Error == "" {
		e.ErrorResponse.Error = strings.TrimSpace(string(b))
	}
	if json.Unmarshal(b, &raw) == nil {
		e.Raw = raw.Result
	}
	return e
}

// CreateKey creates an API key; the response holds the key, shown once.
func (c *Client) CreateKey(ctx context.Context, req CreateKeyRequest) (*CreateKeyResponse, error) {
	var out CreateKeyResponse
	return &out, c.do(ctx, http.MethodPost, "/v1/keys", req, &out)
}

// ListKeys lists a consumer's keys (never the keys themselves).
func (c *Client) ListKeys(ctx context.Context, consumer string) ([]apikey.Record, error) {
	var out []apikey.Record
	return out, c.do(ctx, http.MethodGet, "/v1/keys?consumer="+url.QueryEscape(consumer), nil, &out)
}

// RevokeKey revokes the key with id.
func (c *Client) RevokeKey(ctx context.Context, id string) error {
	var out map[string]string
	return c.do(ctx, http.MethodDelete, "/v1/keys/"+url.PathEscape(id), nil, &out)
}

// UpdateKey changes the tier, roles or expiry of the key with id.
func (c *Client) UpdateKey(ctx context.Context, id string, req UpdateKeyRequest) (*apikey.Record, error) {
	var out apikey.Record
	return &out, c.do(ctx, http.MethodPatch, "/v1/keys/"+url.PathEscape(id), req, &out)
}
