package harness

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestStartRedisCluster starts a 3+3 cluster and finds the master of a key.
func TestStartRedisCluster(t *testing.T) {
	start := time.Now()
	c := StartRedisCluster(t)
	t.Logf("cluster ready in %s", time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	masters := 0
	for _, n := range c.Nodes {
		repl, err := n.Info(ctx, "replication")
		if err != nil {
			t.Fatal(err)
		}
		if repl["role"] == "master" {
			masters++
		}
	}
	if masters != 3 {
		t.Fatalf("%d masters, want 3", masters)
	}
	m, slot, err := c.MasterOf(ctx, "{policy}")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := m.Do(ctx, "SET", "{policy}:x", "1").Text(); err != nil || got != "OK" {
		t.Fatalf("SET on the master of slot %d (%s): %q %v", slot, m.Addr, got, err)
	}
	if !strings.HasPrefix(c.URL(), "redis+cluster://127.0.0.1:") || strings.Count(c.URL(), ",") != 5 {
		t.Fatalf("URL %s", c.URL())
	}
}

// TestStartRedisSentinel starts a master, a replica and three sentinels.
func TestStartRedisSentinel(t *testing.T) {
	start := time.Now()
	s := StartRedisSentinel(t)
	t.Logf("sentinel topology ready in %s", time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if m, err := s.CurrentMaster(ctx); err != nil || m != s.Master.Addr {
		t.Fatalf("sentinels name master %q (%v), want %s", m, err, s.Master.Addr)
	}
	if !strings.HasSuffix(s.URL(), "/"+SentinelMaster) {
		t.Fatalf("URL %s", s.URL())
	}
}
