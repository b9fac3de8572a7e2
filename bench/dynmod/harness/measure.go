package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

func (c *creds) auth(alg string) func(int) string {
	toks := c.es
	switch alg {
	case "RS256":
		toks = c.rs
	case "":
		return func(int) string { return "" }
	}
	return func(i int) string { return "Bearer " + toks[i%len(toks)] }
}

// measure runs v once: under callgrind, or (smoke) plainly with a check of
// the identity headers the upstream saw.
func measure(o opts, c *creds, upPort int, v variant) (float64, error) {
	listen, err := freePort()
	if err != nil {
		return 0, err
	}
	adm, err := freePort()
	if err != nil {
		return 0, err
	}
	cfg, err := bootstrap(listen, adm, upPort, v.filters(c), o.smoke)
	if err != nil {
		return 0, err
	}
	dir := filepath.Join(o.dir, v.name)
	_ = os.RemoveAll(dir)
	p, err := startEnvoy(o, dir, cfg, !o.smoke, listen, adm, "--concurrency", "1", "--disable-hot-restart")
	if err != nil {
		return 0, err
	}
	defer p.kill()
	url := fmt.Sprintf("http://127.0.0.1:%d/x", listen)
	auth := c.auth(v.alg)
	if o.smoke {
		return 0, smokeCheck(url, auth, v)
	}
	pid := p.cmd.Process.Pid
	_ = sendN(url, auth, o.requests, 4) // warm-up: valgrind translates code
	if b, err := exec.Command("callgrind_control", "-i", "on", strconv.Itoa(pid)).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("callgrind_control -i on: %w: %s", err, b)
	}
	start := time.Now()
	codes := sendN(url, auth, o.requests, 4)
	busyFor := time.Since(start)
	if codes[200] != o.requests {
		fmt.Fprintf(os.Stderr, "variant %s: answers %v\n", v.name, codes)
	}
	busy, err := cgDump(dir, pid)
	if err != nil {
		return 0, err
	}
	time.Sleep(busyFor) // timers run on wall time, which valgrind stretches
	idle, err := cgDump(dir, pid)
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(os.Stderr, "variant %s: busy %.0f idle %.0f over %s\n", v.name, busy, idle, busyFor.Round(time.Millisecond))
	return (busy - idle) / float64(o.requests), nil
}

// smokeCheck sends a few requests and prints what the upstream received.
func smokeCheck(url string, auth func(int) string, v variant) error {
	codes := sendN(url, auth, 200, 4)
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if a := auth(3); a != "" {
		req.Header.Set("Authorization", a)
	}
	req.Header.Set("x-user-id", "forged")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	fmt.Fprintf(os.Stderr, "smoke %s: 200 answers %v; upstream saw user=%q roles=%q tenant=%q tier=%q filter-state=%q\n", v.name, codes,
		resp.Header.Get("x-echo-x-user-id"), resp.Header.Get("x-echo-x-user-roles"),
		resp.Header.Get("x-echo-x-tenant-id"), resp.Header.Get("x-echo-x-consumer-tier"), resp.Header.Get("x-echo-x-filter-state"))
	return nil
}
