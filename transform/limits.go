package transform

import (
	"errors"
	"fmt"
)

// Bounds of one conversion besides the input size (see Limits).
const (
	// OutputFactor bounds a converted body: at most OutputFactor times the
	// route's maxBodyBytes.
	OutputFactor = 4
	// MaxNameBytes bounds a JSON member name and an XML element name,
	// attribute name or json:key.
	MaxNameBytes = 1024
	// MaxElements bounds the XML elements one conversion writes
	// (json-to-xml) or reads (xml-to-json: elements plus the attributes
	// that become "@name" members).
	MaxElements = 1 << 17
)

// Limits bound one conversion, so that no input, however crafted, makes it
// use more than a fixed amount of memory or time: the output is written to
// a buffer that refuses to grow past MaxOutputBytes, and the conversion
// stops at the first bound crossed with a LimitError. Nesting is bounded
// by MaxDepth.
type Limits struct {
	MaxOutputBytes int // bytes of the converted body
	MaxElements    int // XML elements (xml-to-json: and "@name" attributes)
	MaxNameBytes   int // bytes of one member, element or attribute name
}

// LimitsFor returns the limits of a route whose bodies are bounded by
// maxBodyBytes (DefaultMaxBodyBytes when not positive): an output of
// OutputFactor × maxBodyBytes, MaxElements and MaxNameBytes.
func LimitsFor(maxBodyBytes int) Limits {
	if maxBodyBytes <= 0 {
		maxBodyBytes = DefaultMaxBodyBytes
	}
	return Limits{MaxOutputBytes: OutputFactor * maxBodyBytes, MaxElements: MaxElements, MaxNameBytes: MaxNameBytes}
}

// LimitError is a body whose conversion crosses one of its Limits.
type LimitError struct{ Msg string }

func (e *LimitError) Error() string { return e.Msg }

func limitErrorf(format string, args ...any) error {
	return &LimitError{Msg: fmt.Sprintf(format, args...)}
}

// IsLimitError reports whether err is (or wraps) a LimitError.
func IsLimitError(err error) bool {
	var le *LimitError
	return errors.As(err, &le)
}

// boundedBuffer is an output buffer that never holds more than max bytes
// and never allocates more than max: a write that would cross max writes
// nothing and fails, and so does every later write (err keeps the first
// failure).
type boundedBuffer struct {
	buf   []byte
	max   int
	limit int    // the bound named in the error: max, or less by the slack trimmed afterwards
	what  string // the output's format, for the error message
	err   error
}

// newBoundedBuffer returns a buffer of at most limit+slack bytes
// (sizeHint preallocated, at most that) whose error names limit.
func newBoundedBuffer(limit, slack int, what string, sizeHint int) *boundedBuffer {
	b := &boundedBuffer{max: limit + slack, limit: limit, what: what}
	b.buf = make([]byte, 0, max(0, min(sizeHint, b.max)))
	return b
}

// room reports whether n more bytes fit, growing the buffer (doubling, up
// to max) when they do, and recording the error when not.
func (b *boundedBuffer) room(n int) bool {
	if b.err != nil {
		return false
	}
	if len(b.buf)+n > b.max {
		b.err = limitErrorf("the converted body would exceed %d bytes of %s", b.limit, b.what)
		return false
	}
	if len(b.buf)+n > cap(b.buf) {
		grown := make([]byte, len(b.buf), min(max(2*cap(b.buf), len(b.buf)+n), b.max))
		copy(grown, b.buf)
		b.buf = grown
	}
	return true
}

// fail records err as the buffer's error unless it has one: later writes
// fail.
func (b *boundedBuffer) fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if !b.room(len(p)) {
		return 0, b.err
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *boundedBuffer) WriteString(s string) {
	if b.room(len(s)) {
		b.buf = append(b.buf, s...)
	}
}

func (b *boundedBuffer) WriteByte(c byte) error {
	if !b.room(1) {
		return b.err
	}
	b.buf = append(b.buf, c)
	return nil
}
