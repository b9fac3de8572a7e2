package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// proc is one started Envoy (possibly under valgrind), in its own process
// group so it and its children can be stopped together.
type proc struct {
	cmd         *exec.Cmd
	dir         string
	listen, adm int
	stderr      *os.File
	done        chan struct{} // closed when the process has exited
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startEnvoy writes cfg into dir and starts Envoy with extra arguments;
// with callgrind, under valgrind with instrumentation off until enabled.
func startEnvoy(o opts, dir string, cfg []byte, callgrind bool, listen, adm int, extra ...string) (*proc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f := filepath.Join(dir, "envoy.yaml")
	if err := os.WriteFile(f, cfg, 0o600); err != nil {
		return nil, err
	}
	args := append([]string{"-c", f, "--log-level", "warn"}, extra...)
	name := o.envoy
	if callgrind {
		args = append([]string{"--tool=callgrind", "--instr-atstart=no",
			"--callgrind-out-file=" + filepath.Join(dir, "cg.out"), o.envoy}, args...)
		name = "valgrind"
	}
	errf, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "ENVOY_DYNAMIC_MODULES_SEARCH_PATH="+o.so)
	if callgrind {
		// callgrind 3.19 asserts (threads.c:247) on the Go runtime's
		// preemption signals during GC; without them the module runs the same code.
		cmd.Env = append(cmd.Env, "GODEBUG=asyncpreemptoff=1")
	}
	cmd.Stdout, cmd.Stderr = errf, errf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, dir: dir, listen: listen, adm: adm, stderr: errf, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	if err := p.waitReady(240 * time.Second); err != nil {
		p.kill()
		b, _ := os.ReadFile(errf.Name())
		return nil, fmt.Errorf("%w; stderr tail: %s", err, tail(b, 1500))
	}
	return p, nil
}

func (p *proc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	p.stderr.Close()
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func (p *proc) waitReady(d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("envoy exited: %v", p.cmd.ProcessState)
		default:
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ready", p.adm))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("envoy not ready on admin port %d after %s", p.adm, d)
}

// spread runs do(hc, i) for i in [0, n) over conns workers, each with its
// own keep-alive client (timeout per request); do guards what it shares.
func spread(n, conns int, timeout time.Duration, do func(hc *http.Client, i int)) {
	var mu sync.Mutex
	next := 0
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: timeout}
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				do(hc, i)
			}
		})
	}
	wg.Wait()
}

// sendN sends n GETs over conns keep-alive connections, the i-th with
// auth(i) as its Authorization header, and counts the answers by status
// (-1: transport error).
func sendN(url string, auth func(int) string, n, conns int) map[int]int {
	var mu sync.Mutex
	codes := map[int]int{}
	spread(n, conns, 60*time.Second, func(hc *http.Client, i int) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if a := auth(i); a != "" {
			req.Header.Set("Authorization", a)
		}
		code := -1
		if resp, err := hc.Do(req); err == nil {
			code = resp.StatusCode
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		mu.Lock()
		codes[code]++
		mu.Unlock()
	})
	return codes
}

// cgDump makes callgrind dump (and zero) its counters and returns the
// instructions of that dump.
func cgDump(dir string, pid int) (float64, error) {
	before, _ := cgTotal(dir)
	if b, err := exec.Command("callgrind_control", "-d", strconv.Itoa(pid)).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("callgrind_control -d: %w: %s", err, b)
	}
	after, err := cgTotal(dir)
	return after - before, err
}

var totalsRE = regexp.MustCompile(`(?m)^(?:totals|summary): (\d+)`)

func cgTotal(dir string) (float64, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "cg.out*"))
	sum := 0.0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return 0, err
		}
		if m := totalsRE.FindSubmatch(b); m != nil {
			n, _ := strconv.ParseFloat(string(m[1]), 64)
			sum += n
		}
	}
	if sum == 0 {
		return 0, fmt.Errorf("no callgrind totals in %s (%d files)", dir, len(files))
	}
	return sum, nil
}
