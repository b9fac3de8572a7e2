package cli

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"strconv"
	"strings"

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
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", raw, err)
	}
	scheme, mode, _ := strings.Cut(u.Scheme, "+")
	if scheme != "redis" && scheme != "rediss" {
		return nil, fmt.Errorf("%q: the scheme must be redis, rediss, redis+cluster or redis+sentinel", raw)
	}
	o := &redis.UniversalOptions{Addrs: strings.Split(u.Host, ","), ContextTimeoutEnabled: true}
	if u.User != nil {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
	}
	path := strings.Trim(u.Path, "/")
	switch mode {
	case "":
		if path != "" {
			if o.DB, err = strconv.Atoi(path); err != nil {
				return nil, fmt.Errorf("%q: the path must be a database number", raw)
			}
		}
	case "cluster":
		o.IsClusterMode = true
	case "sentinel":
		if path == "" {
			return nil, fmt.Errorf("%q: name the sentinel master in the path, e.g. redis+sentinel://h1:26379,h2:26379/mymaster", raw)
		}
		o.MasterName = path
	default:
		return nil, fmt.Errorf("%q: unknown Redis mode %q (use cluster or sentinel)", raw, mode)
	}
	if scheme == "rediss" {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if len(o.Addrs) == 0 || o.Addrs[0] == "" {
		return nil, fmt.Errorf("%q: no Redis address", raw)
	}
	return o, nil
}
