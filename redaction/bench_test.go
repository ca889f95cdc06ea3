package redaction

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/llmgate/gateway/internal/benchcpu"
	"github.com/llmgate/gateway/internal/sse"
	"github.com/llmgate/gateway/tokens"
)

// benchWords are the content deltas of the benchmark streams: tokens of
// ordinary prose, as a model streams them, with none of the presets'
// shapes.
var benchWords = []string{" Hello", ",", " world", "! This", " is", " a", " streamed", " answer", " with", " é", " and", " \"quotes\"", " in", " 2025", "."}

// benchStream returns an SSE stream of n content events of format f,
// with the events before and after them that the provider sends.
func benchStream(f Format, n int) []byte {
	var b strings.Builder
	if f == Anthropic {
		ev := func(name, data string) { b.WriteString("event: " + name + "\ndata: " + data + "\n\n") }
		ev("message_start", anthropicStart)
		ev("content_block_start", blockStart)
		for i := range n {
			ev("content_block_delta", anthropicDelta(benchWords[i%len(benchWords)]))
		}
		ev("content_block_stop", blockStop)
		ev("message_delta", messageDelta)
		ev("message_stop", messageStop)
		return []byte(b.String())
	}
	b.WriteString("data: " + openAIRole + "\n\n")
	for i := range n {
		b.WriteString("data: " + openAIChunk(benchWords[i%len(benchWords)]) + "\n\n")
	}
	b.WriteString("data: " + openAIFinish + "\n\ndata: " + openAIUsage + "\n\ndata: [DONE]\n\n")
	return []byte(b.String())
}

// discardRW is a flushable http.ResponseWriter that drops what it gets.
type discardRW struct{ h http.Header }

func (d discardRW) Header() http.Header         { return d.h }
func (d discardRW) WriteHeader(int)             {}
func (d discardRW) Write(b []byte) (int, error) { return len(b), nil }
func (d discardRW) Flush()                      {}

// relay is the loop the gateway runs for a same-format stream: read an
// event, let the usage tap see it, write it and flush when nothing more is
// buffered — with, when rs is not nil, the redaction filter between the
// tap and the writer.
type relay struct {
	src  *bytes.Reader
	rd   *sse.Reader
	w    *sse.Writer
	tap  *tokens.StreamTap
	rs   *EventStream
	name string
	buf  []byte
}

func newRelay(f Format, r *Redactor, m Mode) *relay {
	rl := &relay{src: bytes.NewReader(nil), w: sse.NewWriter(discardRW{h: http.Header{}})}
	rl.rd = sse.NewReader(rl.src, 0)
	rl.name = f.DeltaEvent()
	if r != nil {
		rl.rs = r.NewEventStream(f, m)
	}
	return rl
}

func (rl *relay) stream(b *testing.B, stream []byte, f Format, r *Redactor, m Mode) {
	rl.src.Reset(stream)
	rl.rd.Reset(rl.src)
	rl.run(b, f, r, m)
}

// run relays the events of rl.rd to rl.w.
func (rl *relay) run(b *testing.B, f Format, r *Redactor, m Mode) {
	if f == Anthropic {
		rl.tap = tokens.NewAnthropicTap()
	} else {
		rl.tap = tokens.NewOpenAITap()
	}
	if r != nil {
		rl.rs = r.NewEventStream(f, m)
	}
	for {
		ev, err := rl.rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		rl.tap.Observe(ev.Data)
		out := ev.Raw
		if rl.rs != nil {
			pre, data, err := rl.rs.Event(ev.Data)
			if err != nil {
				b.Fatal(err)
			}
			if pre != nil || &data[0] != &ev.Data[0] {
				rl.buf = rl.buf[:0]
				if pre != nil {
					rl.buf = sse.AppendEvent(rl.buf, rl.name, pre)
				}
				rl.buf = sse.AppendEvent(rl.buf, string(ev.Name), data)
				out = rl.buf
			}
		}
		if err := rl.w.Write(out); err != nil {
			b.Fatal(err)
		}
		if rl.rd.Buffered() == 0 {
			_ = rl.w.Flush()
		}
	}
}

// BenchmarkStream20 relays a whole answer of 20 content events, as the
// gateway does for a client of the provider's own format, without
// redaction and with all six presets in both modes. One op is one
// stream.
func BenchmarkStream20(b *testing.B) {
	r := allPresets(b)
	for _, f := range []Format{OpenAIChat, Anthropic} {
		stream := benchStream(f, 20)
		for _, bc := range []struct {
			name string
			r    *Redactor
			m    Mode
		}{{"passthrough", nil, 0}, {"across_chunks", r, AcrossChunks}, {"per_chunk", r, PerChunk}} {
			b.Run(f.String()+"/"+bc.name, func(b *testing.B) {
				rl := newRelay(f, bc.r, bc.m)
				b.SetBytes(int64(len(stream)))
				b.ReportAllocs()
				defer benchcpu.Report(b)()
				for b.Loop() {
					rl.stream(b, stream, f, bc.r, bc.m)
				}
			})
		}
	}
}

// BenchmarkHTTPStream20 serves the 20-event answer through a relay over
// loopback HTTP — an upstream that flushes each event, a relay handler
// that runs the gateway's loop (with the redaction filter or not), a
// client that reads the whole stream — so the redaction's cost shows
// against a pass-through's whole cost. One op is one stream.
func BenchmarkHTTPStream20(b *testing.B) {
	r := allPresets(b)
	for _, f := range []Format{OpenAIChat, Anthropic} {
		stream := benchStream(f, 20)
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			sse.SetHeaders(w.Header())
			rc := http.NewResponseController(w)
			for ev := range bytes.SplitAfterSeq(stream, []byte("\n\n")) {
				_, _ = w.Write(ev)
				_ = rc.Flush()
			}
		}))
		b.Cleanup(up.Close)
		transport := &http.Transport{MaxIdleConnsPerHost: 16}
		b.Cleanup(transport.CloseIdleConnections)
		client := &http.Client{Transport: transport}
		for _, bc := range []struct {
			name string
			r    *Redactor
			m    Mode
		}{{"passthrough", nil, 0}, {"across_chunks", r, AcrossChunks}, {"per_chunk", r, PerChunk}} {
			b.Run(f.String()+"/"+bc.name, func(b *testing.B) {
				relaySrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
					resp, err := client.Get(up.URL)
					if err != nil {
						http.Error(w, err.Error(), http.StatusBadGateway)
						return
					}
					defer resp.Body.Close()
					sse.SetHeaders(w.Header())
					rl := &relay{rd: sse.NewReader(resp.Body, 0), w: sse.NewWriter(w), name: f.DeltaEvent()}
					rl.run(b, f, bc.r, bc.m)
				}))
				defer relaySrv.Close()
				b.ReportAllocs()
				defer benchcpu.Report(b)()
				for b.Loop() {
					resp, err := client.Get(relaySrv.URL)
					if err != nil {
						b.Fatal(err)
					}
					n, _ := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if n < int64(len(stream))/2 {
						b.Fatalf("read %d bytes", n)
					}
				}
			})
		}
	}
}

// BenchmarkEvent measures one content event: read with internal/sse and
// copied, or read and redacted (and re-framed when it changes). One op
// is one event.
func BenchmarkEvent(b *testing.B) {
	r := allPresets(b)
	for _, f := range []Format{OpenAIChat, Anthropic} {
		stream := benchStream(f, 4096)
		for _, bc := range []struct {
			name string
			r    *Redactor
			m    Mode
		}{{"copy", nil, 0}, {"across_chunks", r, AcrossChunks}, {"per_chunk", r, PerChunk}} {
			b.Run(f.String()+"/"+bc.name, func(b *testing.B) {
				src := bytes.NewReader(stream)
				rd := sse.NewReader(src, 0)
				var rs *EventStream
				if bc.r != nil {
					rs = bc.r.NewEventStream(f, bc.m)
				}
				out := make([]byte, 0, 64<<10)
				b.ReportAllocs()
				defer benchcpu.Report(b)()
				for b.Loop() {
					ev, err := rd.Next()
					if errors.Is(err, io.EOF) {
						src.Reset(stream)
						rd.Reset(src)
						if rs != nil {
							rs = bc.r.NewEventStream(f, bc.m)
						}
						continue
					}
					if rs == nil {
						out = append(out, ev.Raw...)
					} else {
						pre, data, err := rs.Event(ev.Data)
						if err != nil {
							b.Fatal(err)
						}
						if pre != nil {
							out = sse.AppendEvent(out, f.DeltaEvent(), pre)
						}
						if pre == nil && &data[0] == &ev.Data[0] {
							out = append(out, ev.Raw...)
						} else {
							out = sse.AppendEvent(out, string(ev.Name), data)
						}
					}
					if len(out) > 32<<10 {
						out = out[:0]
					}
				}
			})
		}
	}
}

// BenchmarkText measures Text on prose with and without matches.
func BenchmarkText(b *testing.B) {
	r := allPresets(b)
	prose := strings.Repeat("The quick brown fox jumps over the lazy dog in 2025. ", 20)
	for _, bc := range []struct{ name, text string }{
		{"no_match", prose},
		{"matches", prose + strings.Join(presetSamples, " ")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.text)))
			b.ReportAllocs()
			for b.Loop() {
				r.Text(bc.text)
			}
		})
	}
}

// BenchmarkJSON measures JSON on a chat request.
func BenchmarkJSON(b *testing.B) {
	r := allPresets(b)
	body := []byte(`{"model":"gpt-4o","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"` +
		strings.Repeat("Please summarise the following paragraph for me. ", 40) + `"}]}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := r.JSON(body); err != nil {
			b.Fatal(err)
		}
	}
}
