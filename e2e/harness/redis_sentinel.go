package harness

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SentinelMaster is the master name the topologies of StartRedisSentinel
// monitor.
const SentinelMaster = "tollgate"

// SentinelDownAfter is the sentinels' down-after-milliseconds: a master
// unreachable that long is subjectively down.
const SentinelDownAfter = time.Second

// RedisSentinel is one master, one replica and three sentinels (quorum 2)
// on loopback.
type RedisSentinel struct {
	Master, Replica *RedisNode
	Sentinels       []*RedisNode
}

// URL is the --redis/--store URL of the topology, naming every sentinel.
func (s *RedisSentinel) URL() string {
	addrs := make([]string, len(s.Sentinels))
	for i, n := range s.Sentinels {
		addrs[i] = n.Addr
	}
	return "redis+sentinel://" + strings.Join(addrs, ",") + "/" + SentinelMaster
}

// StartRedisSentinel starts a master, a replica of it and three sentinels
// monitoring it (down-after SentinelDownAfter, failover-timeout 10 s), and
// waits until every sentinel knows the replica and the other sentinels.
// The processes are killed when the test ends.
func StartRedisSentinel(t testing.TB) *RedisSentinel {
	t.Helper()
	bin := redisBin(t)
	s := &RedisSentinel{Master: startRedisNode(t, bin, replicatedArgs)}
	_, mport, _ := net.SplitHostPort(s.Master.Addr)
	s.Replica = startRedisNode(t, bin, func(addr, dir string) []string {
		return append(replicatedArgs(addr, dir), "--replicaof", "127.0.0.1", mport)
	})
	for range 3 {
		s.Sentinels = append(s.Sentinels, startRedisNode(t, bin, func(addr, dir string) []string {
			return sentinelArgs(t, addr, dir, mport)
		}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	if err := s.WaitHealthy(ctx, s.Master.Addr); err != nil {
		t.Fatalf("harness: %v", err)
	}
	return s
}

// sentinelArgs writes a sentinel's configuration (the sentinel rewrites
// it, so it must be its own file) and returns the arguments to run it.
func sentinelArgs(t testing.TB, addr, dir, masterPort string) []string {
	_, port, _ := net.SplitHostPort(addr)
	conf := fmt.Sprintf(`port %s
bind 127.0.0.1
dir %s
sentinel monitor %s 127.0.0.1 %s 2
sentinel down-after-milliseconds %s %d
sentinel failover-timeout %s 10000
sentinel parallel-syncs %s 1
`, port, dir, SentinelMaster, masterPort, SentinelMaster, SentinelDownAfter.Milliseconds(), SentinelMaster, SentinelMaster)
	path := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatalf("harness: write %s: %v", path, err)
	}
	return []string{path, "--sentinel"}
}

// WaitHealthy waits until every live sentinel names master (host:port) as
// the master, sees it up with a replica and knows the two other sentinels,
// and the replica's link is up.
func (s *RedisSentinel) WaitHealthy(ctx context.Context, master string) error {
	err := WaitFor(ctx, func() (bool, error) {
		for _, sn := range s.Sentinels {
			if sn.Proc.Exited() {
				continue
			}
			m, err := sn.Do(ctx, "SENTINEL", "MASTER", SentinelMaster).Result()
			if err != nil {
				return false, err
			}
			f := kv(m)
			got := net.JoinHostPort(fmt.Sprint(f["ip"]), fmt.Sprint(f["port"]))
			if got != master || f["flags"] != "master" || fmt.Sprint(f["num-slaves"]) != "1" || fmt.Sprint(f["num-other-sentinels"]) != "2" {
				return false, fmt.Errorf("sentinel %s: master %s flags %v, %v replicas, %v other sentinels",
					sn.Addr, got, f["flags"], f["num-slaves"], f["num-other-sentinels"])
			}
		}
		return s.replicaUp(ctx, master)
	})
	if err != nil {
		return fmt.Errorf("redis sentinel topology not healthy: %w", err)
	}
	return nil
}

// replicaUp reports whether the live data node that is not master is a
// replica with its link up.
func (s *RedisSentinel) replicaUp(ctx context.Context, master string) (bool, error) {
	for _, n := range []*RedisNode{s.Master, s.Replica} {
		if n.Addr == master || n.Proc.Exited() {
			continue
		}
		repl, err := n.Info(ctx, "replication")
		if err != nil {
			return false, err
		}
		if repl["master_link_status"] != "up" {
			return false, fmt.Errorf("replica %s: link %s", n.Addr, repl["master_link_status"])
		}
	}
	return true, nil
}

// CurrentMaster returns the address the first live sentinel gives for the
// master.
func (s *RedisSentinel) CurrentMaster(ctx context.Context) (string, error) {
	for _, sn := range s.Sentinels {
		if sn.Proc.Exited() {
			continue
		}
		a, err := sn.Do(ctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMaster).StringSlice()
		if err != nil {
			return "", fmt.Errorf("sentinel %s: %w", sn.Addr, err)
		}
		if len(a) == 2 {
			return net.JoinHostPort(a[0], a[1]), nil
		}
	}
	return "", fmt.Errorf("no live sentinel names the master")
}
