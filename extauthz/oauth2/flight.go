package oauth2

import (
	"context"
	"sync"
)

// flight runs one introspection per token at a time: concurrent callers
// for the same token wait for the first one's answer.
type flight struct {
	mu    sync.Mutex
	calls map[tokenHash]*call
}

type call struct {
	done chan struct{}
	res  *Result
	err  error
}

// do returns fn's answer for k, running fn unless a call for k is already
// in flight. fn runs in its own goroutine and is not cancelled with ctx;
// a caller whose ctx ends stops waiting and gets ctx's error. A new call
// starts only when acquire grants it a slot (fn must release it);
// otherwise do fails at once with ErrOverloaded.
func (f *flight) do(ctx context.Context, k tokenHash, acquire func() bool, fn func() (*Result, error)) (*Result, error) {
	f.mu.Lock()
	c, ok := f.calls[k]
	if !ok {
		if !acquire() {
			f.mu.Unlock()
			return nil, ErrOverloaded
		}
		c = &call{done: make(chan struct{})}
		f.calls[k] = c
		go f.run(k, c, fn)
	}
	f.mu.Unlock()
	select {
	case <-c.done:
		return c.res, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (f *flight) run(k tokenHash, c *call, fn func() (*Result, error)) {
	c.res, c.err = fn()
	f.mu.Lock()
	delete(f.calls, k)
	f.mu.Unlock()
	close(c.done)
}
