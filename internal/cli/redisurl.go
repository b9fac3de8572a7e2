package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisOptions parses --redis into go-redis universal options:
//
//	redis://[:password@]host:port[/db]              one server
//	redis+cluster://[:password@]h1:p1,h2:p2         Redis Cluster
//	redis+sentinel://[:password@]h1:p1,h2:p2/master Sentinel, with the master's name
//
// (rediss:// and rediss+… use TLS). Every client honours the caller's
// deadline (ContextTimeoutEnabled), so a slow Redis cannot stall a request
// past its budget.
func redisOptions(raw string) (*redis.UniversalOptions, error) {
	shown := redactURL(raw) // errors never quote the password
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL, and its reason may quote a part
		// of the password (an unescaped ":" or "/" in it makes a bad port).
		var uerr *url.Error
		if errors.As(err, &uerr) && !strings.Contains(raw, "@") {
			return nil, fmt.Errorf("parse %q: %w", shown, uerr.Err)
		}
		return nil, fmt.Errorf("parse %q: not a valid URL (percent-encode special characters of the user name and password)", shown)
	}
	scheme, mode, _ := strings.Cut(u.Scheme, "+")
	if scheme != "redis" && scheme != "rediss" {
		return nil, fmt.Errorf("%q: the scheme must be redis, rediss, redis+cluster or redis+sentinel", shown)
	}
	o := &redis.UniversalOptions{Addrs: strings.Split(u.Host, ","), ContextTimeoutEnabled: true}
	if u.User != nil {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
	}
	if err := setRedisMode(o, mode, strings.Trim(u.Path, "/"), shown); err != nil {
		return nil, err
	}
	if scheme == "rediss" {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if len(o.Addrs) == 0 || o.Addrs[0] == "" {
		return nil, fmt.Errorf("%q: no Redis address", shown)
	}
	return o, nil
}

// clusterStateReload bounds how long a Redis Cluster client keeps routing a
// slot to the master it last learnt. go-redis re-reads the slot map on a
// MOVED reply, but a master that died answers nothing: every command for
// its slots fails to connect and no MOVED comes, so with go-redis's default
// (60 s) a failed-over master kept its slots' rate limits, key lookups and
// policy store down for up to a minute after the cluster had promoted its
// replica (TestRedisClusterFailoverUnderLoad). The re-read is one CLUSTER
// SLOTS per interval per client, only while commands are sent.
const clusterStateReload = time.Second

// newRedisClient returns the client o describes, as
// redis.NewUniversalClient does, with Cluster clients re-reading the slot
// map every clusterStateReload.
func newRedisClient(o *redis.UniversalOptions) redis.UniversalClient {
	if o.MasterName == "" && (o.IsClusterMode || len(o.Addrs) > 1) {
		co := o.Cluster()
		co.ClusterStateReloadInterval = clusterStateReload
		return redis.NewClusterClient(co)
	}
	return redis.NewUniversalClient(o)
}

// Ceilings of the Redis clients on request paths (API-key lookups, rate
// limit counters): go-redis's defaults (5 s dial tried 5 times 100 ms
// apart, 3 s read, 4 s pool wait, 3 command retries with backoffs up to
// 512 ms) would hold a call far past Envoy's ext_authz (200 ms) and
// rate-limit (100 ms) timeouts. Each call is cut earlier still by its own
// context deadline (ContextTimeoutEnabled); a refused dial fails at once
// and the callers' circuit breakers do the retrying.
const (
	hotRedisTimeout      = time.Second
	hotRedisRetries      = 1 // one command retry: a pooled connection may be stale after a restart
	hotRedisDialAttempts = 1
	hotRedisRetryBackoff = 32 * time.Millisecond
)

// hotPathRedisOptions returns redisOptions(raw) for a client on a request
// path, with bounded dial, read, write and pool-wait timeouts and short
// retry backoffs. A dead server is then detected by the callers' circuit
// breakers well within Envoy's timeouts.
func hotPathRedisOptions(raw string) (*redis.UniversalOptions, error) {
	o, err := redisOptions(raw)
	if err != nil {
		return nil, err
	}
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = hotRedisTimeout, hotRedisTimeout, hotRedisTimeout, hotRedisTimeout
	o.MaxRetries, o.DialerRetries, o.MaxRetryBackoff = hotRedisRetries, hotRedisDialAttempts, hotRedisRetryBackoff
	return o, nil
}

// redisLogger forwards go-redis's own messages (one per failed dial,
// among others) to the serve logger at debug level: an outage is reported
// once by the callers' circuit breakers, not per connection attempt.
type redisLogger struct{ log *slog.Logger }

// Printf implements go-redis's internal.Logging.
func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}

// setRedisMode applies the scheme's mode (after "+") and the URL's path:
// a database number, or the sentinel master's name. shown is the redacted
// URL for errors.
func setRedisMode(o *redis.UniversalOptions, mode, path, shown string) error {
	switch mode {
	case "":
		if path != "" {
			db, err := strconv.Atoi(path)
			if err != nil {
				return fmt.Errorf("%q: the path must be a database number", shown)
			}
			o.DB = db
		}
	case "cluster":
		o.IsClusterMode = true
	case "sentinel":
		if path == "" {
			return fmt.Errorf("%q: name the sentinel master in the path, e.g. redis+sentinel://h1:26379,h2:26379/mymaster", shown)
		}
		o.MasterName = path
	default:
		return fmt.Errorf("%q: unknown Redis mode %q (use cluster or sentinel)", shown, mode)
	}
	return nil
}

// redactURL returns raw fit for errors and logs: a password becomes
// "xxxxx" (URL.Redacted), and so do a user name without password (the
// legacy redis://secret@host form) and a query (?password=...). A URL that
// does not parse, or has an "@" outside its user info (an unescaped "/" in
// a password), loses everything between "://" and its last "@".
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.User == nil && strings.Contains(raw, "@")) {
		return redactUserinfo(raw)
	}
	if u.User != nil {
		if _, has := u.User.Password(); !has {
			u.User = url.User("xxxxx")
		}
	}
	if u.RawQuery != "" {
		u.RawQuery = "xxxxx"
	}
	return u.Redacted()
}

// redactUserinfo hides what precedes raw's last "@" (after the scheme),
// then its query.
func redactUserinfo(raw string) string {
	if at := strings.LastIndex(raw, "@"); at >= 0 {
		start := 0
		if i := strings.Index(raw, "://"); i >= 0 && i < at {
			start = i + len("://")
		}
		raw = raw[:start] + "xxxxx" + raw[at:]
	}
	if q := strings.Index(raw, "?"); q >= 0 {
		raw = raw[:q] + "?xxxxx"
	}
	return raw
}
