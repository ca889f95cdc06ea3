// Package jsonl is a gateway.EventSink that writes every request's
// gateway.Event as one line of JSON (the encoding/json form of the Event)
// to a file, standard output or any io.Writer. It is also a
// gateway.InspectorSink (Sink.Capture), writing the traffic inspector's
// captures the same way:
//
//	sink, err := jsonl.Open("/var/log/llmgate/events.jsonl", jsonl.Options{})
//	if err != nil {
//		return err
//	}
//	defer sink.Close(context.Background())
//	gw, err := gateway.New(gateway.WithEventSink(sink), ...)
//
// HandleEvent never blocks the request: it encodes the event and puts it on
// a bounded in-memory queue, and one goroutine writes the queue through a
// buffer, flushed when it fills, every FlushInterval and on Close. When the
// queue is full the event is dropped and counted (Stats). Close the sink
// after the gateway (or after the last request), so that every event is
// written.
package jsonl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/sinks/internal/eventq"
)

// Defaults of Options.
const (
	DefaultQueueSize     = 4096
	DefaultFlushInterval = time.Second
	DefaultBufferSize    = 64 << 10
)

// Stdout is the path Open reads as standard output.
const Stdout = "-"

// ErrClosed is returned by Reopen after Close.
var ErrClosed = errors.New("jsonl: sink closed")

// Options configure a Sink. The zero value is valid: every zero field takes
// its default.
type Options struct {
	// QueueSize is the most events waiting to be written; further events
	// are dropped until the writer catches up. Default DefaultQueueSize.
	QueueSize int
	// FlushInterval is the longest an event waits in the write buffer
	// before it reaches the writer. Default DefaultFlushInterval.
	FlushInterval time.Duration
	// BufferSize is the write buffer, in bytes: the buffer is written out
	// when it holds at least this much. Default DefaultBufferSize.
	BufferSize int
	// Logger receives write errors (once per failing period, and when
	// writes succeed again). Default slog.Default().
	Logger *slog.Logger
}

// Stats counts a sink's events. Every event HandleEvent received is in
// exactly one of Written, Dropped, Failed or Queued.
type Stats struct {
	// Written is the number of events written to the writer.
	Written uint64
	// Dropped is the number of events refused by HandleEvent: the queue
	// was full, the sink was closed, or the event could not be encoded.
	Dropped uint64
	// Failed is the number of events accepted but lost: their write
	// failed, or Close gave up waiting for them.
	Failed uint64
	// Queued is the number of events accepted and not yet written
	// (waiting in the queue or in the write buffer).
	Queued uint64
}

// Sink writes events as JSON lines; see the package documentation. It is
// safe for concurrent use. Create it with New or Open; the zero value is
// not usable.
type Sink struct {
	q         *eventq.Queue
	logger    *slog.Logger
	interval  time.Duration
	bufSize   int
	path      string    // the file Open opened; "" for New and standard output
	closer    io.Closer // the open file; nil when the sink does not own the writer
	reopen    chan chan error
	done      chan struct{} // closed when the writer goroutine returns
	closeOnce sync.Once
	abandon   atomic.Bool // Close gave up: stop writing, count the rest as failed
	written   atomic.Uint64
	failed    atomic.Uint64

	// Owned by the writer goroutine.
	w       io.Writer
	buf     []byte
	pending uint64 // events in buf
	failing bool   // the last write failed
	err     error  // closing the file, read after done
}

// New returns a sink writing to w, which the sink does not close. w is
// written by one goroutine at a time.
func New(w io.Writer, opts Options) (*Sink, error) {
	if w == nil {
		return nil, errors.New("jsonl: writer is nil")
	}
	return start(w, nil, "", opts)
}

// Open returns a sink appending to the file at path, created (mode 0640,
// less the umask) when missing; path Stdout ("-") writes to standard
// output. Close closes the file. Reopen opens the path again, for log
// rotation.
func Open(path string, opts Options) (*Sink, error) {
	if path == "" {
		return nil, errors.New("jsonl: path is empty")
	}
	if path == Stdout {
		return start(os.Stdout, nil, "", opts)
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	s, err := start(f, f, path, opts)
	if err != nil {
		_ = f.Close()
	}
	return s, err
}

func openFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("jsonl: %w", err)
	}
	return f, nil
}

func (o *Options) validate() error {
	var errs []error
	if o.QueueSize < 0 {
		errs = append(errs, fmt.Errorf("jsonl: QueueSize must not be negative, got %d", o.QueueSize))
	}
	if o.FlushInterval < 0 {
		errs = append(errs, fmt.Errorf("jsonl: FlushInterval must not be negative, got %v", o.FlushInterval))
	}
	if o.BufferSize < 0 {
		errs = append(errs, fmt.Errorf("jsonl: BufferSize must not be negative, got %d", o.BufferSize))
	}
	return errors.Join(errs...)
}

func start(w io.Writer, c io.Closer, path string, opts Options) (*Sink, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	s := &Sink{
		q: eventq.New(orDefault(opts.QueueSize, DefaultQueueSize)), logger: opts.Logger,
		interval: orDefault(opts.FlushInterval, DefaultFlushInterval), bufSize: orDefault(opts.BufferSize, DefaultBufferSize),
		path: path, closer: c, w: w, reopen: make(chan chan error), done: make(chan struct{}),
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	s.buf = make([]byte, 0, min(s.bufSize, 1<<20)+4096)
	go s.run()
	return s, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// HandleEvent encodes e and queues it for writing, without blocking; when
// the queue is full or the sink is closed, e is dropped and counted.
func (s *Sink) HandleEvent(_ context.Context, e *gateway.Event) {
	s.q.Offer(e)
}

// Capture makes the sink a gateway.InspectorSink: it queues c's JSON form
// (gateway.Capture.MarshalJSON) as one line, like HandleEvent, without
// blocking, and counts it in the same Stats. Give the inspector a sink of
// its own (a file apart from the events'), so that bodies stay out of the
// event log.
func (s *Sink) Capture(_ context.Context, c *gateway.Capture) {
	if s.q.Full() {
		s.q.Drop()
		return
	}
	b, err := json.Marshal(c)
	if err != nil {
		s.q.Drop()
		return
	}
	s.q.Push(b)
}

// Stats returns the sink's counters.
func (s *Sink) Stats() Stats {
	written, failed := s.written.Load(), s.failed.Load() // before pushed: Queued never underflows
	pushed := s.q.Pushed()
	return Stats{Written: written, Dropped: s.q.Dropped(), Failed: failed, Queued: pushed - min(pushed, written+failed)}
}

// Reopen flushes the buffer and opens the sink's file again, so that a
// file renamed by a log rotator is replaced by a new one at the same path.
// It does nothing for standard output and for sinks made by New. When the
// file cannot be opened, the sink keeps writing to the old one and Reopen
// returns the error. After Close it returns ErrClosed.
func (s *Sink) Reopen() error {
	if s.path == "" {
		return nil
	}
	reply := make(chan error, 1)
	select {
	case s.reopen <- reply:
	case <-s.done:
		return ErrClosed
	}
	select {
	case err := <-reply:
		return err
	case <-s.done:
		return ErrClosed
	}
}

// Close stops accepting events, writes those queued, closes the file (for
// a sink made by Open) and stops the writer goroutine. When ctx ends first,
// Close returns ctx's error and the events not yet written are counted as
// Failed; the goroutine stops after its current write returns. Close is
// idempotent; later calls wait for the same end.
func (s *Sink) Close(ctx context.Context) error {
	s.closeOnce.Do(s.q.Close)
	select {
	case <-s.done:
		return s.err
	case <-ctx.Done():
		s.abandon.Store(true)
		return fmt.Errorf("jsonl: close: %w", ctx.Err())
	}
}

// run is the writer goroutine.
func (s *Sink) run() {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case b, ok := <-s.q.C():
			if !ok {
				s.flush()
				if s.closer != nil {
					if err := s.closer.Close(); err != nil {
						s.err = fmt.Errorf("jsonl: %w", err)
					}
				}
				return
			}
			s.buf = append(append(s.buf, b...), '\n')
			s.pending++
			if len(s.buf) >= s.bufSize {
				s.flush()
			}
		case <-t.C:
			s.flush()
		case reply := <-s.reopen:
			// The events queued before Reopen go to the old file.
			for n := s.q.Len(); n > 0; n-- {
				b, ok := <-s.q.C()
				if !ok {
					break
				}
				s.buf = append(append(s.buf, b...), '\n')
				s.pending++
			}
			s.flush()
			reply <- s.reopenFile()
		}
	}
}

// flush writes the buffer out.
func (s *Sink) flush() {
	if s.pending == 0 {
		return
	}
	n := s.pending
	s.pending = 0
	if s.abandon.Load() {
		s.failed.Add(n)
		s.buf = s.buf[:0]
		return
	}
	wrote, err := s.w.Write(s.buf)
	if err == nil && wrote < len(s.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		s.failed.Add(n)
		if !s.failing {
			s.logger.Warn("jsonl event sink: write failed; events are lost until writes succeed again", "events", n, "err", err)
			s.failing = true
		}
		// A line cut short is ended, so that the next one starts afresh.
		partial := wrote > 0 && wrote < len(s.buf) && s.buf[wrote-1] != '\n'
		s.buf = s.buf[:0]
		if partial {
			s.buf = append(s.buf, '\n')
		}
		return
	}
	s.written.Add(n)
	s.buf = s.buf[:0]
	if s.failing {
		s.logger.Info("jsonl event sink: writes succeed again")
		s.failing = false
	}
}

// reopenFile replaces the open file with a new one at the same path.
func (s *Sink) reopenFile() error {
	f, err := openFile(s.path)
	if err != nil {
		return err
	}
	old := s.closer
	s.w, s.closer = f, f
	if err := old.Close(); err != nil {
		return fmt.Errorf("jsonl: closing the previous file: %w", err)
	}
	return nil
}
