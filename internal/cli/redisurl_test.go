package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestRedisOptions(t *testing.T) {
	tests := []struct {
		url       string
		wantAddrs int
		wantDB    int
		cluster   bool
		master    string
		wantErr   bool
	}{
		{url: "redis://127.0.0.1:6379/2", wantAddrs: 1, wantDB: 2},
		{url: "redis://:secret@127.0.0.1:6379", wantAddrs: 1},
		{url: "rediss://127.0.0.1:6380", wantAddrs: 1},
		{url: "redis+cluster://a:7000,b:7001,c:7002", wantAddrs: 3, cluster: true},
		{url: "redis+sentinel://s1:26379,s2:26379/mymaster", wantAddrs: 2, master: "mymaster"},
		{url: "redis+sentinel://s1:26379", wantErr: true},
		{url: "redis+ring://a:1", wantErr: true},
		{url: "http://a:1", wantErr: true},
		{url: "redis://a:1/x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			o, err := redisOptions(tt.url)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if len(o.Addrs) != tt.wantAddrs || o.DB != tt.wantDB || o.IsClusterMode != tt.cluster || o.MasterName != tt.master || !o.ContextTimeoutEnabled {
				t.Fatalf("options = %+v", o)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"redis://user:s3cret@127.0.0.1:6379/0", "redis://user:xxxxx@127.0.0.1:6379/0"},
		{"redis://:s3cret@127.0.0.1:6379", "redis://:xxxxx@127.0.0.1:6379"},
		{"redis://s3cret@127.0.0.1:6379", "redis://xxxxx@127.0.0.1:6379"},
		{"rediss://u:s3cret@h:6380", "rediss://u:xxxxx@h:6380"},
		{"redis+cluster://:s3cret@a:7000,b:7001", "redis+cluster://:xxxxx@a:7000,b:7001"},
		{"redis+sentinel://:s3cret@s1:26379,s2:26379/mymaster", "redis+sentinel://:xxxxx@s1:26379,s2:26379/mymaster"},
		{"redis://h:1/0?password=s3cret", "redis://h:1/0?xxxxx"},
		{"redis://u:s3cret@host:badport/0", "redis://xxxxx@host:badport/0"},
		{"redis://u:s3/cret@h:1/0", "redis://xxxxx@h:1/0"},
		{"redis://s3/cret@h:1", "redis://xxxxx@h:1"},
		{"redis://u:s3?cret@h:1", "redis://xxxxx@h:1"},
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
	}
	for _, tt := range tests {
		if got := redactURL(tt.raw); got != tt.want {
			t.Errorf("redactURL(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

// TestRedisOptionsErrorsHidePassword: every refusal of a --redis/--store
// URL names it without its password, whatever part of the URL is wrong.
func TestRedisOptionsErrorsHidePassword(t *testing.T) {
	for _, raw := range []string{
		"redis://user:s3cret@host:badport/0",   // url.Parse: invalid port
		"redis://us%zz:s3cret@a:1",             // url.Parse: bad escape
		"redis://user:s3:cret@a:1/x",           // not a database number
		"redis://user:s3/cret@a:1/0",           // unescaped "/" in the password
		"redis+sentinel://:s3cret@127.0.0.1:1", // no master name
		"redis+ring://:s3cret@a:1",             // unknown mode
		"http://:s3cret@a:1",                   // wrong scheme
		"redis://:s3cret@/0",                   // no address
		"redis://s3cret@a:1/x?password=s3cret", // legacy password-as-user, query
		"redis://:s3cret@a:1/0/\x7f",           // control character
		"redis://u:s3cret@[::1:1/0",            // bad IPv6 literal
	} {
		_, err := redisOptions(raw)
		if err == nil {
			t.Errorf("%q: accepted", raw)
			continue
		}
		for _, part := range []string{"s3cret", "s3:cret", "cret"} {
			if strings.Contains(err.Error(), part) {
				t.Errorf("redisOptions(%q) error quotes the password: %v", raw, err)
			}
		}
	}
}

// TestServeRedisFlagsNeverPrintPassword runs serve with an invalid or an
// unreachable redis://user:s3cret@... in --redis and --store and checks
// that neither the error nor the log quotes the password.
func TestServeRedisFlagsNeverPrintPassword(t *testing.T) {
	base := []string{"--data-dir", t.TempDir(), "--admin-token", "t", "--xds-addr", "127.0.0.1:0", "--authz-addr", "127.0.0.1:0",
		"--ratelimit-addr", "127.0.0.1:0", "--extproc-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--key-pepper", "0123456789abcdef"}
	const unreachable = "redis://user:s3cret@127.0.0.1:1/0"
	tests := []struct {
		name string
		args []string
	}{
		{"invalid --redis", []string{"serve", "--redis", "redis://user:s3cret@host:badport/0"}},
		{"invalid --redis, not a database", []string{"serve", "--redis", "redis://user:s3cret@127.0.0.1:1/x"}},
		{"invalid --store", []string{"serve", "--store", "redis+sentinel://:s3cret@127.0.0.1:1"}},
		{"unreachable --store", []string{"serve", "--store", unreachable}},
		{"invalid --redis, authz only", []string{"serve", "--only", "authz", "--redis", "redis+ring://:s3cret@a:1"}},
		{"unreachable --redis, rate limit only (logs)", []string{"serve", "--only", "ratelimit", "--redis", unreachable}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			root := NewRoot(&out, &out)
			root.SetArgs(append(tt.args, base...))
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			err := root.ExecuteContext(ctx)
			all := out.String()
			if err != nil {
				all += "\n" + err.Error()
			}
			if !strings.Contains(all, "127.0.0.1:1") && !strings.Contains(all, "xxxxx") && !strings.Contains(all, "a:1") && !strings.Contains(all, "host:badport") {
				t.Fatalf("the output names no Redis at all, so this test checks nothing:\n%s", all)
			}
			if strings.Contains(all, "s3cret") {
				t.Fatalf("the output quotes the Redis password:\n%s", all)
			}
		})
	}
}

// TestNewRedisClientReloadsClusterSlots checks that a cluster client
// re-reads the slot map every clusterStateReload (go-redis's default, 60 s,
// kept a dead master's slots down for a minute after a failover), and
// that the other URL forms keep their client types.
func TestNewRedisClientReloadsClusterSlots(t *testing.T) {
	tests := []struct {
		url  string
		want string
	}{
		{"redis+cluster://127.0.0.1:1,127.0.0.1:2", "*redis.ClusterClient"},
		{"redis+cluster://127.0.0.1:1", "*redis.ClusterClient"},
		{"redis://127.0.0.1:1,127.0.0.1:2", "*redis.ClusterClient"},
		{"redis+sentinel://127.0.0.1:1,127.0.0.1:2/m", "*redis.Client"},
		{"redis://127.0.0.1:1/0", "*redis.Client"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			o, err := redisOptions(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			c := newRedisClient(o)
			defer c.Close()
			if got := fmt.Sprintf("%T", c); got != tt.want {
				t.Fatalf("client %s, want %s", got, tt.want)
			}
			if cc, ok := c.(*redis.ClusterClient); ok {
				if got := cc.Options().ClusterStateReloadInterval; got != clusterStateReload {
					t.Fatalf("ClusterStateReloadInterval %s, want %s", got, clusterStateReload)
				}
			}
		})
	}
}

// TestHotPathRedisOptionsAreBounded: the clients on request paths never
// wait longer than hotRedisTimeout for a dial, a reply or a pooled
// connection, dial once and retry a command once.
func TestHotPathRedisOptionsAreBounded(t *testing.T) {
	for _, raw := range []string{"redis://127.0.0.1:6379/0", "redis+cluster://h1:1,h2:2", "redis+sentinel://h1:1/m"} {
		o, err := hotPathRedisOptions(raw)
		if err != nil {
			t.Fatal(err)
		}
		for name, d := range map[string]time.Duration{"dial": o.DialTimeout, "read": o.ReadTimeout,
			"write": o.WriteTimeout, "pool": o.PoolTimeout} {
			if d <= 0 || d > hotRedisTimeout {
				t.Errorf("%s: %s timeout %v, want in (0, %v]", raw, name, d, hotRedisTimeout)
			}
		}
		if !o.ContextTimeoutEnabled || o.MaxRetries != 1 || o.DialerRetries != 1 || o.MaxRetryBackoff > 32*time.Millisecond {
			t.Errorf("%s: context %v, retries %d, dial attempts %d, backoff %v", raw, o.ContextTimeoutEnabled,
				o.MaxRetries, o.DialerRetries, o.MaxRetryBackoff)
		}
	}
}
