package harness

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterNodeTimeout is the cluster-node-timeout of the clusters
// StartRedisCluster starts: a master unreachable that long is failed over.
const ClusterNodeTimeout = time.Second

// RedisNode is one redis-server process of a topology.
type RedisNode struct {
	Addr string // 127.0.0.1:port
	Proc *Process
	args []string
	bin  string
}

// Kill sends SIGKILL to the node (a crash: no shutdown, no failover hand-off).
func (n *RedisNode) Kill() error { return n.Proc.Kill() }

// Do runs one command on the node with its own short-lived connection.
func (n *RedisNode) Do(ctx context.Context, args ...any) *redis.Cmd {
	c := redis.NewClient(&redis.Options{Addr: n.Addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	return c.Do(ctx, args...)
}

// Info returns the fields of INFO section on the node.
func (n *RedisNode) Info(ctx context.Context, section string) (map[string]string, error) {
	s, err := n.Do(ctx, "INFO", section).Text()
	if err != nil {
		return nil, fmt.Errorf("INFO %s on %s: %w", section, n.Addr, err)
	}
	return parseInfo(s), nil
}

// parseInfo reads the "name:value" lines of INFO or CLUSTER INFO.
func parseInfo(s string) map[string]string {
	m := map[string]string{}
	for line := range strings.SplitSeq(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m
}

// RedisCluster is a Redis Cluster of three masters with one replica each,
// on loopback.
type RedisCluster struct {
	Nodes []*RedisNode
}

// URL is the --redis/--store URL of the cluster, naming every node.
func (c *RedisCluster) URL() string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return "redis+cluster://" + strings.Join(addrs, ",")
}

// StartRedisCluster starts six redis-server processes with cluster-enabled
// yes and a ClusterNodeTimeout, joins them with `redis-cli --cluster
// create --cluster-replicas 1`, and waits until every node reports
// cluster_state:ok and every replica's link to its master is up. The
// processes are killed when the test ends.
func StartRedisCluster(t testing.TB) *RedisCluster {
	t.Helper()
	bin := redisBin(t)
	c := &RedisCluster{}
	for range 6 {
		c.Nodes = append(c.Nodes, startRedisNode(t, bin, clusterArgs(t)))
	}
	create := []string{"--cluster", "create"}
	for _, n := range c.Nodes {
		create = append(create, n.Addr)
	}
	create = append(create, "--cluster-replicas", "1", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, redisCLI(t), create...).CombinedOutput(); err != nil {
		t.Fatalf("harness: redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatalf("harness: %v", err)
	}
	return c
}

// replicatedArgs are redisArgs for a node with replicas: a replica's full
// sync starts at once instead of after the default 5 s wait for others.
func replicatedArgs(addr, dir string) []string {
	return append(redisArgs(addr, dir), "--repl-diskless-sync-delay", "0")
}

// clusterArgs returns the args of a cluster node. Each call picks the
// node's cluster bus port with FreePort too: Redis's default, the client
// port + 10000, falls in the kernel's ephemeral range, where an outgoing
// connection of a busy suite can hold it (CI saw three bus binds in a row
// fail with "Address already in use").
func clusterArgs(t testing.TB) func(addr, dir string) []string {
	return func(addr, dir string) []string {
		return append(replicatedArgs(addr, dir),
			"--cluster-enabled", "yes",
			"--cluster-port", strconv.Itoa(FreePort(t)),
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.FormatInt(ClusterNodeTimeout.Milliseconds(), 10),
			// A replica always stands for election, however long its master was gone.
			"--cluster-replica-validity-factor", "0")
	}
}

// WaitHealthy waits until every live node reports cluster_state:ok, knows
// three masters with all 16384 slots assigned, and every live replica's
// link to its master is up.
func (c *RedisCluster) WaitHealthy(ctx context.Context) error {
	err := WaitFor(ctx, func() (bool, error) {
		for _, n := range c.Live() {
			ci, err := n.Do(ctx, "CLUSTER", "INFO").Text()
			if err != nil {
				return false, err
			}
			info := parseInfo(ci)
			if info["cluster_state"] != "ok" || info["cluster_slots_ok"] != "16384" {
				return false, fmt.Errorf("%s: cluster_state %s, %s slots ok", n.Addr, info["cluster_state"], info["cluster_slots_ok"])
			}
			repl, err := n.Info(ctx, "replication")
			if err != nil {
				return false, err
			}
			if repl["role"] == "slave" && repl["master_link_status"] != "up" {
				return false, fmt.Errorf("%s: replica link %s", n.Addr, repl["master_link_status"])
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("redis cluster not healthy: %w", err)
	}
	return nil
}

// Live returns the nodes whose process runs.
func (c *RedisCluster) Live() []*RedisNode {
	var live []*RedisNode
	for _, n := range c.Nodes {
		if !n.Proc.Exited() {
			live = append(live, n)
		}
	}
	return live
}

// MasterOf returns the node that serves key's slot now (as a live node
// sees it) and the slot.
func (c *RedisCluster) MasterOf(ctx context.Context, key string) (*RedisNode, int, error) {
	live := c.Live()
	if len(live) == 0 {
		return nil, 0, fmt.Errorf("no live cluster node")
	}
	slot, err := live[0].Do(ctx, "CLUSTER", "KEYSLOT", key).Int()
	if err != nil {
		return nil, 0, fmt.Errorf("CLUSTER KEYSLOT %s: %w", key, err)
	}
	slots, err := live[0].Do(ctx, "CLUSTER", "SHARDS").Slice()
	if err != nil {
		return nil, 0, fmt.Errorf("CLUSTER SHARDS: %w", err)
	}
	addr, err := shardMaster(slots, slot)
	if err != nil {
		return nil, 0, err
	}
	for _, n := range c.Nodes {
		if n.Addr == addr {
			return n, slot, nil
		}
	}
	return nil, 0, fmt.Errorf("slot %d: master %s is not a node of this cluster", slot, addr)
}

// shardMaster finds, in a CLUSTER SHARDS reply, the address of the healthy
// master serving slot.
func shardMaster(shards []any, slot int) (string, error) {
	for _, s := range shards {
		m := kv(s)
		ranges, _ := m["slots"].([]any)
		for i := 0; i+1 < len(ranges); i += 2 {
			lo, _ := ranges[i].(int64)
			hi, _ := ranges[i+1].(int64)
			if int64(slot) < lo || int64(slot) > hi {
				continue
			}
			nodes, _ := m["nodes"].([]any)
			for _, n := range nodes {
				nm := kv(n)
				if nm["role"] == "master" && nm["health"] == "online" {
					return net.JoinHostPort(fmt.Sprint(nm["ip"]), fmt.Sprint(nm["port"])), nil
				}
			}
			return "", fmt.Errorf("slot %d has no online master", slot)
		}
	}
	return "", fmt.Errorf("slot %d is not assigned", slot)
}

// kv turns a RESP2 flat list or a RESP3 map into a map.
func kv(v any) map[string]any {
	switch x := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, val := range x {
			m[fmt.Sprint(k)] = val
		}
		return m
	case []any:
		m := make(map[string]any, len(x)/2)
		for i := 0; i+1 < len(x); i += 2 {
			m[fmt.Sprint(x[i])] = x[i+1]
		}
		return m
	}
	return nil
}

// redisBin returns the path of redis-server.
func redisBin(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("harness: redis-server not on PATH (run `make tools`): %v", err)
	}
	return bin
}

// redisCLI returns the path of redis-cli.
func redisCLI(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("harness: redis-cli not on PATH (run `make tools`): %v", err)
	}
	return bin
}

// startRedisNode starts redis-server with args(addr, dir) on a free port
// and waits until it answers PING, trying a few ports.
func startRedisNode(t testing.TB, bin string, args func(addr, dir string) []string) *RedisNode {
	t.Helper()
	var lastErr error
	for range redisStartAttempts {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
		a := args(addr, t.TempDir())
		p := StartProcessSpec(t, ProcessSpec{Name: "redis-" + addr, Bin: bin, Args: a})
		ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
		lastErr = waitRedis(ctx, p, addr)
		cancel()
		if lastErr == nil {
			return &RedisNode{Addr: addr, Proc: p, args: a, bin: bin}
		}
		_ = p.Kill()
	}
	t.Fatalf("harness: start redis-server: %v", lastErr)
	return nil
}
