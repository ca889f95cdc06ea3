package sse

import (
	"bytes"
	"errors"
	"io"
	"net/http"
)

// SetHeaders prepares h for an event stream: Content-Type text/event-stream,
// Cache-Control no-cache, X-Accel-Buffering no (so nginx-style proxies do not
// buffer the stream), and no Content-Length. Call it before the first write.
//
// The values are shared, read-only slices (no allocation per response);
// callers must replace, never modify, them.
func SetHeaders(h http.Header) {
	h["Content-Type"] = valEventStream
	h["Cache-Control"] = valNoCache
	h["X-Accel-Buffering"] = valNo
	delete(h, "Content-Length")
}

var (
	valEventStream = []string{"text/event-stream"}
	valNoCache     = []string{"no-cache"}
	valNo          = []string{"no"}
)

// Writer writes events to an [http.ResponseWriter] and flushes through
// [http.ResponseController], which finds the flusher behind wrappers that
// implement Unwrap. It does not allocate per event in the steady state.
//
// Errors are sticky: after a write or flush fails, every later Write,
// WriteEvent and Flush returns that first error without touching the
// ResponseWriter. Create a Writer with [NewWriter]; the zero Writer is not
// usable. A Writer is not safe for concurrent use.
type Writer struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	buf     []byte // scratch for WriteEvent
	err     error
	noFlush bool // the ResponseWriter cannot flush; Flush is a no-op
}

// NewWriter returns a Writer that writes to w. It does not set headers; see
// [SetHeaders].
func NewWriter(w http.ResponseWriter) *Writer {
	return &Writer{w: w, rc: http.NewResponseController(w)}
}

// Write writes raw as is, typically an [Event.Raw] block being passed
// through. It does not flush.
func (w *Writer) Write(raw []byte) error {
	if w.err != nil {
		return w.err
	}
	n, err := w.w.Write(raw)
	if err == nil && n != len(raw) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = err
	}
	return err
}

// WriteEvent formats one event with [AppendEvent] and writes it. It does not
// flush.
func (w *Writer) WriteEvent(name string, data []byte) error {
	if w.err != nil {
		return w.err
	}
	w.buf = AppendEvent(w.buf[:0], name, data)
	return w.Write(w.buf)
}

// Flush sends everything written so far to the client. A ResponseWriter that
// cannot flush (errors.Is(err, http.ErrNotSupported)) is not an error: Flush
// then returns nil and does nothing from then on.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if w.noFlush {
		return nil
	}
	err := w.rc.Flush()
	if errors.Is(err, http.ErrNotSupported) {
		w.noFlush = true
		return nil
	}
	if err != nil {
		w.err = err
	}
	return err
}

// AppendEvent appends one formatted event to dst and returns the extended
// slice: "event: name\n" (omitted when name is empty), then one "data: " line
// per line of data, then the blank line "\n". data is split on "\n", "\r\n"
// and "\r", so it cannot end the event or inject fields; a reader gets it back
// with every line ending turned into "\n". Empty or nil data gives one empty
// data line. CR and LF bytes in name are dropped for the same reason (a name
// made only of them counts as empty).
func AppendEvent(dst []byte, name string, data []byte) []byte {
	if name != "" {
		dst = appendName(dst, name)
	}
	// lf and cr are the next LF and CR at or after pos, len(data) if none;
	// each byte is searched once, so many lines cost linear time.
	lf, cr, pos := -1, -1, 0
	for {
		if lf < pos {
			lf = indexFrom(data, pos, '\n')
		}
		if cr < pos {
			cr = indexFrom(data, pos, '\r')
		}
		i := min(lf, cr)
		dst = append(dst, "data: "...)
		dst = append(dst, data[pos:i]...)
		dst = append(dst, '\n')
		if i == len(data) {
			break
		}
		pos = i + 1
		if data[i] == '\r' && pos < len(data) && data[pos] == '\n' {
			pos++
		}
	}
	return append(dst, '\n')
}

func appendName(dst []byte, name string) []byte {
	clean := true
	for i := 0; i < len(name); i++ {
		if name[i] == '\n' || name[i] == '\r' {
			clean = false
			break
		}
	}
	if clean {
		dst = append(dst, "event: "...)
		dst = append(dst, name...)
		return append(dst, '\n')
	}
	mark := len(dst)
	dst = append(dst, "event: "...)
	n := len(dst)
	for i := 0; i < len(name); i++ {
		if c := name[i]; c != '\n' && c != '\r' {
			dst = append(dst, c)
		}
	}
	if len(dst) == n {
		return dst[:mark]
	}
	return append(dst, '\n')
}

// indexFrom returns the index of the first c in b[from:], or len(b).
func indexFrom(b []byte, from int, c byte) int {
	if i := bytes.IndexByte(b[from:], c); i >= 0 {
		return from + i
	}
	return len(b)
}
