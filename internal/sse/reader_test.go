package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// want is an expected event; nil fields mean "absent".
type want struct {
	name, data, id *string
	comment        bool
	raw            string
}

func s(v string) *string { return &v }

// got converts an event into a want for comparison (copying its bytes).
func got(ev Event) want {
	w := want{comment: ev.IsComment(), raw: string(ev.Raw)}
	if ev.Name != nil {
		w.name = s(string(ev.Name))
	}
	if ev.Data != nil {
		w.data = s(string(ev.Data))
	}
	if ev.ID != nil {
		w.id = s(string(ev.ID))
	}
	return w
}

func (w want) String() string {
	f := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return strconv.Quote(*p)
	}
	return fmt.Sprintf("{name=%s data=%s id=%s comment=%v raw=%q}", f(w.name), f(w.data), f(w.id), w.comment, w.raw)
}

// readAll reads events until an error and returns them with that error.
func readAll(r *Reader) ([]want, error) {
	var out []want
	for {
		ev, err := r.Next()
		if err != nil {
			return out, err
		}
		out = append(out, got(ev))
	}
}

var errReadPastGate = errors.New("test: read past the gate")

// gatedReader returns data in chunks of at most chunk bytes and never past
// limit: a Read at the limit fails the test, proving that Next asked for more
// bytes although the event it had to return was complete.
type gatedReader struct {
	t        testing.TB
	data     []byte
	pos      int
	limit    int
	chunk    int
	reads    int
	terminal error
}

func (g *gatedReader) Read(p []byte) (int, error) {
	g.reads++
	if g.pos >= g.limit {
		g.t.Errorf("read past the gate at byte %d", g.limit)
		return 0, errReadPastGate
	}
	if g.pos == len(g.data) {
		return 0, g.terminal
	}
	n := copy(p, g.data[g.pos:min(g.pos+g.chunk, g.limit, len(g.data))])
	g.pos += n
	return n, nil
}

// block is one event block of the matrix stream, as lines without endings.
type block struct {
	lines []string
	want  want // raw is filled in per line ending
}

var matrixBlocks = []block{
	{[]string{": keepalive"}, want{comment: true}},
	{[]string{"event: message_start", `data: {"type":"message_start",`, `data: "café"}`},
		want{name: s("message_start"), data: s("{\"type\":\"message_start\",\n\"café\"}")}},
	{[]string{"id: 42", "event: ping", "data: {}", "retry: 1000"}, want{name: s("ping"), data: s("{}"), id: s("42")}},
	{[]string{": comment inside", "data"}, want{data: s("")}},
	{[]string{"data:", "data:  two spaces"}, want{data: s("\n two spaces")}},
	{[]string{"x-unknown: ignored", "event: message_stop", `data: {"type":"message_stop"}`},
		want{name: s("message_stop"), data: s(`{"type":"message_stop"}`)}},
}

// matrixStream joins the blocks with one line ending, or for "mixed" a
// different ending per line, and returns the stream and the expected events.
// A blank line repeats the ending of the line before it (a CR line ending
// followed by an LF blank line would be one CRLF).
func matrixStream(ending string) (string, []want) {
	mixed := []string{"\r\n", "\n", "\r", "\n", "\r\n", "\r", "\r"}
	k := 0
	var sb strings.Builder
	var wants []want
	for _, b := range matrixBlocks {
		var raw strings.Builder
		e := ending
		for _, l := range b.lines {
			if ending == "mixed" {
				k++
				e = mixed[k%len(mixed)]
			}
			raw.WriteString(l + e)
		}
		raw.WriteString(e)
		w := b.want
		w.raw = raw.String()
		wants = append(wants, w)
		sb.WriteString(w.raw)
	}
	return sb.String(), wants
}

func endingName(e string) string {
	return strings.NewReplacer("\r", "CR", "\n", "LF").Replace(e)
}

func TestReaderLineEndingMatrix(t *testing.T) {
	for _, ending := range []string{"\n", "\r\n", "\r", "mixed"} {
		input, wants := matrixStream(ending)
		for _, chunk := range []int{1, 2, 3, 17, 4096} {
			t.Run(endingName(ending)+"/chunk-"+strconv.Itoa(chunk), func(t *testing.T) {
				t.Run("free", func(t *testing.T) {
					src := &gatedReader{t: t, data: []byte(input), limit: len(input) + 1, chunk: chunk, terminal: io.EOF}
					evs, err := readAll(NewReader(src, 0))
					require.ErrorIs(t, err, io.EOF)
					require.Equal(t, wants, evs)
				})
				t.Run("gated", func(t *testing.T) {
					// The source never hands out bytes past the end of the
					// event the test is waiting for.
					src := &gatedReader{t: t, data: []byte(input), chunk: chunk, terminal: io.EOF}
					r := NewReader(src, 0)
					for i, w := range wants {
						src.limit += len(w.raw)
						ev, err := r.Next()
						require.NoError(t, err, "event %d", i)
						require.Equal(t, w, got(ev), "event %d", i)
						require.Equal(t, src.limit, src.pos, "event %d", i)
						require.Zero(t, r.Buffered(), "event %d", i)
					}
					src.limit++
					_, err := r.Next()
					require.ErrorIs(t, err, io.EOF)
				})
			})
		}
	}
}

// blockingReader hands out its chunks one per Read; after the chunk at
// index gate it blocks until release is closed.
type blockingReader struct {
	chunks  []string
	gate    int
	release chan struct{}
	reads   int
}

func (b *blockingReader) Read(p []byte) (int, error) {
	if b.reads == b.gate+1 {
		<-b.release
	}
	if b.reads >= len(b.chunks) {
		b.reads++
		return 0, io.EOF
	}
	c := b.chunks[b.reads]
	b.reads++
	return copy(p, c), nil
}

func TestReaderReturnsCompleteEventWithoutAnotherRead(t *testing.T) {
	cases := []struct {
		name   string
		chunks []string
		gate   int
		first  want
		second want
	}{
		{
			name:   "CR",
			chunks: []string{"event: message\rdata: {\"value\":\"ready\"}\r\r", "\ndata: two\r\r"},
			first:  want{name: s("message"), data: s(`{"value":"ready"}`), raw: "event: message\rdata: {\"value\":\"ready\"}\r\r"},
			second: want{data: s("two"), raw: "data: two\r\r"},
		},
		{
			name:   "CR split",
			chunks: []string{"event: message\r", "data: x\r", "\r", "\ndata: two\r\r"},
			gate:   2,
			first:  want{name: s("message"), data: s("x"), raw: "event: message\rdata: x\r\r"},
			second: want{data: s("two"), raw: "data: two\r\r"},
		},
		{
			name:   "LF",
			chunks: []string{"data: a\n", "\n", "data: b\n\n"},
			gate:   1,
			first:  want{data: s("a"), raw: "data: a\n\n"},
			second: want{data: s("b"), raw: "data: b\n\n"},
		},
		{
			name:   "CRLF",
			chunks: []string{"data: a\r\n\r", "\n", "data: b\r\n\r\n"},
			gate:   1,
			first:  want{data: s("a"), raw: "data: a\r\n\r\n"},
			second: want{data: s("b"), raw: "data: b\r\n\r\n"},
		},
		{
			name:   "LF then CR blank line",
			chunks: []string{"data: a\n\r", "\ndata: b\n\n"},
			first:  want{data: s("a"), raw: "data: a\n\r"},
			second: want{data: s("b"), raw: "data: b\n\n"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := &blockingReader{chunks: tc.chunks, gate: tc.gate, release: make(chan struct{})}
			r := NewReader(src, 0)
			type result struct {
				w   want
				err error
			}
			done := make(chan result)
			go func() {
				ev, err := r.Next()
				done <- result{got(ev), err}
			}()
			select {
			case res := <-done:
				require.NoError(t, res.err)
				require.Equal(t, tc.first, res.w)
				require.Equal(t, tc.gate+1, src.reads)
			case <-time.After(5 * time.Second):
				close(src.release)
				<-done
				t.Fatal("Next waited for another read after a complete event")
			}
			close(src.release)
			ev, err := r.Next()
			require.NoError(t, err)
			require.Equal(t, tc.second, got(ev))
			_, err = r.Next()
			require.ErrorIs(t, err, io.EOF)
		})
	}
}

func TestReaderFields(t *testing.T) {
	cases := []struct {
		name  string
		input string
		want  []want
	}{
		{"comment only", ": ping\n\n", []want{{comment: true, raw: ": ping\n\n"}}},
		{"empty comment", ":\n\n", []want{{comment: true, raw: ":\n\n"}}},
		{"keep-alives between events", ": ka\n\ndata: x\n\n: ka\r\n\r\n", []want{
			{comment: true, raw: ": ka\n\n"},
			{data: s("x"), raw: "data: x\n\n"},
			{comment: true, raw: ": ka\r\n\r\n"},
		}},
		{"fields without values", "event\ndata\nid\n\n", []want{{name: s(""), data: s(""), id: s(""), raw: "event\ndata\nid\n\n"}}},
		{"data without space", "data:x\n\n", []want{{data: s("x"), raw: "data:x\n\n"}}},
		{"data with one space removed only", "data:  x \n\n", []want{{data: s(" x "), raw: "data:  x \n\n"}}},
		{"data empty after colon", "data:\n\n", []want{{data: s(""), raw: "data:\n\n"}}},
		{"data with only a space", "data: \n\n", []want{{data: s(""), raw: "data: \n\n"}}},
		{"colon in value", "data: a: b\n\n", []want{{data: s("a: b"), raw: "data: a: b\n\n"}}},
		{"tab is not removed", "data:\tx\n\n", []want{{data: s("\tx"), raw: "data:\tx\n\n"}}},
		{"multiple data lines", "data: a\ndata:\ndata: c\n\n", []want{{data: s("a\n\nc"), raw: "data: a\ndata:\ndata: c\n\n"}}},
		{"data lines around comments and other fields", "data: a\n: c\nevent: e\ndata: b\n\n", []want{
			{name: s("e"), data: s("a\nb"), raw: "data: a\n: c\nevent: e\ndata: b\n\n"},
		}},
		{"last event name wins", "event: a\nevent: b\ndata: x\n\n", []want{{name: s("b"), data: s("x"), raw: "event: a\nevent: b\ndata: x\n\n"}}},
		{"event name per block", "event: a\ndata: 1\n\ndata: 2\n\n", []want{
			{name: s("a"), data: s("1"), raw: "event: a\ndata: 1\n\n"},
			{data: s("2"), raw: "data: 2\n\n"},
		}},
		{"unknown fields ignored", "foo: bar\ndata: x\nDATA: y\ndata : z\n\n", []want{{data: s("x"), raw: "foo: bar\ndata: x\nDATA: y\ndata : z\n\n"}}},
		{"unknown fields only", "foo: bar\n\n", []want{{comment: true, raw: "foo: bar\n\n"}}},
		{"id", "id: 7\ndata: x\n\n", []want{{id: s("7"), data: s("x"), raw: "id: 7\ndata: x\n\n"}}},
		{"last id wins", "id: 1\nid: 2\n\n", []want{{id: s("2"), raw: "id: 1\nid: 2\n\n"}}},
		{"id with NUL ignored", "id: a\x00b\ndata: x\n\n", []want{{data: s("x"), raw: "id: a\x00b\ndata: x\n\n"}}},
		{"retry ignored but a field", "retry: 1000\n\n", []want{{raw: "retry: 1000\n\n"}}},
		{"empty blocks skipped", "\n\n\r\n\rdata: x\n\n\n\n\r\r\n", []want{{data: s("x"), raw: "data: x\n\n"}}},
		{"only blank lines", "\n\r\n\r\n\n", nil},
		{"empty input", "", nil},
		{"leading BOM skipped", "\xEF\xBB\xBFdata: x\n\n", []want{{data: s("x"), raw: "data: x\n\n"}}},
		{"BOM prefix is data", "\xEF\xBBdata: x\n\n", []want{{comment: true, raw: "\xEF\xBBdata: x\n\n"}}},
		{"second BOM not skipped", "\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\n", []want{{comment: true, raw: "\xEF\xBB\xBFdata: x\n\n"}}},
		{"NUL and UTF-8 in data", "data: \x00é\n\n", []want{{data: s("\x00é"), raw: "data: \x00é\n\n"}}},
		{"EOF after partial block", "data: a\n\ndata: x", []want{
			{data: s("a"), raw: "data: a\n\n"},
			{data: s("x"), raw: "data: x\n\n"},
		}},
		{"EOF after LF", "event: e\ndata: x\n", []want{{name: s("e"), data: s("x"), raw: "event: e\ndata: x\n\n"}}},
		{"EOF after CRLF", "data: x\r\n", []want{{data: s("x"), raw: "data: x\r\n\n"}}},
		{"CR at EOF", "data: x\r", []want{{data: s("x"), raw: "data: x\r\n\n"}}},
		{"CR blank line at EOF", "data: x\r\r", []want{{data: s("x"), raw: "data: x\r\r"}}},
		{"CRLF then CR at EOF", "data: x\r\n\r", []want{{data: s("x"), raw: "data: x\r\n\r"}}},
		{"EOF after field then comment", "event: a\n: c", []want{{name: s("a"), raw: "event: a\n: c\n\n"}}},
		{"comment-only tail dropped", "data: a\n\n: ping", []want{{data: s("a"), raw: "data: a\n\n"}}},
		{"comment-only tail with LF dropped", "data: a\n\n: ping\n", []want{{data: s("a"), raw: "data: a\n\n"}}},
		{"unknown-field tail dropped", "foo", nil},
		{"retry tail kept", "retry: 5", []want{{raw: "retry: 5\n\n"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range []int{1, 2, 4096} {
				src := &gatedReader{t: t, data: []byte(tc.input), limit: len(tc.input) + 1, chunk: chunk, terminal: io.EOF}
				r := NewReader(src, 0)
				evs, err := readAll(r)
				require.ErrorIs(t, err, io.EOF, "chunk %d", chunk)
				require.Equal(t, tc.want, evs, "chunk %d", chunk)
				_, err = r.Next()
				require.ErrorIs(t, err, io.EOF, "EOF is sticky")
			}
		})
	}
}

func TestReaderLargeEvents(t *testing.T) {
	oneLine := "data: " + strings.Repeat("x", 300<<10) + "\n\n"
	var many strings.Builder
	var manyData strings.Builder
	for i := range 20000 {
		line := fmt.Sprintf("line %05d", i)
		many.WriteString("data: " + line + "\n")
		if i > 0 {
			manyData.WriteByte('\n')
		}
		manyData.WriteString(line)
	}
	many.WriteString("\n")
	// 1 MiB of short CR-terminated lines: a reader that rescans the buffer
	// per line would take hours here.
	crLines := strings.Repeat("data: 0123456\r", 1<<16) + "\r"

	cases := []struct {
		name  string
		input string
		data  string
	}{
		{"300 KiB line", oneLine, strings.Repeat("x", 300<<10)},
		{"20000 lines", many.String(), manyData.String()},
		{"1 MiB of CR lines", crLines, strings.TrimSuffix(strings.Repeat("0123456\n", 1<<16), "\n")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range []int{1000, 4096, 1 << 20} {
				input := "data: before\n\n" + tc.input + "data: after\n\n"
				src := &gatedReader{t: t, data: []byte(input), limit: len(input) + 1, chunk: chunk, terminal: io.EOF}
				r := NewReader(src, 0)
				evs, err := readAll(r)
				require.ErrorIs(t, err, io.EOF)
				require.Len(t, evs, 3)
				require.Equal(t, "before", *evs[0].data)
				require.Equal(t, tc.data, *evs[1].data)
				require.Equal(t, tc.input, evs[1].raw)
				require.Equal(t, "after", *evs[2].data)
				require.LessOrEqual(t, len(r.buf), 4*len(tc.input), "memory is O(event)")
			}
		})
	}
}

func TestReaderEventTooLarge(t *testing.T) {
	const limit = 64 << 10
	exact := "data: " + strings.Repeat("x", limit-8) + "\n\n"
	require.Len(t, exact, limit)
	cases := []struct {
		name    string
		input   string
		ok      int // events returned before the error; -1: no error
		wantErr bool
	}{
		{"exactly at the cap", "data: a\n\n" + exact, 2, false},
		{"one byte over", "data: a\n\n" + "data: " + strings.Repeat("x", limit-7) + "\n\n", 1, true},
		{"one long line without end", "data: a\n\n" + "data: " + strings.Repeat("x", 200<<10), 1, true},
		{"many lines", "data: a\n\n" + strings.Repeat("data: 0123456789\n", limit/10), 1, true},
		{"long comment", ":" + strings.Repeat("x", limit) + "\n\n", 0, true},
		{"EOF suffix exceeds the cap", "data: a\n\n" + "data: " + strings.Repeat("x", limit-7), 1, true},
		{"EOF suffix fits", "data: a\n\n" + exact[:limit-2], 2, false},
		{"EOF LF suffix fits", "data: a\n\n" + exact[:limit-1], 2, false},
		// The block is one byte over with the LF of its final CRLF; it is
		// returned without that LF, which is then skipped.
		{"CRLF stream at the cap", "data: a\r\n\r\n" + "data: " + strings.Repeat("x", limit-9) + "\r\n\r\ndata: b\r\n\r\n", 3, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range []int{1, 4096, 1 << 20} {
				src := &gatedReader{t: t, data: []byte(tc.input), limit: len(tc.input) + 1, chunk: chunk, terminal: io.EOF}
				r := NewReader(src, limit)
				evs, err := readAll(r)
				for _, ev := range evs {
					require.LessOrEqual(t, len(ev.raw), limit)
				}
				require.Len(t, evs, tc.ok, "chunk %d", chunk)
				if !tc.wantErr {
					require.ErrorIs(t, err, io.EOF)
					continue
				}
				require.ErrorIs(t, err, ErrEventTooLarge, "chunk %d", chunk)
				require.Contains(t, err.Error(), strconv.Itoa(limit))
				_, err2 := r.Next()
				require.Equal(t, err, err2, "the error is sticky")
				require.LessOrEqual(t, len(r.buf), limit)
			}
		})
	}
}

func TestReaderCRLFAtTheCap(t *testing.T) {
	// A CRLF block that reaches the cap at its final CR is returned without
	// waiting for the LF, which would not fit.
	const limit = 32
	block := "data: " + strings.Repeat("x", limit-6-3) + "\r\n\r"
	require.Len(t, block, limit)
	src := &gatedReader{t: t, data: []byte(block + "\ndata: b\r\n\r\n"), chunk: 1, terminal: io.EOF}
	src.limit = len(block)
	r := NewReader(src, limit)
	ev, err := r.Next()
	require.NoError(t, err)
	require.Equal(t, block, string(ev.Raw))
	src.limit = len(src.data) + 1
	evs, err := readAll(r)
	require.ErrorIs(t, err, io.EOF)
	require.Equal(t, []want{{data: s("b"), raw: "data: b\r\n\r\n"}}, evs)
}

// errAfterReader returns its data in one read, then err.
type errAfterReader struct {
	data     []string
	err      error
	withLast bool // return the last chunk together with err
}

func (e *errAfterReader) Read(p []byte) (int, error) {
	if len(e.data) == 0 {
		return 0, e.err
	}
	n := copy(p, e.data[0])
	e.data = e.data[1:]
	if e.withLast && len(e.data) == 0 {
		return n, e.err
	}
	return n, nil
}

func TestReaderUnderlyingError(t *testing.T) {
	boom := errors.New("boom")
	cases := []struct {
		name string
		src  io.Reader
		want []want
	}{
		{"after complete events", &errAfterReader{data: []string{"data: a\n\ndata: b\n\n"}, err: boom}, []want{
			{data: s("a"), raw: "data: a\n\n"}, {data: s("b"), raw: "data: b\n\n"},
		}},
		{"with the last bytes", &errAfterReader{data: []string{"data: a\n\n", "data: b\n\n"}, err: boom, withLast: true}, []want{
			{data: s("a"), raw: "data: a\n\n"}, {data: s("b"), raw: "data: b\n\n"},
		}},
		{"partial block is not returned", &errAfterReader{data: []string{"data: a\n\ndata: b"}, err: boom}, []want{
			{data: s("a"), raw: "data: a\n\n"},
		}},
		{"complete CRLF block waiting for its LF", &errAfterReader{data: []string{"data: a\r\n\r"}, err: boom}, []want{
			{data: s("a"), raw: "data: a\r\n\r"},
		}},
		{"wrapped", &errAfterReader{err: fmt.Errorf("read tcp: %w", boom)}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(tc.src, 0)
			evs, err := readAll(r)
			require.Equal(t, tc.want, evs)
			require.ErrorIs(t, err, boom)
			_, err = r.Next()
			require.ErrorIs(t, err, boom, "sticky")
		})
	}
}

type badCountReader struct{}

func (badCountReader) Read(p []byte) (int, error) { return len(p) + 1, nil }

func TestReaderInvalidReadCount(t *testing.T) {
	_, err := NewReader(badCountReader{}, 0).Next()
	require.ErrorContains(t, err, "invalid Read count")
}

func TestReaderEOFSuffixNeedsRoom(t *testing.T) {
	// The final unterminated block fills the buffer exactly and arrives
	// together with io.EOF: the synthetic ending needs a larger buffer.
	tail := "data: " + strings.Repeat("x", initialBufSize-6)
	src := &errAfterReader{data: []string{tail}, err: io.EOF, withLast: true}
	evs, err := readAll(NewReader(src, 0))
	require.ErrorIs(t, err, io.EOF)
	require.Equal(t, []want{{data: s(strings.Repeat("x", initialBufSize-6)), raw: tail + "\n\n"}}, evs)
}

type zeroReader struct{ reads int }

func (z *zeroReader) Read([]byte) (int, error) { z.reads++; return 0, nil }

func TestReaderNoProgress(t *testing.T) {
	z := &zeroReader{}
	_, err := NewReader(z, 0).Next()
	require.ErrorIs(t, err, io.ErrNoProgress)
	require.Equal(t, maxEmptyReads, z.reads)
}

func TestReaderReset(t *testing.T) {
	r := NewReader(strings.NewReader("data: a\n\ndata: partial"), 64)
	ev, err := r.Next()
	require.NoError(t, err)
	require.Equal(t, "a", string(ev.Data))
	r.Reset(strings.NewReader(":" + strings.Repeat("x", 200)))
	_, err = r.Next()
	require.ErrorIs(t, err, ErrEventTooLarge)

	// Reset clears the error state, keeps the cap and the buffer.
	buf := r.buf
	r.Reset(strings.NewReader("\xEF\xBB\xBFevent: e\rdata: 1\rdata: 2\r\r"))
	evs, err := readAll(r)
	require.ErrorIs(t, err, io.EOF)
	require.Equal(t, []want{{name: s("e"), data: s("1\n2"), raw: "event: e\rdata: 1\rdata: 2\r\r"}}, evs)
	require.Equal(t, &buf[0], &r.buf[0], "buffer reused")
	require.Equal(t, 64, r.max)

	var zero Reader
	zero.Reset(strings.NewReader("data: z\n\n"))
	evs, err = readAll(&zero)
	require.ErrorIs(t, err, io.EOF)
	require.Equal(t, []want{{data: s("z"), raw: "data: z\n\n"}}, evs)
	require.Equal(t, DefaultMaxEventBytes, zero.max)
}

func TestReaderBuffered(t *testing.T) {
	r := NewReader(strings.NewReader("data: a\r\r\n\n\ndata: b\n\ndata: c"), 0)
	ev, err := r.Next()
	require.NoError(t, err)
	require.Equal(t, "a", string(ev.Data))
	require.Equal(t, len("data: b\n\ndata: c"), r.Buffered(), "blank lines after an event are not counted")
	_, err = r.Next()
	require.NoError(t, err)
	require.Equal(t, len("data: c"), r.Buffered())
	_, err = r.Next()
	require.NoError(t, err)
	require.Zero(t, r.Buffered())
}

func TestReaderEventSlicesDoNotClobber(t *testing.T) {
	r := NewReader(strings.NewReader("event: e\ndata: 1\nid: 9\n\n"), 0)
	ev, err := r.Next()
	require.NoError(t, err)
	_ = append(ev.Name, "XXXX"...)
	_ = append(ev.Data, "XXXX"...)
	_ = append(ev.ID, "XXXX"...)
	require.Equal(t, "event: e\ndata: 1\nid: 9\n\n", string(ev.Raw))
}

func TestReaderSteadyStateAllocs(t *testing.T) {
	stream := []byte(strings.Repeat("event: delta\ndata: {\"text\":\"hi\"}\n\n", 50) +
		strings.Repeat("data: line one\ndata: line two\r\n\r\n", 50) +
		strings.Repeat(": ping\r\r", 50))
	src := bytes.NewReader(stream)
	r := NewReader(src, 0)
	run := func() {
		src.Reset(stream)
		r.Reset(src)
		n := 0
		for {
			_, err := r.Next()
			if err != nil {
				break
			}
			n++
		}
		if n != 150 {
			t.Fatalf("%d events", n)
		}
	}
	run() // warm up buffers
	require.Zero(t, testing.AllocsPerRun(20, run))
}

// refParse is a straightforward whole-input parser used as the oracle for
// FuzzReader. It sees all bytes at once, so for it a CR followed by LF is
// always one CRLF.
func refParse(in []byte) []want {
	var out []want
	pos := 0
	if bytes.HasPrefix(in, utf8BOM) {
		pos = len(utf8BOM)
	}
	blockStart := -1
	var cur want
	var dataLines []string
	fields := false
	line := func(l []byte) {
		if l[0] == ':' {
			return
		}
		name, value := string(l), ""
		if i := bytes.IndexByte(l, ':'); i >= 0 {
			name, value = string(l[:i]), string(l[i+1:])
			value = strings.TrimPrefix(value, " ")
		}
		switch name {
		case "event":
			fields, cur.name = true, s(value)
		case "data":
			fields = true
			dataLines = append(dataLines, value)
		case "id":
			fields = true
			if !strings.Contains(value, "\x00") {
				cur.id = s(value)
			}
		case "retry":
			fields = true
		}
	}
	emit := func(raw string) {
		if dataLines != nil {
			cur.data = s(strings.Join(dataLines, "\n"))
		}
		cur.comment = !fields
		cur.raw = raw
		out = append(out, cur)
		cur, dataLines, fields, blockStart = want{}, nil, false, -1
	}
	for pos < len(in) {
		i := pos
		for i < len(in) && in[i] != '\r' && in[i] != '\n' {
			i++
		}
		if i == len(in) {
			if blockStart < 0 {
				blockStart = pos
			}
			line(in[pos:])
			pos = len(in)
			break
		}
		next := i + 1
		if in[i] == '\r' && next < len(in) && in[next] == '\n' {
			next++
		}
		if i == pos {
			if blockStart >= 0 {
				emit(string(in[blockStart:next]))
			}
		} else {
			if blockStart < 0 {
				blockStart = pos
			}
			line(in[pos:i])
		}
		pos = next
	}
	if blockStart >= 0 && fields {
		raw := string(in[blockStart:])
		if strings.HasSuffix(raw, "\n") {
			emit(raw + "\n")
		} else {
			emit(raw + "\n\n")
		}
	}
	return out
}

// randReader returns data in pseudo-random chunk sizes from seed.
type randReader struct {
	data []byte
	rng  *rand.Rand
	max  int
}

func (rr *randReader) Read(p []byte) (int, error) {
	if len(rr.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, rr.data[:min(len(rr.data), 1+rr.rng.IntN(rr.max))])
	rr.data = rr.data[n:]
	return n, nil
}

func newRandReader(data []byte, seed uint64) *randReader {
	return &randReader{data: data, rng: rand.New(rand.NewPCG(seed, seed>>7)), max: 1 + int(seed%97)}
}

// sameEvent compares an event from the chunked reader with the oracle's:
// the reader may have returned a CR-terminated block before the LF that the
// oracle counts as part of it.
func sameEvent(g, w want) bool {
	if g.raw != w.raw && !(strings.HasSuffix(g.raw, "\r") && g.raw+"\n" == w.raw) {
		return false
	}
	g.raw, w.raw = "", ""
	return g.String() == w.String()
}

func FuzzReader(f *testing.F) {
	for _, e := range []string{"\n", "\r\n", "\r", "mixed"} {
		in, _ := matrixStream(e)
		f.Add([]byte(in), uint64(1))
		f.Add([]byte(in), uint64(2))
	}
	for _, in := range []string{
		"data: a\r\n\r\ndata: b\r\r\ndata: c", "\xEF\xBB\xBFdata: x\r\r", "event: a\n: c", "id: 1\x00\n\n",
		"data: x\r\n\r", ":\r\r\r\n\n\r", "data\ndata\n\ndata:", "\xEF\xBB",
	} {
		f.Add([]byte(in), uint64(3))
	}
	f.Fuzz(checkAgainstReference)
}

// TestReaderMatchesReference runs the FuzzReader checks on random streams
// built from SSE fragments, so plain `go test` covers compaction and growth
// with every line ending.
func TestReaderMatchesReference(t *testing.T) {
	pieces := []string{
		"data: x", "data:", "data", "event: e", "id: 1", "retry: 5", ": c", "foo: bar",
		"\r", "\n", "\r\n", "\r\r", "\n\n", "\r\n\r\n", "\n\r",
		"data: " + strings.Repeat("y", 40), ":" + strings.Repeat("z", 100),
	}
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 1))
		var b strings.Builder
		if seed%10 == 0 {
			b.Write(utf8BOM)
		}
		for range rng.IntN(80) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		in := b.String()
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			checkAgainstReference(t, []byte(in), seed)
		})
	}
}

// checkAgainstReference is the body of FuzzReader: it reads in (chunked by
// seed) with the default cap and with a small one, and compares the events
// with refParse.
func checkAgainstReference(t *testing.T, in []byte, seed uint64) {
	ref := refParse(in)

	r := NewReader(newRandReader(in, seed), 0)
	evs, err := readAll(r)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("err = %v", err)
	}
	if len(evs) != len(ref) {
		t.Fatalf("%d events, oracle %d\n got %v\nwant %v", len(evs), len(ref), evs, ref)
	}
	for i := range evs {
		if !sameEvent(evs[i], ref[i]) {
			t.Fatalf("event %d:\n got %v\nwant %v", i, evs[i], ref[i])
		}
	}

	// Every Raw is the next part of the input, after only blank-line
	// bytes (and a leading BOM); only a final unterminated block gets
	// a synthetic ending.
	off := 0
	if bytes.HasPrefix(in, utf8BOM) {
		off = len(utf8BOM)
	}
	for i, ev := range evs {
		for off < len(in) && (in[off] == '\r' || in[off] == '\n') {
			off++
		}
		raw := []byte(ev.raw)
		if bytes.HasPrefix(in[off:], raw) {
			off += len(raw)
			continue
		}
		if i != len(evs)-1 {
			t.Fatalf("event %d Raw %q is not at input offset %d", i, raw, off)
		}
		tail := string(in[off:])
		if ev.raw != tail+"\n\n" && !(strings.HasSuffix(tail, "\n") && ev.raw == tail+"\n") {
			t.Fatalf("final Raw %q does not complete the input tail %q", raw, tail)
		}
		off = len(in)
	}

	// With a small cap: no Raw over it, the same events until an error,
	// and an error only for a block that is really too large.
	limit := 16 + int(seed%200)
	r = NewReader(newRandReader(in, seed^0x5eed), limit)
	capped, err := readAll(r)
	for i, ev := range capped {
		if len(ev.raw) > limit {
			t.Fatalf("event %d Raw is %d bytes, cap %d", i, len(ev.raw), limit)
		}
		if i >= len(ref) || !sameEvent(ev, ref[i]) {
			t.Fatalf("capped event %d = %v, oracle %v", i, ev, ref)
		}
	}
	switch {
	case errors.Is(err, io.EOF):
		if len(capped) != len(ref) {
			t.Fatalf("capped reader ended after %d events, oracle has %d", len(capped), len(ref))
		}
	case errors.Is(err, ErrEventTooLarge):
		if n := len(capped); n < len(ref) && len(ref[n].raw) <= limit {
			t.Fatalf("ErrEventTooLarge for event %v with cap %d", ref[n], limit)
		}
	default:
		t.Fatalf("capped err = %v", err)
	}
}

func openAIStream(n int) []byte {
	var b bytes.Buffer
	words := []string{"Hello", " world", ",", " this", " is", " a", " streamed", " answer", "."}
	for i := range n {
		fmt.Fprintf(&b, `data: {"id":"chatcmpl-9xYzAbCdEf","object":"chat.completion.chunk","created":1718000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":%q},"finish_reason":null}]}`+"\n\n", words[i%len(words)])
	}
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

func anthropicStream(n int) []byte {
	var b bytes.Buffer
	b.WriteString("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n")
	b.WriteString("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
	for i := range n {
		if i%50 == 0 {
			b.WriteString("event: ping\ndata: {\"type\": \"ping\"}\n\n")
		}
		fmt.Fprintf(&b, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":%q}}\n\n", "token"+strconv.Itoa(i))
	}
	b.WriteString("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
	b.WriteString("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":200}}\n\n")
	b.WriteString("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	return b.Bytes()
}

// chunkReader reads from a byte slice at most n bytes at a time, like a
// network connection delivering segments.
type chunkReader struct {
	data []byte
	n    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := copy(p, c.data[:min(len(c.data), c.n)])
	c.data = c.data[k:]
	return k, nil
}

func benchmarkStream(b *testing.B, stream []byte) {
	for _, chunk := range []int{256, 1 << 20} {
		b.Run("read="+strconv.Itoa(chunk), func(b *testing.B) {
			src := &chunkReader{}
			r := NewReader(src, 0)
			events := 0
			b.SetBytes(int64(len(stream)))
			b.ReportAllocs()
			for b.Loop() {
				src.data, src.n = stream, chunk
				r.Reset(src)
				for {
					if _, err := r.Next(); err != nil {
						break
					}
					events++
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
			b.ReportMetric(float64(events)/float64(b.N), "events/op")
		})
	}
}

func BenchmarkReaderOpenAIChunks(b *testing.B) { benchmarkStream(b, openAIStream(200)) }

func BenchmarkReaderAnthropicEvents(b *testing.B) { benchmarkStream(b, anthropicStream(200)) }

func TestReady(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input string
		want  bool
	}{
		{"complete next event LF", "data: a\n\ndata: b\n\n", true},
		{"partial next event", "data: a\n\ndata: b", false},
		{"partial next event with a line", "data: a\n\ndata: b\n", false},
		{"complete next event CRLF", "data: a\r\n\r\ndata: b\r\n\r\n", true},
		{"partial CRLF", "data: a\r\n\r\ndata: b\r\n", false},
		{"complete next event CR", "data: a\r\rdata: b\r\r", true},
		{"nothing more", "data: a\n\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(&blockingAfter{data: []byte(tc.input)}, 0)
			_, err := r.Next()
			require.NoError(t, err)
			require.Equal(t, tc.want, r.Ready())
		})
	}
}

// blockingAfter returns its data in one read and then fails the test if
// read again while Ready is being checked (it returns no bytes, no error).
type blockingAfter struct {
	data []byte
	done bool
}

func (b *blockingAfter) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	b.done = true
	return copy(p, b.data), nil
}
