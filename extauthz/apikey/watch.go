package apikey

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// DefaultExceptionsInterval is how often WatchExceptions polls the
// exceptions table's version by default.
const DefaultExceptionsInterval = 200 * time.Millisecond

// ExceptionsView is what WatchExceptions reports: the table, and whether
// it is confirmed current.
type ExceptionsView struct {
	Exceptions
	// Fresh is false when no poll of the table succeeded within maxStale:
	// a revocation may have been missed, so whoever applies the table must
	// refuse signed keys (503 key_store_unavailable), failing closed as
	// the ext_authz path does while Redis is unreachable. Items then hold
	// the last table loaded.
	Fresh bool
}

// WatchExceptions polls src's version every interval, reloads the table
// when the version or the epoch changes (an epoch gone — the store lost
// its data — is recreated by that reload, and reported as a new one), and calls onChange (from this goroutine only)
// with the current view whenever the version or the freshness changes. It
// blocks until ctx is done and starts no goroutine.
//
// The first call comes after the first successful load (Fresh true), or
// maxStale after the start if none succeeded (Fresh false, no items).
// Fresh turns false once no poll that began within the last maxStale has
// succeeded (noticed at most maxStale/4 later: each poll is bounded by
// maxStale/4), and true again at the next success.
//
// interval <= 0 means DefaultExceptionsInterval; maxStale <= 0 means
// DefaultMaxStaleness (1 s), the bound the ext_authz path gives a
// revocation (see RedisOptions.MaxStaleness): signed and opaque keys are
// then revoked equally fast, and both fail closed about a second into a
// Redis outage. log nil means slog.Default(). A table above MaxExceptions
// is refused (logged as an error) and counts as a failed poll.
func WatchExceptions(ctx context.Context, src ExceptionSource, interval, maxStale time.Duration,
	log *slog.Logger, onChange func(ExceptionsView),
) {
	if interval <= 0 {
		interval = DefaultExceptionsInterval
	}
	if maxStale <= 0 {
		maxStale = DefaultMaxStaleness
	}
	if log == nil {
		log = slog.Default()
	}
	w := &watcher{src: src, interval: interval, maxStale: maxStale, timeout: maxStale / 4, log: log,
		onChange: onChange, start: time.Now()}
	w.run(ctx)
}

// watcher is the state of one WatchExceptions.
type watcher struct {
	src      ExceptionSource
	interval time.Duration
	maxStale time.Duration
	timeout  time.Duration // of one poll
	log      *slog.Logger
	onChange func(ExceptionsView)

	start    time.Time
	view     ExceptionsView // as last reported
	loaded   bool           // view.Exceptions holds a loaded table
	reported bool           // onChange was called
	lastOK   time.Time      // start of the last successful poll
	failing  bool           // the last poll failed (logged once)
}

func (w *watcher) run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed := w.poll(ctx)
		if ctx.Err() != nil {
			return
		}
		w.report(changed, time.Now())
		t.Reset(w.wait(time.Now()))
	}
}

// poll reads the version and, when it moved, the table; it reports
// whether a new table was loaded.
func (w *watcher) poll(ctx context.Context) bool {
	began := time.Now()
	pctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	v, err := w.src.Version(pctx)
	changed := false
	if err == nil && (!w.loaded || v != (Stamp{Version: w.view.Version, Epoch: w.view.Epoch})) {
		var exc Exceptions
		if exc, err = w.src.Exceptions(pctx); err == nil {
			w.view.Exceptions, w.loaded, changed = exc, true, true
		}
	}
	if err != nil {
		w.failed(ctx, err)
		return false
	}
	if w.failing {
		w.failing = false
		w.log.Info("apikey: signed-key exceptions table readable again", "version", w.view.Version)
	}
	w.lastOK = began
	return changed
}

// failed logs the first of a run of failures.
func (w *watcher) failed(ctx context.Context, err error) {
	if w.failing || ctx.Err() != nil {
		return
	}
	w.failing = true
	if errors.Is(err, ErrTooManyExceptions) {
		w.log.Error("apikey: signed-key exceptions table refused; signed keys will be refused once it is stale "+
			"(revoke fewer non-expiring signed keys, or give keys an expiry so entries are pruned)", "err", err)
		return
	}
	w.log.Warn("apikey: cannot read the signed-key exceptions table", "err", err)
}

// report calls onChange when the view changed, or on the first view.
func (w *watcher) report(changed bool, now time.Time) {
	fresh := w.loaded && now.Sub(w.lastOK) <= w.maxStale
	first := !w.reported && (fresh || now.Sub(w.start) >= w.maxStale)
	if !changed && fresh == w.view.Fresh && !first {
		return
	}
	if w.reported && fresh != w.view.Fresh {
		if fresh {
			w.log.Info("apikey: signed-key exceptions table fresh again; signed keys accepted", "version", w.view.Version)
		} else {
			w.log.Error("apikey: signed-key exceptions table not confirmed within max staleness; signed keys refused",
				"maxStale", w.maxStale)
		}
	}
	w.view.Fresh, w.reported = fresh, true
	w.onChange(w.view)
}

// wait returns the time until the next poll: the interval, or less when
// the view would go stale sooner (so that it is reported on time).
func (w *watcher) wait(now time.Time) time.Duration {
	d := w.interval
	if w.view.Fresh {
		if left := w.lastOK.Add(w.maxStale).Sub(now); left > 0 && left < d {
			d = left
		}
	}
	if !w.reported {
		if left := w.start.Add(w.maxStale).Sub(now); left > 0 && left < d {
			d = left
		}
	}
	return d
}
