package e2e

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// loadTarget is one URL of a targetLoad, sent with an API key.
type loadTarget struct {
	port int
	path string
	key  string
}

// targetLoad is a loadRun over several targets in turn, one request every
// interval, on a new connection each (so Envoys sharing a listener port
// through SO_REUSEPORT all take a share). It also counts answers by status
// per phase.
type targetLoad struct {
	*loadRun
	smu    sync.Mutex
	status map[string]map[string]int // phase → status ("200", "403", "error") → count
}

// startTargetLoad starts sending requests to targets, one every interval.
func startTargetLoad(t *testing.T, interval time.Duration, targets []loadTarget) *targetLoad {
	l := &targetLoad{loadRun: &loadRun{t: t, ok: map[string]int{}, failed: map[string]int{}, stop: make(chan struct{}), start: time.Now()},
		status: map[string]map[string]int{}}
	l.set("warm-up")
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	l.done.Add(1)
	go func() {
		defer l.done.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			phase, tg := *l.cur.Load(), targets[n%len(targets)]
			l.done.Add(1)
			go func() {
				defer l.done.Done()
				failure := l.once(client, fmt.Sprintf("http://127.0.0.1:%d%s", tg.port, tg.path), tg.key)
				l.record(phase, failure)
				l.count(phase, failure)
			}()
		}
	}()
	t.Cleanup(l.finish)
	return l
}

// count adds one answer to the status table: "200" when failure is empty,
// else its leading status code, or "error" for a transport error.
func (l *targetLoad) count(phase, failure string) {
	code := "200"
	if failure != "" {
		code = "error"
		if f := strings.Fields(failure); len(f) > 0 && len(f[0]) == 3 && strings.Trim(f[0], "0123456789") == "" {
			code = f[0]
		}
	}
	l.smu.Lock()
	defer l.smu.Unlock()
	if l.status[phase] == nil {
		l.status[phase] = map[string]int{}
	}
	l.status[phase][code]++
}

// report logs the answers by status per phase, then the loadRun's report
// (which fails the test on any failed request).
func (l *targetLoad) report(t *testing.T) {
	l.finish()
	l.smu.Lock()
	codes := map[string]bool{}
	for _, m := range l.status {
		for c := range m {
			codes[c] = true
		}
	}
	cols := slices.Sorted(maps.Keys(codes))
	var b strings.Builder
	fmt.Fprintf(&b, "%-36s", "phase")
	for _, c := range cols {
		fmt.Fprintf(&b, " %7s", c)
	}
	for _, p := range l.order {
		fmt.Fprintf(&b, "\n%-36s", p)
		for _, c := range cols {
			fmt.Fprintf(&b, " %7d", l.status[p][c])
		}
	}
	l.smu.Unlock()
	t.Logf("answers by status:\n%s", b.String())
	l.loadRun.report(t)
}
