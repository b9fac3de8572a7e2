package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// hazards runs the correctness checks of the spike, each on a plain (not
// valgrind) Envoy, and prints one line per check.
func hazards(o opts, c *creds, upPort int) error {
	checks := []struct {
		name string
		f    func(opts, *creds, int) (string, error)
	}{
		{"refusals", hzRefusals},
		{"concurrency-2", hzConcurrency},
		{"panic-recovered", hzPanic(false)},
		{"panic-unrecovered", hzPanic(true)},
		{"sigterm", hzSigterm},
		{"reload-second-config", hzReload},
		{"hot-restart", hzHotRestart},
		{"two-go-modules", hzTwoModules},
		{"ctable-refusals", hzCtableRefusals},
		{"ctable-concurrency-2", hzCtableConcurrency},
		{"ctable-eviction", hzCtableEviction},
		{"ctable-expiry", hzCtableExpiry},
	}
	for _, ch := range checks {
		if o.only != "" && !strings.Contains(","+o.only+",", ","+ch.name+",") {
			continue
		}
		res, err := ch.f(o, c, upPort)
		if err != nil {
			res = "ERROR: " + err.Error()
		}
		fmt.Printf("- %s: %s\n", ch.name, res)
	}
	return nil
}

func ports() (int, int, error) {
	l, err := freePort()
	if err != nil {
		return 0, 0, err
	}
	a, err := freePort()
	return l, a, err
}

// identityOK sends one request with tok and reports the status and the
// user id the upstream saw.
func identityOK(listen int, tok string) (int, string) {
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/x", listen), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("x-user-id", "forged")
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return -1, err.Error()
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("x-echo-x-user-id")
}

func startPlain(o opts, name string, filters []any, upPort int, extra ...string) (*proc, error) {
	listen, adm, err := ports()
	if err != nil {
		return nil, err
	}
	cfg, err := bootstrap(listen, adm, upPort, filters, false)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(o.dir, "hz-"+name)
	_ = os.RemoveAll(dir)
	return startEnvoy(o, dir, cfg, false, listen, adm, extra...)
}

func logOf(p *proc) string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "stderr.log"))
	return string(b)
}

func hzConcurrency(o opts, c *creds, upPort int) (string, error) {
	p, err := startPlain(o, "conc", []any{moduleFilter(c, "cache", false)}, upPort, "--concurrency", "2", "--disable-hot-restart")
	if err != nil {
		return "", err
	}
	defer p.kill()
	url := fmt.Sprintf("http://127.0.0.1:%d/x", p.listen)
	codes := sendN(url, c.auth("ES256"), 20000, 8)
	codes2 := sendN(url, c.auth("RS256"), 2000, 8)
	st, uid := identityOK(p.listen, c.es[7])
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/stats?filter=worker_.\\.downstream_cx_total", p.adm))
	stats := ""
	if err == nil {
		b := make([]byte, 2000)
		n, _ := resp.Body.Read(b)
		stats = strings.ReplaceAll(strings.TrimSpace(string(b[:n])), "\n", "; ")
		resp.Body.Close()
	}
	return fmt.Sprintf("ES256 x20000 over 8 conns %v, RS256 x2000 %v, check %d %q; per worker: %s", codes, codes2, st, uid, stats), nil
}

func hzPanic(noRecover bool) func(opts, *creds, int) (string, error) {
	return func(o opts, c *creds, upPort int) (string, error) {
		name := "panic"
		if noRecover {
			name = "panic-norecover"
		}
		p, err := startPlain(o, name, []any{moduleFilter(c, "cache", noRecover)}, upPort, "--concurrency", "1", "--disable-hot-restart")
		if err != nil {
			return "", err
		}
		defer p.kill()
		st1, _ := identityOK(p.listen, "panic-now")
		time.Sleep(500 * time.Millisecond)
		alive := "alive"
		select {
		case <-p.done:
			alive = fmt.Sprintf("EXITED (%v)", p.cmd.ProcessState)
		default:
		}
		st2, uid := identityOK(p.listen, c.es[1])
		lg := logOf(p)
		first := ""
		if i := strings.Index(lg, "panic"); i >= 0 {
			first = strings.SplitN(lg[i:], "\n", 2)[0]
		}
		return fmt.Sprintf("panicking request → %d; Envoy %s; next request → %d %q; log: %q", st1, alive, st2, uid, first), nil
	}
}

func hzSigterm(o opts, c *creds, upPort int) (string, error) {
	p, err := startPlain(o, "sigterm", []any{moduleFilter(c, "cache", false)}, upPort, "--concurrency", "2", "--disable-hot-restart")
	if err != nil {
		return "", err
	}
	defer p.kill()
	st, _ := identityOK(p.listen, c.es[0])
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		return "did not exit within 20 s of SIGTERM", nil
	}
	lg := logOf(p)
	return fmt.Sprintf("request %d; exit %v; config destroyed on shutdown: %v; Go fatal in log: %v", st, p.cmd.ProcessState,
		strings.Contains(lg, "destroyed"), strings.Contains(lg, "fatal error") || strings.Contains(lg, "goroutine ")), nil
}

func hzTwoModules(o opts, c *creds, upPort int) (string, error) {
	second := moduleFilter(c, "map", false)
	tc := second["typed_config"].(map[string]any)
	tc["dynamic_module_config"] = map[string]any{"name": "tgspike2"}
	second["name"] = "tgspike2"
	p, err := startPlain(o, "two", []any{moduleFilter(c, "cache", false), second}, upPort, "--concurrency", "2", "--disable-hot-restart")
	if err != nil {
		return "", err
	}
	defer p.kill()
	st, uid := identityOK(p.listen, c.es[2])
	codes := sendN(fmt.Sprintf("http://127.0.0.1:%d/x", p.listen), c.auth("ES256"), 20000, 8)
	time.Sleep(300 * time.Millisecond)
	state := "alive"
	select {
	case <-p.done:
		state = fmt.Sprintf("EXITED (%v)", p.cmd.ProcessState)
	default:
	}
	return fmt.Sprintf("libtgspike.so + libtgspike2.so (same Go code, two runtimes), --concurrency 2: request %d %q; 20000 more %v; Envoy %s; program inits: %d",
		st, uid, codes, state, strings.Count(logOf(p), "program init")), nil
}

// ldsBootstrap turns a static bootstrap into one whose listener comes from
// a watched LDS file, and returns the file's content for the listener.
func ldsBootstrap(cfg []byte, ldsPath string) ([]byte, []byte, error) {
	var m map[string]any
	if err := json.Unmarshal(cfg, &m); err != nil {
		return nil, nil, err
	}
	sr := m["static_resources"].(map[string]any)
	l := sr["listeners"].([]any)[0].(map[string]any)
	delete(sr, "listeners")
	l["@type"] = "type.googleapis.com/envoy.config.listener.v3.Listener"
	m["node"] = map[string]any{"id": "spike", "cluster": "spike"}
	m["dynamic_resources"] = map[string]any{"lds_config": map[string]any{
		"path_config_source": map[string]any{"path": ldsPath}, "resource_api_version": "V3"}}
	boot, err := json.Marshal(m)
	if err != nil {
		return nil, nil, err
	}
	lds, err := json.Marshal(map[string]any{"resources": []any{l}})
	return boot, lds, err
}

func hzReload(o opts, c *creds, upPort int) (string, error) {
	listen, adm, err := ports()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(o.dir, "hz-reload")
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	ldsPath := filepath.Join(dir, "lds.json")
	write := func(mode string) ([]byte, error) {
		cfg, err := bootstrap(listen, adm, upPort, []any{moduleFilter(c, mode, false)}, false)
		if err != nil {
			return nil, err
		}
		boot, lds, err := ldsBootstrap(cfg, ldsPath)
		if err != nil {
			return nil, err
		}
		tmp := ldsPath + ".tmp"
		if err := os.WriteFile(tmp, lds, 0o600); err != nil {
			return nil, err
		}
		return boot, os.Rename(tmp, ldsPath)
	}
	boot, err := write("cache")
	if err != nil {
		return "", err
	}
	p, err := startEnvoy(o, dir, boot, false, listen, adm, "--concurrency", "2", "--disable-hot-restart", "--drain-time-s", "1")
	if err != nil {
		return "", err
	}
	defer p.kill()
	st1, uid1 := identityOK(listen, c.es[4])
	if _, err := write("map"); err != nil {
		return "", err
	}
	time.Sleep(4 * time.Second) // the old listener drains (1 s) and is destroyed
	codes := sendN(fmt.Sprintf("http://127.0.0.1:%d/x", listen), c.auth("ES256"), 2000, 4)
	st2, uid2 := identityOK(listen, c.es[4])
	lg := logOf(p)
	return fmt.Sprintf("before %d %q; after LDS update %d %q, 2000 more %v; filter configs created %d, destroyed %d, program inits %d",
		st1, uid1, st2, uid2, codes, strings.Count(lg, "created"), strings.Count(lg, "destroyed"), strings.Count(lg, "program init")), nil
}

func hzHotRestart(o opts, c *creds, upPort int) (string, error) {
	listen, adm, err := ports()
	if err != nil {
		return "", err
	}
	cfg, err := bootstrap(listen, adm, upPort, []any{moduleFilter(c, "cache", false)}, false)
	if err != nil {
		return "", err
	}
	base := fmt.Sprint(listen)
	args := func(epoch int) []string {
		return []string{"--concurrency", "2", "--base-id", base, "--restart-epoch", fmt.Sprint(epoch),
			"--drain-time-s", "1", "--parent-shutdown-time-s", "3"}
	}
	d0, d1 := filepath.Join(o.dir, "hz-hot0"), filepath.Join(o.dir, "hz-hot1")
	_ = os.RemoveAll(d0)
	_ = os.RemoveAll(d1)
	p0, err := startEnvoy(o, d0, cfg, false, listen, adm, args(0)...)
	if err != nil {
		return "", err
	}
	defer p0.kill()
	st0, _ := identityOK(listen, c.es[5])
	stop := make(chan map[int]int)
	go func() { // load across the restart
		total := map[int]int{}
		for {
			select {
			case stop <- total:
				return
			default:
			}
			for k, v := range sendN(fmt.Sprintf("http://127.0.0.1:%d/x", listen), c.auth("ES256"), 50, 2) {
				total[k] += v
			}
		}
	}()
	p1, err := startEnvoy(o, d1, cfg, false, listen, adm, args(1)...)
	if err != nil {
		<-stop
		return "", err
	}
	defer p1.kill()
	parent := "still running after 15 s"
	select {
	case <-p0.done:
		parent = fmt.Sprintf("exited %v", p0.cmd.ProcessState)
	case <-time.After(15 * time.Second):
	}
	during := <-stop
	st1, uid1 := identityOK(listen, c.es[5])
	return fmt.Sprintf("epoch 0 → %d; epoch 1 started; parent %s; across the restart %v; epoch 1 → %d %q; program inits: parent %d, child %d",
		st0, parent, during, st1, uid1, strings.Count(logOf(p0), "program init"), strings.Count(logOf(p1), "program init")), nil
}

func hzRefusals(o opts, c *creds, upPort int) (string, error) {
	f := moduleFilter(c, "cache", false)
	setSpec(f, "denyAmbiguous", true)
	return refusals(o, c, upPort, f, false)
}

// hzCtableRefusals: the same cases with the C table, c.es[0] and c.es[1]
// cached first: a cached token still gets every refusal.
func hzCtableRefusals(o opts, c *creds, upPort int) (string, error) {
	return refusals(o, c, upPort, ctableFilter(c, 0, "", time.Minute), true)
}

func refusals(o opts, c *creds, upPort int, f map[string]any, warm bool) (string, error) {
	p, err := startPlain(o, "refusals", []any{f}, upPort, "--concurrency", "1", "--disable-hot-restart")
	if err != nil {
		return "", err
	}
	defer p.kill()
	url := fmt.Sprintf("http://127.0.0.1:%d/x", p.listen)
	tampered := c.es[0][:len(c.es[0])-4] + "AAAA"
	cases := []struct {
		name string
		h    http.Header
	}{
		{"none", http.Header{}},
		{"garbage", http.Header{"Authorization": {"Bearer x.y.z"}}},
		{"bad signature", http.Header{"Authorization": {"Bearer " + tampered}}},
		{"basic", http.Header{"Authorization": {"Basic " + c.es[0]}}},
		{"bearer, no space", http.Header{"Authorization": {"Bearer" + c.es[0]}}},
		{"token prefix", http.Header{"Authorization": {"Bearer " + c.es[0][:len(c.es[0])-1]}}},
		{"token + 1 byte", http.Header{"Authorization": {"Bearer " + c.es[0] + "A"}}},
		{"two headers", http.Header{"Authorization": {"Bearer " + c.es[0], "Bearer " + c.es[1]}}},
		{"comma", http.Header{"Authorization": {"Bearer " + c.es[0] + ",x"}}},
		{"x-api-key too", http.Header{"Authorization": {"Bearer " + c.es[0]}, "X-Api-Key": {"k"}}},
		{"valid", http.Header{"Authorization": {"Bearer " + c.es[0]}}},
	}
	var out []string
	if warm {
		st0, _ := identityOK(p.listen, c.es[0])
		st1, _ := identityOK(p.listen, c.es[1])
		out = append(out, fmt.Sprintf("cached first: %d, %d", st0, st1))
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header = tc.h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		resp.Body.Close()
		out = append(out, fmt.Sprintf("%s → %d", tc.name, resp.StatusCode))
	}
	return strings.Join(out, ", "), nil
}
