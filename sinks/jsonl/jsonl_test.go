package jsonl

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/sinks/internal/sinktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a bytes.Buffer safe for the writer goroutine and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// requestIDs parses JSON lines and returns their request IDs.
func requestIDs(t *testing.T, s string) []string {
	t.Helper()
	var ids []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		var e gateway.Event
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e), "line %q", sc.Text())
		ids = append(ids, e.RequestID)
	}
	require.NoError(t, sc.Err())
	return ids
}

func ids(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("req-%d", i))
	}
	return out
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"zero value", Options{}, ""},
		{"all set", Options{QueueSize: 1, FlushInterval: time.Millisecond, BufferSize: 1}, ""},
		{"negative queue", Options{QueueSize: -1}, "QueueSize must not be negative"},
		{"negative interval", Options{FlushInterval: -time.Second}, "FlushInterval must not be negative"},
		{"negative buffer", Options{BufferSize: -1}, "BufferSize must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(io.Discard, tc.opts)
			if tc.want != "" {
				require.ErrorContains(t, err, tc.want)
				require.Nil(t, s)
				return
			}
			require.NoError(t, err)
			require.NoError(t, s.Close(context.Background()))
		})
	}
	_, err := New(nil, Options{})
	require.ErrorContains(t, err, "writer is nil")
	_, err = Open("", Options{})
	require.ErrorContains(t, err, "path is empty")
	_, err = Open(filepath.Join(t.TempDir(), "x.jsonl"), Options{QueueSize: -1})
	require.ErrorContains(t, err, "QueueSize")
}

func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		// closeFirst: the lines appear only once Close flushes them.
		closeFirst bool
	}{
		{"close flushes", Options{FlushInterval: time.Hour}, true},
		{"interval flushes", Options{FlushInterval: 5 * time.Millisecond}, false},
		{"full buffer flushes", Options{FlushInterval: time.Hour, BufferSize: 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out syncBuffer
			s, err := New(&out, tc.opts)
			require.NoError(t, err)
			for i := range 50 {
				s.HandleEvent(context.Background(), sinktest.Event(i))
			}
			if tc.closeFirst {
				require.Empty(t, out.String())
				require.NoError(t, s.Close(context.Background()))
			} else {
				require.Eventually(t, func() bool { return s.Stats().Written == 50 }, 10*time.Second, time.Millisecond)
				require.NoError(t, s.Close(context.Background()))
			}
			require.Equal(t, ids(0, 50), requestIDs(t, out.String()))
			require.Equal(t, Stats{Written: 50}, s.Stats())
			// Each line is the Event's encoding/json form.
			want, err := json.Marshal(sinktest.Event(0))
			require.NoError(t, err)
			first, _, _ := strings.Cut(out.String(), "\n")
			require.JSONEq(t, string(want), first)
		})
	}
}

// gateWriter blocks every Write until released, and tells when one is
// waiting.
type gateWriter struct {
	entered chan struct{}
	release chan struct{}
	out     syncBuffer
}

func newGateWriter() *gateWriter {
	return &gateWriter{entered: make(chan struct{}, 100), release: make(chan struct{})}
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.entered <- struct{}{}
	<-g.release
	return g.out.Write(p)
}

func TestDropsWhenFull(t *testing.T) {
	g := newGateWriter()
	s, err := New(g, Options{QueueSize: 2, BufferSize: 1, FlushInterval: time.Hour})
	require.NoError(t, err)
	s.HandleEvent(context.Background(), sinktest.Event(0))
	<-g.entered // event 0 is being written; the queue is empty
	for i := 1; i < 6; i++ {
		s.HandleEvent(context.Background(), sinktest.Event(i)) // 1 and 2 fit, 3 to 5 are dropped
	}
	require.Equal(t, Stats{Dropped: 3, Queued: 3}, s.Stats())
	close(g.release)
	require.NoError(t, s.Close(context.Background()))
	require.Equal(t, ids(0, 3), requestIDs(t, g.out.String()))
	require.Equal(t, Stats{Written: 3, Dropped: 3}, s.Stats())

	s.HandleEvent(context.Background(), sinktest.Event(9)) // after Close
	require.Equal(t, Stats{Written: 3, Dropped: 4}, s.Stats())
	require.NoError(t, s.Close(context.Background()), "Close is idempotent")
}

func TestCloseDeadline(t *testing.T) {
	g := newGateWriter()
	s, err := New(g, Options{BufferSize: 1, FlushInterval: time.Hour})
	require.NoError(t, err)
	for i := range 4 {
		s.HandleEvent(context.Background(), sinktest.Event(i))
	}
	<-g.entered // stuck writing event 0
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = s.Close(ctx)
	require.ErrorIs(t, err, context.Canceled)
	close(g.release) // the stuck write ends; the rest is given up
	<-s.done
	require.Equal(t, Stats{Written: 1, Failed: 3}, s.Stats())
	require.Equal(t, ids(0, 1), requestIDs(t, g.out.String()))
}

// flakyWriter fails its first writes: the first writes half its input.
type flakyWriter struct {
	fails int
	out   syncBuffer
}

var errDisk = errors.New("disk full")

func (f *flakyWriter) Write(p []byte) (int, error) {
	if f.fails > 0 {
		f.fails--
		n, _ := f.out.Write(p[:len(p)/2])
		return n, errDisk
	}
	return f.out.Write(p)
}

func TestWriteErrors(t *testing.T) {
	w := &flakyWriter{fails: 2}
	var logs syncBuffer
	s, err := New(w, Options{BufferSize: 1, FlushInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	for i := range 5 {
		s.HandleEvent(context.Background(), sinktest.Event(i))
	}
	require.NoError(t, s.Close(context.Background()))
	require.Equal(t, Stats{Written: 3, Failed: 2}, s.Stats())
	require.Equal(t, 1, strings.Count(logs.String(), "write failed"), "logged once per failing period")
	require.Contains(t, logs.String(), "disk full")
	require.Contains(t, logs.String(), "writes succeed again")
	// The cut lines are ended, so that the events written after them are
	// whole lines.
	lines := strings.Split(strings.TrimSuffix(w.out.String(), "\n"), "\n")
	require.Len(t, lines, 5)
	require.Equal(t, ids(2, 5), requestIDs(t, strings.Join(lines[2:], "\n")))
}

func TestConcurrent(t *testing.T) {
	var out syncBuffer
	s, err := New(&out, Options{QueueSize: 64, FlushInterval: time.Millisecond})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				s.HandleEvent(context.Background(), sinktest.Event(g*1000+i))
			}
		})
	}
	time.Sleep(time.Millisecond)
	require.NoError(t, s.Close(context.Background())) // races the senders
	wg.Wait()
	st := s.Stats()
	require.Equal(t, uint64(1600), st.Written+st.Dropped)
	require.Zero(t, st.Failed)
	require.Zero(t, st.Queued)
	require.Len(t, requestIDs(t, out.String()), int(st.Written))
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	require.NoError(t, os.WriteFile(path, []byte("{\"request_id\":\"old\"}\n"), 0o600))
	s, err := Open(path, Options{FlushInterval: time.Hour})
	require.NoError(t, err)
	s.HandleEvent(context.Background(), sinktest.Event(0))

	// A log rotator renames the file, then asks for a new one.
	require.NoError(t, os.Rename(path, path+".1"))
	require.NoError(t, s.Reopen())
	s.HandleEvent(context.Background(), sinktest.Event(1))
	require.NoError(t, s.Close(context.Background()))

	rotated, err := os.ReadFile(path + ".1")
	require.NoError(t, err)
	require.Equal(t, []string{"old", "req-0"}, requestIDs(t, string(rotated)), "appended, flushed before the reopen")
	cur, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, []string{"req-1"}, requestIDs(t, string(cur)))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Zero(t, fi.Mode().Perm()&0o007, "not readable by others")
	require.ErrorIs(t, s.Reopen(), ErrClosed)

	t.Run("missing directory", func(t *testing.T) {
		_, err := Open(filepath.Join(dir, "nope", "events.jsonl"), Options{})
		require.ErrorIs(t, err, fs.ErrNotExist)
	})
	t.Run("reopen fails", func(t *testing.T) {
		sub := filepath.Join(dir, "sub")
		require.NoError(t, os.Mkdir(sub, 0o700))
		p := filepath.Join(sub, "e.jsonl")
		s, err := Open(p, Options{FlushInterval: time.Hour})
		require.NoError(t, err)
		require.NoError(t, os.RemoveAll(sub))
		require.ErrorIs(t, s.Reopen(), fs.ErrNotExist)
		require.NoError(t, s.Close(context.Background()), "still writes to the old file")
	})
	t.Run("stdout", func(t *testing.T) {
		s, err := Open(Stdout, Options{})
		require.NoError(t, err)
		require.NoError(t, s.Reopen(), "nothing to reopen")
		require.NoError(t, s.Close(context.Background()))
		_, err = os.Stdout.Stat()
		require.NoError(t, err, "standard output stays open")
	})
}

// BenchmarkHandleEvent measures what a request pays: encoding and queueing
// an event (accepted), or counting it when the queue is full (dropped).
func BenchmarkHandleEvent(b *testing.B) {
	ev := sinktest.Event(1)
	b.Run("accepted", func(b *testing.B) {
		s, err := New(io.Discard, Options{QueueSize: b.N + 1}) // room for all: every event is encoded
		require.NoError(b, err)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N { // not b.Loop: the queue is sized from b.N
			s.HandleEvent(context.Background(), ev)
		}
		b.StopTimer()
		require.NoError(b, s.Close(context.Background()))
		require.Zero(b, s.Stats().Dropped)
	})
	b.Run("dropped", func(b *testing.B) {
		g := newGateWriter()
		s, err := New(g, Options{QueueSize: 1, BufferSize: 1})
		require.NoError(b, err)
		s.HandleEvent(context.Background(), ev)
		<-g.entered
		s.HandleEvent(context.Background(), ev) // the queue is full
		b.ReportAllocs()
		for b.Loop() {
			s.HandleEvent(context.Background(), ev)
		}
		b.StopTimer()
		close(g.release)
		require.NoError(b, s.Close(context.Background()))
		require.Equal(b, uint64(2), s.Stats().Written)
	})
}

var _ gateway.InspectorSink = (*Sink)(nil)

func TestCapture(t *testing.T) {
	var out syncBuffer
	s, err := New(&out, Options{FlushInterval: time.Hour})
	require.NoError(t, err)
	s.Capture(context.Background(), &gateway.Capture{RequestID: "req-1", Request: []byte(`{"model":"m"}`), Response: []byte(`{"id":"x"}`)})
	s.HandleEvent(context.Background(), sinktest.Event(2))
	s.Capture(context.Background(), &gateway.Capture{RequestID: "req-3", Stream: true,
		Request: []byte(`{"a":1}`), RequestTruncated: true, Response: []byte("data: \xc3"), ResponseTruncated: true})
	require.NoError(t, s.Close(context.Background()))
	require.Equal(t, Stats{Written: 3}, s.Stats())
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, lines, 3)
	require.JSONEq(t, `{"request_id":"req-1","request":"{\"model\":\"m\"}","response":"{\"id\":\"x\"}"}`, lines[0])
	require.Equal(t, []string{"req-2"}, requestIDs(t, lines[1]))
	require.JSONEq(t, `{"request_id":"req-3","stream":true,"request":"{\"a\":1}","request_truncated":true,"response":"data: \ufffd","response_truncated":true}`, lines[2])
}

func TestCaptureDropsWhenClosed(t *testing.T) {
	s, err := New(io.Discard, Options{})
	require.NoError(t, err)
	require.NoError(t, s.Close(context.Background()))
	s.Capture(context.Background(), &gateway.Capture{RequestID: "req-1"})
	require.Equal(t, Stats{Dropped: 1}, s.Stats())
}
