package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/internal/loadgen"
)

// errNoRedis reports that redis-server is not installed: the Redis rows are
// skipped.
var errNoRedis = errors.New("redis-server not on PATH (make tools)")

// redisServer is a throwaway redis-server without persistence.
type redisServer struct {
	proc   *proc
	client *redis.Client
}

// startRedis starts redis-server on a free loopback port, with its files
// in dir, and waits until it answers PING.
func startRedis(ctx context.Context, dir string) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errNoRedis
	}
	port, err := loadgen.FreePort()
	if err != nil {
		return nil, err
	}
	p, err := startProc("redis-server", filepath.Join(dir, "redis.log"), bin,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	if err != nil {
		return nil, err
	}
	client := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	r := &redisServer{proc: p, client: client}
	if err := waitFor(ctx, p, 10*time.Second, func(ctx context.Context) error { return client.Ping(ctx).Err() }); err != nil {
		r.stop()
		return nil, err
	}
	return r, nil
}

// stop closes the client and kills the server.
func (r *redisServer) stop() {
	_ = r.client.Close()
	r.proc.stop()
}

// commands returns the server's total_commands_processed (INFO stats).
func (r *redisServer) commands(ctx context.Context) (int64, error) {
	info, err := r.client.Info(ctx, "stats").Result()
	if err != nil {
		return 0, fmt.Errorf("redis INFO stats: %w", err)
	}
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "total_commands_processed:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("redis total_commands_processed %q: %w", v, err)
			}
			return n, nil
		}
	}
	return 0, errors.New("redis INFO stats has no total_commands_processed")
}
