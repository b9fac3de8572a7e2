package policy

import "fmt"

// Edge limits.
const (
	maxXFFHops         = 10
	maxRequestHeaderKB = 8192 // Envoy's limit
	maxHeaderCount     = 10000
)

func (c *checker) edge(path string, e Edge) {
	c.intRange(fieldPath(path, "xffTrustedHops"), e.XFFTrustedHops, 0, maxXFFHops,
		"the number of proxies (load balancers, CDNs) in front of Envoy that append to X-Forwarded-For")
	c.intRange(fieldPath(path, "maxRequestHeadersKb"), e.MaxRequestHeadersKB, 1, maxRequestHeaderKB, "the limit in KiB")
	c.intRange(fieldPath(path, "maxHeadersCount"), e.MaxHeadersCount, 1, maxHeaderCount, "the number of headers")
	for _, f := range []struct{ name, v string }{
		{"requestHeadersTimeout", e.RequestHeadersTimeout},
		{"streamIdleTimeout", e.StreamIdleTimeout},
		{"idleTimeout", e.IdleTimeout},
	} {
		if f.v == "" {
			continue
		}
		fp := fieldPath(path, f.name)
		if d, ok := c.duration(fp, f.v); ok && d <= 0 {
			c.errorf(fp, `use a positive duration, e.g. "10s"`, "%s must be positive, got %s", f.name, f.v)
		}
	}
}

// intRange checks an optional integer against [lo, hi].
func (c *checker) intRange(path string, v *int, lo, hi int, what string) {
	if v != nil && (*v < lo || *v > hi) {
		c.errorf(path, fmt.Sprintf("use %s from %d to %d", what, lo, hi), "%d is out of range", *v)
	}
}
