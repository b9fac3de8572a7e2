package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/extauthz/contract"
)

// latencyCap is the preallocated length of each goroutine's latency slice:
// more than a 3 s row records at about 700 000 decisions/s on 2 cores.
const latencyCap = 1 << 20

// checkCase is one row of the Check() table.
type checkCase struct {
	name  string
	svc   *authzService
	next  func() *authv3.CheckRequest // the request of the next call
	rot   *rotation                   // the first-seen row's token rotation
	redis *redisServer                // counts Redis commands when set
}

// checkSection measures Check() in-process for each credential.
func checkSection(ctx context.Context, w io.Writer, cfg config, toks *tokens) error {
	dir, err := os.MkdirTemp("", "tollgate-authz-bench-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	var cl closers
	defer cl.close()
	cases, skipped, err := checkCases(ctx, dir, toks, &cl)
	if err != nil {
		return err
	}
	g := 2 * runtime.GOMAXPROCS(0)
	fmt.Fprintf(w, "(*extauthz.Service).Check in-process, with Prometheus metrics on as `tollgate serve` runs it, from %d "+
		"goroutines (2×GOMAXPROCS), %s unrecorded then %s per row; denied counts decisions that were not OK:\n\n",
		g, cfg.checkWarm, cfg.checkDur)
	table(w, "lrrrrr", "credential", "decisions/s", "p50", "p99", "denied", "Redis commands/decision")
	bufs := make([][]time.Duration, g)
	for i := range bufs {
		bufs[i] = make([]time.Duration, 0, latencyCap)
	}
	notes := skipped
	for _, c := range cases {
		note, err := checkRow(ctx, w, cfg, c, bufs)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		if note != "" {
			notes = append(notes, note)
		}
	}
	fmt.Fprintln(w)
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	return nil
}

// checkRow measures and prints one case, and returns a note about it.
func checkRow(ctx context.Context, w io.Writer, cfg config, c checkCase, bufs [][]time.Duration) (string, error) {
	if err := c.svc.reset(); err != nil {
		return "", err
	}
	hits0, misses0, err := c.svc.jwtCache(ctx)
	if err != nil {
		return "", err
	}
	checkLoops(ctx, c, bufs, cfg.checkWarm)
	cmds0, err := c.redisCommands(ctx)
	if err != nil {
		return "", err
	}
	s := checkLoops(ctx, c, bufs, cfg.checkDur)
	cmds1, err := c.redisCommands(ctx)
	if err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	perDecision := "–"
	if c.redis != nil && s.ok+s.errs > 0 {
		perDecision = fmt.Sprintf("%.2f", float64(cmds1-cmds0)/float64(s.ok+s.errs))
	}
	row(w, c.name, perSecond(s.rate()), micros(s.p50), micros(s.p99), group(int64(s.errs)), perDecision)
	if c.rot == nil {
		return "", nil
	}
	if err := c.rot.err(); err != nil {
		return "", err
	}
	hits1, misses1, err := c.svc.jwtCache(ctx)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s: the verification cache answered %d hits and %d misses over the row and its warm-up "+
		"(%d distinct tokens cycled, the cache emptied every %d).", c.name, hits1-hits0, misses1-misses0, c.rot.n, c.rot.n/2), nil
}

func (c checkCase) redisCommands(ctx context.Context) (int64, error) {
	if c.redis == nil {
		return 0, nil
	}
	return c.redis.commands(ctx)
}

// checkLoops calls Check from one goroutine per buffer for d, recording
// the latency of every allowed decision.
func checkLoops(ctx context.Context, c checkCase, bufs [][]time.Duration, d time.Duration) stats {
	stop, cancel := stopFlag(ctx, d)
	defer cancel()
	denied := make([]int, len(bufs))
	var wg sync.WaitGroup
	start := time.Now()
	for k := range bufs {
		wg.Go(func() { bufs[k], denied[k] = checkLoop(ctx, c, stop, bufs[k][:0]) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	errs := 0
	for _, n := range denied {
		errs += n
	}
	return summarise(bufs, errs, elapsed)
}

func checkLoop(ctx context.Context, c checkCase, stop *atomic.Bool, lat []time.Duration) ([]time.Duration, int) {
	denied := 0
	for !stop.Load() {
		req := c.next()
		t0 := time.Now()
		resp, err := c.svc.Check(ctx, req)
		d := time.Since(t0)
		if err != nil || resp.GetOkResponse() == nil {
			denied++
			continue
		}
		lat = append(lat, d)
	}
	return lat, denied
}

// checkRequest is the CheckRequest Envoy sends for GET /orders/42 through
// a route that accepts methods and needs role "user", with the
// translator's allowed_headers: only the credential header is present.
func checkRequest(methods, header, value string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      peer("127.0.0.1", 51234),
		Destination: peer("127.0.0.1", 10000),
		ContextExtensions: map[string]string{
			contract.KeyRoute: "orders", contract.KeyMethods: methods, contract.KeyRoles: benchRole,
		},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "6f1c3a52-1d8e-4a52-9e43-0c2b8f7d4a10", Method: "GET", Path: "/orders/42", Host: "api.bench",
			Scheme: "http", Protocol: "HTTP/1.1", Headers: map[string]string{header: value},
		}},
	}}
}

func peer(ip string, port uint32) *authv3.AttributeContext_Peer {
	return &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
		SocketAddress: &corev3.SocketAddress{Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}},
	}}}
}

// apiKeyCase creates a key in keys and returns the row that presents it.
func apiKeyCase(ctx context.Context, name string, svc *authzService, keys apikey.Store) (checkCase, error) {
	key, _, err := keys.Create(ctx, apikey.Record{Consumer: "acme", Roles: []string{benchRole}})
	if err != nil {
		return checkCase{}, fmt.Errorf("create API key: %w", err)
	}
	req := checkRequest("apiKey", apiKeyHeader, key)
	return checkCase{name: name, svc: svc, next: func() *authv3.CheckRequest { return req }}, nil
}
