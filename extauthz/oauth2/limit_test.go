package oauth2

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestIntrospectConcurrencyCap: with MaxConcurrent requests in flight at
// a slow endpoint, a token that needs another is refused at once (an
// ErrOverloaded that is also ErrUnavailable) without reaching the
// endpoint; a token already in flight still joins its request; a freed
// slot serves the next token.
func TestIntrospectConcurrencyCap(t *testing.T) {
	p := newIDP(t)
	gate := make(chan struct{})
	open := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(open) // before the server's Close, which waits for its handlers
	p.configure(func(p *idp) { p.gate = gate })
	for _, tok := range []string{"t1", "t2", "t3"} {
		p.set(tok, map[string]any{"active": true, "sub": "u-" + tok})
	}
	cfg := p.provider()
	cfg.MaxConcurrent = 2
	in := newTestIntrospector(t, cfg, Options{Timeout: 5 * time.Second})
	ctx := testContext(t)

	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, tok := range []string{"t1", "t2", "t1"} { // the second t1 joins the first
		wg.Go(func() { _, errs[i] = in.Introspect(ctx, tok) })
		waitFor(t, func() bool { return p.requests.Load() == int64(min(i+1, 2)) })
	}
	// Bounded, so that an Introspector that queues fails the test instead
	// of hanging it.
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	start := time.Now()
	_, err := in.Introspect(short, "t3")
	if !errors.Is(err, ErrOverloaded) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("third token with 2 requests in flight: %v, want ErrOverloaded and ErrUnavailable", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("the refusal took %s: it must not wait", d)
	}
	if n := p.requests.Load(); n != 2 {
		t.Errorf("endpoint got %d requests, want 2 (the refused token must not reach it)", n)
	}
	open()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("in-flight call %d: %v", i, err)
		}
	}
	if res, err := in.Introspect(ctx, "t3"); err != nil || res.Subject != "u-t3" {
		t.Fatalf("after the slots were released: %+v, %v", res, err)
	}
}

func TestNewIntrospectorRefusesNegativeMaxConcurrent(t *testing.T) {
	cfg := newIDP(t).provider()
	cfg.MaxConcurrent = -1
	if _, err := NewIntrospector(cfg, Options{Getenv: testGetenv}); err == nil {
		t.Fatal("a negative MaxConcurrent was accepted")
	}
}
