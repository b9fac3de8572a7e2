package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/extauthz"
	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/internal/jwttest"
	"github.com/tollgate/tollgate/internal/loadgen"
)

// redisRows measures API-key Checks against a real redis-server: with the
// lookup cache off (one Redis round trip per Check) and with the default
// cache.
func redisRows(w io.Writer, iss *jwttest.Issuer) error {
	addr, stop, err := startRedis()
	if err != nil {
		return err
	}
	defer stop()
	for _, row := range []struct {
		name  string
		cache int
	}{{"API key, Redis (lookup cache off: one round trip)", -1}, {"API key, Redis (default 5 s lookup cache)", 0}} {
		c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 16, ContextTimeoutEnabled: true})
		st, err := apikey.NewRedisStore(context.Background(), c, []byte("bench-pepper-0123456789"), apikey.RedisOptions{CacheSize: row.cache})
		if err != nil {
			return err
		}
		svc := extauthz.New(context.Background(), extauthz.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Keys: st})
		if _, err := svc.Swap(policy(iss)); err != nil {
			return err
		}
		key, _, err := st.Create(context.Background(), apikey.Record{Consumer: "acme", Roles: []string{"user"}, CreatedAt: time.Now()})
		if err != nil {
			return err
		}
		h := map[string]string{"x-api-key": key}
		fmt.Fprintln(w, checkRow(measure(svc, "apiKey", func(int) map[string]string { return h }, 0), row.name))
		svc.Close()
		st.Close()
		c.Close()
	}
	return nil
}

func startRedis() (string, func(), error) {
	port, err := loadgen.FreePort()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command("redis-server", "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start redis-server: %w", err)
	}
	stop := func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() }
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := loadgen.WaitTCP(addr, 10*time.Second); err != nil {
		stop()
		return "", nil, err
	}
	return addr, stop, nil
}
