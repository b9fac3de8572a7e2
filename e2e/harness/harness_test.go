package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	t.Cleanup(cancel)
	return ctx
}

// processGone reports whether pid no longer runs: it does not exist, or it
// is a zombie waiting for a reaper other than this test.
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && (fields[0] == "Z" || fields[0] == "X")
}

func TestWaitForSucceedsAfterRetries(t *testing.T) {
	calls := 0
	err := WaitFor(testContext(t), func() (bool, error) {
		calls++
		if calls < 3 {
			return false, errors.New("not yet")
		}
		return true, nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("WaitFor = %v after %d calls, want nil after 3", err, calls)
	}
}

func TestWaitForTimeoutReportsLastError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := WaitFor(ctx, func() (bool, error) { return false, errors.New("still down") })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "still down") {
		t.Fatalf("WaitFor = %v, want a deadline error naming the last error", err)
	}
}

func TestWaitForPermanentStopsAtOnce(t *testing.T) {
	sentinel := errors.New("fatal")
	calls := 0
	err := WaitFor(testContext(t), func() (bool, error) {
		calls++
		return false, Permanent(sentinel)
	})
	if !errors.Is(err, sentinel) || calls != 1 {
		t.Fatalf("WaitFor = %v after %d calls, want the permanent error after 1", err, calls)
	}
}

func TestProcessStopKillsGroup(t *testing.T) {
	p := StartProcess(t, "sh", "/bin/sh", "-c", `sleep 60 & echo "child=$!"; wait`)
	ctx := testContext(t)
	if err := p.WaitLog(ctx, "child="); err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(p.Logs(), "child=")))
	if err != nil {
		t.Fatalf("parse child pid from %q: %v", p.Logs(), err)
	}
	if err := p.Stop(); err == nil {
		t.Error("Stop returned nil for a shell killed by SIGTERM, want an exit error")
	}
	if !p.Exited() || p.ExitCode() != -1 {
		t.Errorf("Exited() = %v, ExitCode() = %d; want true, -1", p.Exited(), p.ExitCode())
	}
	if err := WaitFor(ctx, func() (bool, error) { return processGone(child), nil }); err != nil {
		t.Errorf("child %d of the stopped process still runs: %v", child, err)
	}
}

func TestProcessStopEscalatesToKill(t *testing.T) {
	p := StartProcess(t, "stubborn", "/bin/sh", "-c", `trap '' TERM; echo ready; while :; do sleep 1; done`)
	if err := p.WaitLog(testContext(t), "ready"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = p.StopWithin(200 * time.Millisecond)
	if !p.Exited() {
		t.Fatal("process still running after StopWithin")
	}
	if elapsed := time.Since(start); elapsed < 200*time.Millisecond {
		t.Errorf("stopped after %v, before the SIGTERM grace period", elapsed)
	}
}

func TestProcessWaitAndExitCode(t *testing.T) {
	p := StartProcess(t, "exit3", "/bin/sh", "-c", "echo bye; exit 3")
	err := p.Wait(testContext(t))
	if err == nil || p.ExitCode() != 3 {
		t.Fatalf("Wait = %v, ExitCode = %d; want an error and 3", err, p.ExitCode())
	}
	if got := p.LogTail(5); got != "bye" {
		t.Errorf("LogTail = %q, want bye", got)
	}
	if err := p.WaitLog(testContext(t), "never printed"); err == nil {
		t.Error("WaitLog on an exited process returned nil")
	}
}

func TestFreePortAndWaitPort(t *testing.T) {
	s := StartUpstream(t, "u")
	if err := WaitPort(testContext(t), s.Addr()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	closed := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	if err := WaitPort(ctx, closed); err == nil {
		t.Fatalf("WaitPort(%s) on a closed port returned nil", closed)
	}
}

func TestUpstreamEchoThroughHTTPGet(t *testing.T) {
	s := StartUpstream(t, "echo")
	resp, err := HTTPGet(testContext(t), s.URL()+"/a?b=c", "example.test", map[string]string{"X-Test": "1"})
	if err != nil {
		t.Fatal(err)
	}
	var echo struct {
		Upstream, Host, Path, Query string
		Headers                     map[string]string
	}
	if err := resp.JSON(&echo); err != nil {
		t.Fatal(err)
	}
	if resp.Status != 200 || echo.Upstream != "echo" || echo.Host != "example.test" ||
		echo.Path != "/a" || echo.Query != "b=c" || echo.Headers["X-Test"] != "1" {
		t.Fatalf("unexpected echo: %d %+v", resp.Status, echo)
	}
}

func TestRedisStartStop(t *testing.T) {
	var addr string
	t.Run("running", func(t *testing.T) {
		addr = StartRedis(t)
		if err := RedisPing(testContext(t), addr); err != nil {
			t.Fatal(err)
		}
	})
	if err := RedisPing(testContext(t), addr); err == nil {
		t.Fatalf("redis-server on %s still answers after its test ended", addr)
	}
}
