package sse

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAppendEvent(t *testing.T) {
	cases := []struct {
		name, event string
		data        []byte
		want        string
	}{
		{"name and data", "ping", []byte("{}"), "event: ping\ndata: {}\n\n"},
		{"no name", "", []byte(`{"a":1}`), "data: {\"a\":1}\n\n"},
		{"empty data", "done", []byte{}, "event: done\ndata: \n\n"},
		{"nil data", "", nil, "data: \n\n"},
		{"LF in data", "", []byte("a\nb"), "data: a\ndata: b\n\n"},
		{"CRLF in data", "", []byte("a\r\nb"), "data: a\ndata: b\n\n"},
		{"CR in data", "", []byte("a\rb"), "data: a\ndata: b\n\n"},
		{"mixed and empty lines", "", []byte("a\r\r\n\nb\r"), "data: a\ndata: \ndata: \ndata: b\ndata: \n\n"},
		{"trailing LF", "", []byte("a\n"), "data: a\ndata: \n\n"},
		{"injection attempt", "", []byte("x\n\nevent: evil\ndata: y"), "data: x\ndata: \ndata: event: evil\ndata: data: y\n\n"},
		{"leading space kept", "", []byte(" a"), "data:  a\n\n"},
		{"CR and LF dropped from name", "a\r\nb\n", []byte("x"), "event: ab\ndata: x\n\n"},
		{"name of only line endings", "\r\n", []byte("x"), "data: x\n\n"},
		{"name with colon and space", " a:b", []byte("x"), "event:  a:b\ndata: x\n\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("prefix|")
			out := AppendEvent(prefix, tc.event, tc.data)
			require.Equal(t, "prefix|"+tc.want, string(out))
		})
	}
}

func TestSetHeaders(t *testing.T) {
	h := http.Header{}
	h.Set("Content-Length", "42")
	h.Set("Cache-Control", "max-age=60")
	SetHeaders(h)
	require.Equal(t, http.Header{
		"Content-Type":      {"text/event-stream"},
		"Cache-Control":     {"no-cache"},
		"X-Accel-Buffering": {"no"},
	}, h)
}

func TestWriterWriteEvent(t *testing.T) {
	rec := httptest.NewRecorder()
	w := NewWriter(rec)
	require.NoError(t, w.WriteEvent("a", []byte("1\r\n2")))
	require.NoError(t, w.Write([]byte(": ping\r\r")))
	require.NoError(t, w.WriteEvent("", []byte("3")))
	require.False(t, rec.Flushed)
	require.NoError(t, w.Flush())
	require.True(t, rec.Flushed)
	require.Equal(t, "event: a\ndata: 1\ndata: 2\n\n: ping\r\rdata: 3\n\n", rec.Body.String())
}

// plainRW is a ResponseWriter that cannot flush.
type plainRW struct {
	h      http.Header
	buf    bytes.Buffer
	writes int
	err    error // returned by every Write
	short  bool  // report one byte fewer than written
}

func (p *plainRW) Header() http.Header { return p.h }
func (p *plainRW) WriteHeader(int)     {}
func (p *plainRW) Write(b []byte) (int, error) {
	p.writes++
	if p.err != nil {
		return 0, p.err
	}
	p.buf.Write(b)
	if p.short && len(b) > 0 {
		return len(b) - 1, nil
	}
	return len(b), nil
}

// flushErrRW fails to flush.
type flushErrRW struct {
	plainRW
	err error
}

func (f *flushErrRW) FlushError() error { return f.err }

// wrapperRW hides its ResponseWriter behind Unwrap, as host middleware does.
type wrapperRW struct{ http.ResponseWriter }

func (w wrapperRW) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func TestWriterFlush(t *testing.T) {
	t.Run("recorder", func(t *testing.T) {
		rec := httptest.NewRecorder()
		require.NoError(t, NewWriter(rec).Flush())
		require.True(t, rec.Flushed)
	})
	t.Run("through Unwrap", func(t *testing.T) {
		rec := httptest.NewRecorder()
		require.NoError(t, NewWriter(wrapperRW{rec}).Flush())
		require.True(t, rec.Flushed)
	})
	t.Run("not supported", func(t *testing.T) {
		rw := &plainRW{h: http.Header{}}
		w := NewWriter(rw)
		require.NoError(t, w.Flush())
		require.NoError(t, w.WriteEvent("e", []byte("x")))
		require.NoError(t, w.Flush())
		require.Equal(t, "event: e\ndata: x\n\n", rw.buf.String())
	})
	t.Run("flush error is sticky", func(t *testing.T) {
		boom := errors.New("connection reset")
		rw := &flushErrRW{plainRW: plainRW{h: http.Header{}}, err: boom}
		w := NewWriter(rw)
		require.ErrorIs(t, w.Flush(), boom)
		require.ErrorIs(t, w.WriteEvent("", []byte("x")), boom)
		require.ErrorIs(t, w.Flush(), boom)
		require.Zero(t, rw.writes)
	})
}

func TestWriterErrorsAreSticky(t *testing.T) {
	boom := errors.New("broken pipe")
	cases := []struct {
		name string
		rw   *plainRW
		want error
	}{
		{"write error", &plainRW{h: http.Header{}, err: boom}, boom},
		{"short write", &plainRW{h: http.Header{}, short: true}, io.ErrShortWrite},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWriter(tc.rw)
			err := w.WriteEvent("a", []byte("1"))
			require.ErrorIs(t, err, tc.want)
			require.ErrorIs(t, w.Write([]byte("data: 2\n\n")), tc.want)
			require.ErrorIs(t, w.WriteEvent("", nil), tc.want)
			require.ErrorIs(t, w.Flush(), tc.want)
			require.Equal(t, 1, tc.rw.writes, "no writes after the first failure")
		})
	}
}

// discardRW accepts and drops everything and can flush.
type discardRW struct{ h http.Header }

func (d discardRW) Header() http.Header         { return d.h }
func (d discardRW) WriteHeader(int)             {}
func (d discardRW) Write(b []byte) (int, error) { return len(b), nil }
func (d discardRW) Flush()                      {}

func TestWriterSteadyStateAllocs(t *testing.T) {
	w := NewWriter(discardRW{h: http.Header{}})
	data := []byte(`{"type":"content_block_delta","delta":{"text":"hi\nthere"}}`)
	require.NoError(t, w.WriteEvent("content_block_delta", data)) // grow the scratch buffer
	allocs := testing.AllocsPerRun(100, func() {
		_ = w.WriteEvent("content_block_delta", data)
		_ = w.Write(data)
		_ = w.Flush()
	})
	require.Zero(t, allocs)

	nf := NewWriter(&plainRW{h: http.Header{}})
	require.NoError(t, nf.Flush())
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = nf.Flush() }))
}

// TestWriterEventsReachClientIncrementally runs a real server whose handler
// writes one event, flushes, and waits until the client has read it before
// writing the next. Without a working flush the test would time out.
func TestWriterEventsReachClientIncrementally(t *testing.T) {
	const n = 5
	ack := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		SetHeaders(rw.Header())
		w := NewWriter(wrapperRW{rw})
		for i := range n {
			if err := w.WriteEvent("tick", []byte("n="+strconv.Itoa(i))); err != nil {
				return
			}
			if err := w.Flush(); err != nil {
				return
			}
			select {
			case <-ack:
			case <-r.Context().Done():
				return
			}
		}
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	require.Equal(t, "no", resp.Header.Get("X-Accel-Buffering"))

	r := NewReader(resp.Body, 0)
	for i := range n {
		ev, err := r.Next()
		require.NoError(t, err, "event %d did not arrive before the next was written", i)
		require.Equal(t, "tick", string(ev.Name))
		require.Equal(t, "n="+strconv.Itoa(i), string(ev.Data))
		ack <- struct{}{}
	}
	_, err = r.Next()
	require.ErrorIs(t, err, io.EOF)
}

func TestRoundTrip(t *testing.T) {
	cases := []struct {
		name, event string
		data        string
		wantData    string
	}{
		{"json", "message_start", `{"type":"message_start"}`, `{"type":"message_start"}`},
		{"no name", "", "hello", "hello"},
		{"multi-line", "e", "a\nb\r\nc\rd", "a\nb\nc\nd"},
		{"empty", "e", "", ""},
		{"spaces", " e ", "  two", "  two"},
		{"large", "big", strings.Repeat("x", 200<<10), strings.Repeat("x", 200<<10)},
	}
	var stream []byte
	for _, tc := range cases {
		stream = AppendEvent(stream, tc.event, []byte(tc.data))
	}
	r := NewReader(bufio.NewReaderSize(bytes.NewReader(stream), 16), 0)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := r.Next()
			require.NoError(t, err)
			if tc.event == "" {
				require.Nil(t, ev.Name)
			} else {
				require.Equal(t, tc.event, string(ev.Name))
			}
			require.Equal(t, tc.wantData, string(ev.Data))
			require.Equal(t, string(AppendEvent(nil, tc.event, []byte(tc.data))), string(ev.Raw))
		})
	}
	_, err := r.Next()
	require.ErrorIs(t, err, io.EOF)
}

func FuzzRoundTrip(f *testing.F) {
	f.Add("message_start", []byte(`{"type":"message_start"}`), uint64(1))
	f.Add("", []byte("a\r\nb\rc\n"), uint64(2))
	f.Add("e\r\nvil", []byte("\n\n"), uint64(3))
	f.Add(":", []byte(""), uint64(4))
	f.Fuzz(func(t *testing.T, name string, data []byte, seed uint64) {
		wantName := strings.NewReplacer("\r", "", "\n", "").Replace(name)
		wantData := strings.ReplaceAll(strings.ReplaceAll(string(data), "\r\n", "\n"), "\r", "\n")

		// WriteEvent and AppendEvent produce the same bytes.
		rec := httptest.NewRecorder()
		w := NewWriter(rec)
		if err := w.WriteEvent(name, data); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteEvent("second", data); err != nil {
			t.Fatal(err)
		}
		first := AppendEvent(nil, name, data)
		stream := AppendEvent(bytes.Clone(first), "second", data)
		if !bytes.Equal(rec.Body.Bytes(), stream) {
			t.Fatalf("WriteEvent wrote %q, AppendEvent %q", rec.Body.Bytes(), stream)
		}

		r := NewReader(newRandReader(stream, seed), 0)
		ev, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case wantName == "" && ev.Name != nil:
			t.Fatalf("name %q read back as %q, want none", name, ev.Name)
		case wantName != "" && string(ev.Name) != wantName:
			t.Fatalf("name %q read back as %q", name, ev.Name)
		case ev.Data == nil || string(ev.Data) != wantData:
			t.Fatalf("data %q read back as %q", data, ev.Data)
		case string(ev.Raw) != string(first):
			t.Fatalf("Raw %q, written %q", ev.Raw, first)
		case ev.IsComment():
			t.Fatal("event read back as a comment")
		}
		ev, err = r.Next()
		if err != nil || string(ev.Name) != "second" || string(ev.Data) != wantData {
			t.Fatalf("second event %q %q, err %v", ev.Name, ev.Data, err)
		}
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("err = %v, want EOF", err)
		}
	})
}

func BenchmarkAppendEvent(b *testing.B) {
	cases := []struct {
		name, event string
		data        []byte
	}{
		{"anthropic-delta", "content_block_delta", []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}`)},
		{"openai-chunk", "", []byte(`{"id":"chatcmpl-9xYzAbCdEf","object":"chat.completion.chunk","created":1718000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}`)},
		{"multi-line", "e", bytes.Repeat([]byte("line of text\n"), 20)},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			buf := AppendEvent(nil, tc.event, tc.data)
			b.SetBytes(int64(len(tc.data)))
			b.ReportAllocs()
			for b.Loop() {
				buf = AppendEvent(buf[:0], tc.event, tc.data)
			}
		})
	}
}

func BenchmarkWriterWriteEvent(b *testing.B) {
	w := NewWriter(discardRW{h: http.Header{}})
	data := []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}`)
	b.ReportAllocs()
	for b.Loop() {
		_ = w.WriteEvent("content_block_delta", data)
		_ = w.Flush()
	}
}
