package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// redisStartAttempts is how many free ports StartRedis tries, in case another
// process takes the port between FreePort and redis-server's bind.
const redisStartAttempts = 3

// StartRedis starts a redis-server on a free loopback port, without
// persistence, and waits until it answers PING. It returns host:port. The
// server is killed when the test ends.
func StartRedis(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("harness: redis-server not on PATH (run `make tools`): %v", err)
	}
	var lastErr error
	for range redisStartAttempts {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
		p := StartProcessSpec(t, ProcessSpec{Name: "redis-" + addr, Bin: bin, Args: redisArgs(addr, t.TempDir())})
		ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
		lastErr = waitRedis(ctx, p, addr)
		cancel()
		if lastErr == nil {
			return addr
		}
		_ = p.Kill()
	}
	t.Fatalf("harness: start redis-server: %v", lastErr)
	return ""
}

func redisArgs(addr, dir string) []string {
	_, port, _ := net.SplitHostPort(addr)
	return []string{
		"--port", port,
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
	}
}

// waitRedis waits until the server at addr answers PING, or p exits.
func waitRedis(ctx context.Context, p *Process, addr string) error {
	err := WaitFor(ctx, func() (bool, error) {
		if p.Exited() {
			return false, Permanent(fmt.Errorf("redis-server exited: %v\n%s", p.waitErr, p.LogTail(10)))
		}
		if err := RedisPing(ctx, addr); err != nil {
			return false, err
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("wait for redis-server on %s: %w", addr, err)
	}
	return nil
}

// RedisPing sends PING to the Redis server at addr and checks for PONG.
func RedisPing(ctx context.Context, addr string) error {
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("redis ping %s: %w", addr, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return fmt.Errorf("redis ping %s: %w", addr, err)
	}
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return fmt.Errorf("redis ping %s: write: %w", addr, err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("redis ping %s: read: %w", addr, err)
	}
	if line != "+PONG\r\n" {
		return errors.New("redis ping " + addr + ": unexpected reply " + strconv.Quote(line))
	}
	return nil
}
