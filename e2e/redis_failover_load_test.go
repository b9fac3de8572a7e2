package e2e

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// meterInterval is the emission interval of the meter tier (100,000 a
// month): the counter regains one request per interval.
const meterInterval = 30 * 24 * time.Hour / 100000

// outcome is one request of a failoverLoad.
type outcome struct {
	sent time.Time
	took time.Duration
	kind string // "" for a 200 counted by the rate limiter
}

// kindFailedOpen is a 200 without rate-limit headers: the limiter could not
// count it and let it through (failureMode open).
const kindFailedOpen = "200 without rate-limit headers (failed open)"

// failoverLoad sends 200 requests a second with one API key and keeps
// every outcome.
type failoverLoad struct {
	mu   sync.Mutex
	outs []outcome
	stop chan struct{}
	wg   sync.WaitGroup
}

func startFailoverLoad(t *testing.T, port int, key string) *failoverLoad {
	l := &failoverLoad{stop: make(chan struct{})}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	url := fmt.Sprintf("http://127.0.0.1:%d/api/load", port)
	l.wg.Go(func() {
		tick := time.NewTicker(loadInterval)
		defer tick.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			l.wg.Go(func() { l.record(sendOnce(client, url, key)) })
		}
	})
	t.Cleanup(l.finish)
	return l
}

// sendOnce sends one request and classifies its answer.
func sendOnce(client *http.Client, url, key string) outcome {
	o := outcome{sent: time.Now()}
	defer func() { o.took = time.Since(o.sent) }()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("x-api-key", key)
	resp, err := client.Do(req)
	if err != nil {
		o.kind = "transport: " + err.Error()
		return o
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	switch {
	case resp.StatusCode == 200 && resp.Header.Get("X-RateLimit-Remaining") != "":
	case resp.StatusCode == 200:
		o.kind = kindFailedOpen
	default:
		o.kind = fmt.Sprintf("%d %s", resp.StatusCode, errorCode(body))
	}
	return o
}

// errorCode returns the "error" field of a JSON error body, or the body.
func errorCode(body []byte) string {
	s := string(body)
	if i := strings.Index(s, `"error":"`); i >= 0 {
		rest := s[i+len(`"error":"`):]
		if j := strings.IndexByte(rest, '"'); j >= 0 {
			return rest[:j]
		}
	}
	if s == "" {
		return "(empty body)"
	}
	return strconv.Quote(s)
}

func (l *failoverLoad) record(o outcome) {
	l.mu.Lock()
	l.outs = append(l.outs, o)
	l.mu.Unlock()
}

func (l *failoverLoad) finish() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// since returns the outcomes of requests sent at or after t.
func (l *failoverLoad) since(t time.Time) []outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []outcome
	for _, o := range l.outs {
		if !o.sent.Before(t) {
			out = append(out, o)
		}
	}
	return out
}

// recovered reports whether, after the kill, a full second of requests
// (by send time, all answered) succeeded.
func (l *failoverLoad) recovered(kill time.Time) bool {
	outs := l.since(kill)
	sort.Slice(outs, func(i, j int) bool { return outs[i].sent.Before(outs[j].sent) })
	var okSince time.Time
	for _, o := range outs {
		if o.kind != "" {
			okSince = time.Time{}
			continue
		}
		if okSince.IsZero() {
			okSince = o.sent
		}
	}
	return !okSince.IsZero() && time.Since(okSince) > 1500*time.Millisecond
}

// failoverReport is what one failover cost.
type failoverReport struct {
	total, failed   int
	byKind          map[string]int
	perSecond       map[int]map[string]int // second after the kill → kind → count
	first, last     time.Duration          // first and last failed request, sent after the kill
	counted, opened int                    // 200s the limiter counted, 200s it let through uncounted
}

// report summarises the outcomes of requests sent after start, with
// times relative to kill.
func (l *failoverLoad) report(start, kill time.Time) failoverReport {
	r := failoverReport{byKind: map[string]int{}, perSecond: map[int]map[string]int{}, first: -1}
	for _, o := range l.since(start) {
		r.total++
		switch o.kind {
		case "":
			r.counted++
			continue
		case kindFailedOpen:
			r.opened++
		}
		r.failed++
		r.byKind[o.kind]++
		at := o.sent.Sub(kill)
		sec := int(at / time.Second)
		if at < 0 {
			sec = -1
		}
		if r.perSecond[sec] == nil {
			r.perSecond[sec] = map[string]int{}
		}
		r.perSecond[sec][o.kind]++
		if r.first < 0 || at < r.first {
			r.first = at
		}
		r.last = max(r.last, at)
	}
	return r
}

func (r failoverReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests, %d not counted 200s (%d failed open)", r.total, r.failed, r.opened)
	if r.failed > 0 {
		fmt.Fprintf(&b, "; failures sent from +%s to +%s after the kill",
			r.first.Round(time.Millisecond), r.last.Round(time.Millisecond))
	}
	secs := make([]int, 0, len(r.perSecond))
	for s := range r.perSecond {
		secs = append(secs, s)
	}
	sort.Ints(secs)
	for _, s := range secs {
		fmt.Fprintf(&b, "\n  second %d after the kill: %v", s, r.perSecond[s])
	}
	return b.String()
}
