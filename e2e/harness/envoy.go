package harness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// EnvoyOptions tunes StartEnvoy. The zero value is ready to use.
type EnvoyOptions struct {
	// LogLevel is Envoy's -l flag; empty means "info".
	LogLevel string
	// ComponentLogLevel is Envoy's --component-log-level flag, if set.
	ComponentLogLevel string
	// Args are extra command-line arguments.
	Args []string
	// Env are extra KEY=VALUE environment entries.
	Env []string
	// StartTimeout bounds the wait for the admin address; zero means
	// DefaultTimeout.
	StartTimeout time.Duration
	// HotRestart, when set, enables hot restart (envoy_hotrestart.go).
	HotRestart *HotRestart
	// DrainTime is Envoy's --drain-time-s (whole seconds): how long the
	// connections of a replaced listener keep being served. Zero means 1s.
	DrainTime time.Duration
	// FileFlushInterval is Envoy's --file-flush-interval-msec: how often
	// it writes its buffered access log (stdout included). Zero means
	// DefaultFileFlushInterval, not Envoy's own 10 s default, so a test
	// reading the access log waits a tenth of a second, not ten.
	FileFlushInterval time.Duration
	// ConfigYAML, if set, is Envoy's --config-yaml: bootstrap fields merged
	// over the bootstrap file (repeated fields are appended), e.g. a
	// shorter stats_flush_interval.
	ConfigYAML string
	// Concurrency is Envoy's --concurrency (worker threads); zero means 1.
	Concurrency int
}

// DefaultFileFlushInterval is the access-log flush interval of the Envoys
// StartEnvoy runs (EnvoyOptions.FileFlushInterval).
const DefaultFileFlushInterval = 100 * time.Millisecond

// Envoy is a running Envoy process. Its admin endpoint is the one the
// bootstrap configures; a port of 0 there is fine, StartEnvoy learns the
// port Envoy chose.
type Envoy struct {
	*Process
	adminURL string
	client   *http.Client
}

// StartEnvoy writes bootstrapYAML to a temporary directory and runs Envoy on
// it with opts.Concurrency worker threads (one by default), a 1s drain time (opts.DrainTime), a 100 ms
// access-log flush interval (opts.FileFlushInterval) and hot restart
// disabled. It
// returns once Envoy has bound its admin port; use WaitReady to wait for
// the server to be LIVE. The test fails when Envoy is missing (run `make
// tools`), or exits or stays silent before binding its admin port.
func StartEnvoy(t testing.TB, bootstrapYAML []byte, opts EnvoyOptions) *Envoy {
	t.Helper()
	bin, err := EnvoyBinary()
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	dir := t.TempDir()
	configPath := filepath.Join(dir, "bootstrap.yaml")
	if err := os.WriteFile(configPath, bootstrapYAML, 0o600); err != nil {
		t.Fatalf("harness: write Envoy bootstrap: %v", err)
	}
	adminPath := filepath.Join(dir, "admin-address")
	p := StartProcessSpec(t, ProcessSpec{
		Name: "envoy",
		Bin:  bin,
		Args: envoyArgs(configPath, adminPath, opts),
		Env:  opts.Env,
	})
	ctx, cancel := context.WithTimeout(context.Background(), orDefault(opts.StartTimeout))
	defer cancel()
	addr, err := waitAdminAddress(ctx, p, adminPath)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return &Envoy{
		Process:  p,
		adminURL: "http://" + addr,
		client:   &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}},
	}
}

func envoyArgs(configPath, adminPath string, opts EnvoyOptions) []string {
	level := opts.LogLevel
	if level == "" {
		level = "info"
	}
	args := append([]string{
		"-c", configPath}, opts.HotRestart.args()...)
	args = append(args,
		"--concurrency", strconv.Itoa(max(1, opts.Concurrency)),
		"--drain-time-s", strconv.Itoa(max(1, int(opts.DrainTime/time.Second))),
		"--file-flush-interval-msec", strconv.FormatInt(flushInterval(opts.FileFlushInterval).Milliseconds(), 10),
		"-l", level,
		"--admin-address-path", adminPath,
	)
	if opts.ComponentLogLevel != "" {
		args = append(args, "--component-log-level", opts.ComponentLogLevel)
	}
	if opts.ConfigYAML != "" {
		args = append(args, "--config-yaml", opts.ConfigYAML)
	}
	return append(args, opts.Args...)
}

// flushInterval is d, or DefaultFileFlushInterval when d is not positive.
func flushInterval(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultFileFlushInterval
	}
	return d
}

func orDefault(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultTimeout
	}
	return d
}

// waitAdminAddress waits for Envoy to write its admin address to path.
func waitAdminAddress(ctx context.Context, p *Process, path string) (string, error) {
	var addr string
	err := WaitFor(ctx, func() (bool, error) {
		b, err := os.ReadFile(path)
		if err == nil && len(bytes.TrimSpace(b)) > 0 {
			addr = string(bytes.TrimSpace(b))
			return true, nil
		}
		if p.Exited() {
			return false, Permanent(fmt.Errorf("envoy exited with %v before binding its admin port", p.waitErr))
		}
		return false, err
	})
	if err != nil {
		return "", fmt.Errorf("wait for the Envoy admin address: %w", err)
	}
	return addr, nil
}

// AdminURL returns the base URL of the admin endpoint, e.g.
// http://127.0.0.1:41234.
func (e *Envoy) AdminURL() string { return e.adminURL }

// Admin sends GET path (with its query, e.g. "/stats?filter=x") to the admin
// endpoint and returns the status code and body.
func (e *Envoy) Admin(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.adminURL+path, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("envoy admin %s: %w", path, err)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("envoy admin %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("envoy admin %s: read body: %w", path, err)
	}
	return resp.StatusCode, body, nil
}

// adminOK is Admin that treats any status but 200 as an error.
func (e *Envoy) adminOK(ctx context.Context, path string) ([]byte, error) {
	code, body, err := e.Admin(ctx, path)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("envoy admin %s: status %d: %s", path, code, bytes.TrimSpace(body))
	}
	return body, nil
}

// WaitReady waits until GET /ready answers 200 "LIVE" (all static and
// initial dynamic resources are in place). It fails early if Envoy exits.
func (e *Envoy) WaitReady(ctx context.Context) error {
	err := WaitFor(ctx, func() (bool, error) {
		if e.Exited() {
			return false, Permanent(fmt.Errorf("envoy exited: %v", e.waitErr))
		}
		code, body, err := e.Admin(ctx, "/ready")
		if err != nil {
			return false, err
		}
		state := string(bytes.TrimSpace(body))
		if code != http.StatusOK || state != "LIVE" {
			return false, fmt.Errorf("/ready: %d %s", code, state)
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("wait for Envoy to be ready: %w", err)
	}
	return nil
}

// ConfigDump returns GET /config_dump as JSON, restricted to resource when it
// is not empty (e.g. "dynamic_active_clusters", "dynamic_listeners").
func (e *Envoy) ConfigDump(ctx context.Context, resource string) ([]byte, error) {
	path := "/config_dump"
	if resource != "" {
		path += "?resource=" + url.QueryEscape(resource)
	}
	return e.adminOK(ctx, path)
}

// WaitConfigDump waits until pred accepts the config dump of resource (see
// ConfigDump).
func (e *Envoy) WaitConfigDump(ctx context.Context, resource string, pred func(dump []byte) bool) error {
	err := WaitFor(ctx, func() (bool, error) {
		dump, err := e.ConfigDump(ctx, resource)
		if err != nil {
			return false, err
		}
		return pred(dump), nil
	})
	if err != nil {
		return fmt.Errorf("wait for config dump of %q: %w", resource, err)
	}
	return nil
}

// Stats returns the counters and gauges whose names match the RE2 regular
// expression filter (all of them when filter is empty). Histograms and text
// readouts are left out.
func (e *Envoy) Stats(ctx context.Context, filter string) (map[string]int64, error) {
	path := "/stats"
	if filter != "" {
		path += "?filter=" + url.QueryEscape(filter)
	}
	body, err := e.adminOK(ctx, path)
	if err != nil {
		return nil, err
	}
	return parseStats(body), nil
}

// parseStats parses Envoy's text stats format, "name: value" per line,
// keeping the integer values.
func parseStats(body []byte) map[string]int64 {
	stats := make(map[string]int64)
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndex(line, ": ")
		if i < 0 {
			continue
		}
		v, err := strconv.ParseInt(line[i+2:], 10, 64)
		if err != nil {
			continue
		}
		stats[line[:i]] = v
	}
	return stats
}

// Stat returns the value of the counter or gauge called name, and whether
// Envoy has it.
func (e *Envoy) Stat(ctx context.Context, name string) (int64, bool, error) {
	stats, err := e.Stats(ctx, "^"+regexp.QuoteMeta(name)+"$")
	if err != nil {
		return 0, false, err
	}
	v, ok := stats[name]
	return v, ok, nil
}

// WaitStat waits until the counter or gauge called name exists and pred
// accepts its value.
func (e *Envoy) WaitStat(ctx context.Context, name string, pred func(int64) bool) error {
	var last int64
	var seen bool
	err := WaitFor(ctx, func() (bool, error) {
		v, ok, err := e.Stat(ctx, name)
		if err != nil {
			return false, err
		}
		last, seen = v, ok
		return ok && pred(v), nil
	})
	if err != nil {
		if !seen {
			return fmt.Errorf("wait for stat %s (never present): %w", name, err)
		}
		return fmt.Errorf("wait for stat %s (last value %d): %w", name, last, err)
	}
	return nil
}
