package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The hazard checks of mode "ctable" (the C-side token → identity table).

// tokenSet is n tokens whose claims differ in every identity field, and
// the x-user-id / x-consumer-tier the upstream must see for each.
type tokenSet struct {
	toks, users, tiers []string
}

func (c *creds) tokenSet(n int, ttl time.Duration) (tokenSet, error) {
	var ts tokenSet
	now := time.Now()
	for i := range n {
		claims := map[string]any{"iss": issuer, "aud": audience, "sub": fmt.Sprintf("ct-%d", i),
			"iat": now.Unix(), "exp": now.Add(ttl).Unix(), "roles": []string{fmt.Sprintf("r%d", i)},
			"tenant": fmt.Sprintf("t%d", i), "tier": fmt.Sprintf("tier-%d", i)}
		alg, kid := "ES256", "es-1"
		if i%2 == 1 {
			alg, kid = "RS256", "rs-1"
		}
		tok, err := c.sign(alg, kid, claims)
		if err != nil {
			return ts, err
		}
		ts.toks = append(ts.toks, tok)
		ts.users = append(ts.users, fmt.Sprintf("idp:ct-%d", i))
		ts.tiers = append(ts.tiers, fmt.Sprintf("tier-%d", i))
	}
	return ts, nil
}

// checkN sends n requests over conns connections, the i-th with token
// i mod len, and checks every answer: 200 and the upstream saw that
// token's user id, roles, tenant and tier. It returns the count of right
// answers and a description of the first wrong ones.
func checkN(url string, ts tokenSet, n, conns int) (int, []string) {
	var mu sync.Mutex
	ok := 0
	var bad []string
	spread(n, conns, 30*time.Second, func(hc *http.Client, i int) {
		k := i % len(ts.toks)
		got := fetch(hc, url, ts.toks[k])
		j := strings.TrimPrefix(ts.users[k], "idp:ct-")
		want := fmt.Sprintf("200 %s r%s t%s %s", ts.users[k], j, j, ts.tiers[k])
		mu.Lock()
		defer mu.Unlock()
		if got == want {
			ok++
		} else if len(bad) < 5 {
			bad = append(bad, fmt.Sprintf("token %d: got %q want %q", k, got, want))
		}
	})
	return ok, bad
}

// fetch sends one request and returns "status user roles tenant tier" as
// the upstream saw them.
func fetch(hc *http.Client, url, tok string) string {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("x-user-id", "forged")
	resp, err := hc.Do(req)
	if err != nil {
		return "error " + err.Error()
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	h := resp.Header
	return fmt.Sprintf("%d %s %s %s %s", resp.StatusCode, h.Get("x-echo-x-user-id"), h.Get("x-echo-x-user-roles"),
		h.Get("x-echo-x-tenant-id"), h.Get("x-echo-x-consumer-tier"))
}

var tableStatsRE = regexp.MustCompile(`tgspike: ctable \d+: [^\n]*`)

// stopForStats sends SIGTERM (the filter config's destroy hook prints the
// table's counters) and returns that line.
func stopForStats(p *proc) string {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		return "no exit within 20 s of SIGTERM"
	}
	return strings.Join(tableStatsRE.FindAllString(logOf(p), -1), "; ")
}

// rssKB is the resident set of pid, in kB.
func rssKB(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if m := regexp.MustCompile(`VmRSS:\s+(\d+)`).FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return "?"
}

func ctableFilter(c *creds, size int, maxTTL string, skew time.Duration) map[string]any {
	f := moduleFilter(c, "ctable", false)
	setSpec(f, "denyAmbiguous", true)
	if size > 0 {
		setSpec(f, "tableSize", size)
	}
	if maxTTL != "" {
		setSpec(f, "tableMaxTTL", maxTTL)
	}
	prov := c.provider()
	prov.ClockSkew = skew
	setSpec(f, "provider", prov)
	return f
}

// hzCtableConcurrency: two workers, 40 tokens (ES256 and RS256, every
// identity field distinct), every answer checked against its token.
func hzCtableConcurrency(o opts, c *creds, upPort int) (string, error) {
	ts, err := c.tokenSet(40, time.Hour)
	if err != nil {
		return "", err
	}
	p, err := startPlain(o, "ct-conc", []any{ctableFilter(c, 0, "", time.Minute)}, upPort, "--concurrency", "2", "--disable-hot-restart")
	if err != nil {
		return "", err
	}
	defer p.kill()
	url := fmt.Sprintf("http://127.0.0.1:%d/x", p.listen)
	const n = 20000
	ok, bad := checkN(url, ts, n, 8)
	stats := workerStats(p.adm)
	return fmt.Sprintf("40 tokens, %d requests over 8 conns: %d right, wrong %v; per worker: %s; %s",
		n, ok, bad, stats, stopForStats(p)), nil
}

// hzCtableEviction: a table of 32 entries, 300 distinct tokens cycled 5
// times on two workers: every answer right, the table stays at its
// capacity, evicted entries freed (bytes and RSS).
func hzCtableEviction(o opts, c *creds, upPort int) (string, error) {
	ts, err := c.tokenSet(300, time.Hour)
	if err != nil {
		return "", err
	}
	p, err := startPlain(o, "ct-evict", []any{ctableFilter(c, 32, "", time.Minute)}, upPort, "--concurrency", "2", "--disable-hot-restart")
	if err != nil {
		return "", err
	}
	defer p.kill()
	url := fmt.Sprintf("http://127.0.0.1:%d/x", p.listen)
	var rss []string
	total, okAll := 0, 0
	var badAll []string
	for range 5 {
		ok, bad := checkN(url, ts, 1500, 8)
		total, okAll = total+1500, okAll+ok
		badAll = append(badAll, bad...)
		rss = append(rss, rssKB(p.cmd.Process.Pid))
	}
	return fmt.Sprintf("capacity 32, 300 tokens, %d requests: %d right, wrong %v; Envoy RSS kB after each pass %v; %s",
		total, okAll, badAll, rss, stopForStats(p)), nil
}

// hzCtableExpiry: a token that expires 3 s after it is cached (clock skew
// 0) is refused from its exp on; a long-lived token keeps passing; with
// tableMaxTTL 500ms the long-lived token goes back to Go about every 0.5 s.
func hzCtableExpiry(o opts, c *creds, upPort int) (string, error) {
	short, err := c.tokenSet(1, 3*time.Second)
	if err != nil {
		return "", err
	}
	long, err := c.tokenSet(2, time.Hour)
	if err != nil {
		return "", err
	}
	exp := time.Unix(time.Now().Add(3*time.Second).Unix(), 0)
	p, err := startPlain(o, "ct-exp", []any{ctableFilter(c, 0, "500ms", 0)}, upPort, "--concurrency", "2", "--disable-hot-restart")
	if err != nil {
		return "", err
	}
	defer p.kill()
	url := fmt.Sprintf("http://127.0.0.1:%d/x", p.listen)
	hc := &http.Client{Timeout: 5 * time.Second}
	var last200, first401 time.Duration
	okBefore, refusedAfter, passedAfter, longOK, sent := 0, 0, 0, 0, 0
	for time.Now().Before(exp.Add(2 * time.Second)) {
		at := time.Now()
		got := fetch(hc, url, short.toks[0])
		if strings.HasPrefix(fetch(hc, url, long.toks[1]), "200 idp:ct-1 ") {
			longOK++
		}
		sent++
		switch {
		case strings.HasPrefix(got, "200 ") && at.Before(exp):
			okBefore++
			last200 = at.Sub(exp)
		case strings.HasPrefix(got, "200 "):
			passedAfter++
		case strings.HasPrefix(got, "401"):
			refusedAfter++
			if first401 == 0 {
				first401 = at.Sub(exp)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Sprintf("short token (exp in ~3 s): %d × 200 before exp (last %v before), %d × 200 after exp, %d × 401 (first %v after exp); long token %d/%d × 200; %s",
		okBefore, -last200, passedAfter, refusedAfter, first401, longOK, sent, stopForStats(p)), nil
}

func workerStats(adm int) string {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/stats?filter=worker_.\\.downstream_cx_total", adm))
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", "; ")
}
