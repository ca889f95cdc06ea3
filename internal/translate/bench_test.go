package translate

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmgate/gateway/internal/benchcpu"
	"github.com/llmgate/gateway/internal/jsonx"
	"github.com/llmgate/gateway/internal/sse"
	"github.com/llmgate/gateway/providers"
)

// benchEvents is how many delta events a benchmark stream holds; the
// per-stream work (reader reset, message_start, closing events) is spread
// over them.
const benchEvents = 4096

var words = []string{" Hello", ",", " world", "! This", " is", " a", " streamed", " answer", " with", " é", " and", " \"quotes\""}

// openAIBenchStream is a chat completion stream as OpenAI sends it, with
// benchEvents content chunks (or tool argument chunks).
func openAIBenchStream(tools bool) []byte {
	var b strings.Builder
	head := `data: {"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion.chunk","created":1741570283,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_eb9dce56a8","choices":[{"index":0,"delta":`
	tail := `,"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\n"
	b.WriteString(head + `{"role":"assistant","content":"","refusal":null}` + tail)
	if tools {
		b.WriteString(head + `{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"write_file","arguments":""}}]}` + tail)
	}
	for i := range benchEvents {
		w := jsonString(words[i%len(words)])
		if tools {
			b.WriteString(head + `{"tool_calls":[{"index":0,"function":{"arguments":` + w + `}}]}` + tail)
		} else {
			b.WriteString(head + `{"content":` + w + `}` + tail)
		}
	}
	b.WriteString(`data: {"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion.chunk","created":1741570283,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}` + "\n\n")
	b.WriteString(`data: {"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion.chunk","created":1741570283,"model":"gpt-4o-2024-08-06","choices":[],"usage":{"prompt_tokens":19,"completion_tokens":4096,"total_tokens":4115}}` + "\n\n")
	b.WriteString("data: [DONE]\n\n")
	return []byte(b.String())
}

// anthropicBenchStream is a Messages stream as Anthropic sends it, with
// benchEvents text (or tool input) deltas.
func anthropicBenchStream(tools bool) []byte {
	var b strings.Builder
	ev := func(typ, data string) { b.WriteString("event: " + typ + "\ndata: " + data + "\n\n") }
	ev("message_start", `{"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}`)
	if tools {
		ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"write_file","input":{}}}`)
	} else {
		ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	}
	for i := range benchEvents {
		w := jsonString(words[i%len(words)])
		if tools {
			ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":`+w+`}}`)
		} else {
			ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":`+w+`}}`)
		}
	}
	ev("content_block_stop", `{"type":"content_block_stop","index":0}`)
	ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":4096}}`)
	ev("message_stop", `{"type":"message_stop"}`)
	return []byte(b.String())
}

// benchStream measures the cost of one upstream event: read with
// internal/sse, then either passed through (translate == nil) or
// translated, into a reused output buffer. One op is one event.
func benchStream(b *testing.B, stream []byte, newStream func() *Stream) {
	b.Helper()
	src := bytes.NewReader(stream)
	rd := sse.NewReader(src, 0)
	var s *Stream
	if newStream != nil {
		s = newStream()
	}
	out := make([]byte, 0, 64<<10)
	b.SetBytes(int64(len(stream) / benchEvents))
	b.ReportAllocs()
	defer benchcpu.Report(b)()
	b.ResetTimer()
	for range b.N {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			src.Reset(stream)
			rd.Reset(src)
			if s != nil {
				out = s.Finish(out, true)
				s = newStream()
			}
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		if s == nil {
			out = append(out, ev.Raw...)
		} else if out, err = s.Event(out, ev.Name, ev.Data); err != nil {
			b.Fatal(err)
		}
		if len(out) > 32<<10 { // the gateway writes and reuses its buffer
			out = out[:0]
		}
	}
}

func BenchmarkStream(b *testing.B) {
	toOpenAI := func() *Stream {
		return NewStream(providers.FormatAnthropic, providers.FormatOpenAI, StreamOptions{IncludeUsage: true, Now: fixedNow})
	}
	toAnthropic := func() *Stream {
		return NewStream(providers.FormatOpenAI, providers.FormatAnthropic, StreamOptions{Now: fixedNow})
	}
	b.Run("passthrough/openai/text", func(b *testing.B) { benchStream(b, openAIBenchStream(false), nil) })
	b.Run("passthrough/anthropic/text", func(b *testing.B) { benchStream(b, anthropicBenchStream(false), nil) })
	b.Run("anthropic_to_openai/text", func(b *testing.B) { benchStream(b, anthropicBenchStream(false), toOpenAI) })
	b.Run("anthropic_to_openai/tool_args", func(b *testing.B) { benchStream(b, anthropicBenchStream(true), toOpenAI) })
	b.Run("openai_to_anthropic/text", func(b *testing.B) { benchStream(b, openAIBenchStream(false), toAnthropic) })
	b.Run("openai_to_anthropic/tool_args", func(b *testing.B) { benchStream(b, openAIBenchStream(true), toAnthropic) })
}

func BenchmarkRequest(b *testing.B) {
	for _, c := range []struct {
		name     string
		file     string
		from, to providers.Format
	}{
		{"openai_to_anthropic", "openai_to_anthropic/tool_calls_results", providers.FormatOpenAI, providers.FormatAnthropic},
		{"anthropic_to_openai", "anthropic_to_openai/tool_use_results", providers.FormatAnthropic, providers.FormatOpenAI},
	} {
		body, err := os.ReadFile(filepath.Join("testdata", "request", c.file+".in.json"))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for range b.N {
				if _, _, err := Request(c.from, c.to, body, RequestOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRequestLarge translates an agent-sized conversation: 200
// messages of about 1 KiB each with tool calls and results (~250 KiB).
func BenchmarkRequestLarge(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"model":"m","tools":[{"type":"function","function":{"name":"read","parameters":{"type":"object","properties":{"path":{"type":"string"}}}}}],"messages":[{"role":"system","content":` + jsonString(strings.Repeat("You are a coding agent. ", 200)) + `}`)
	chunk := strings.Repeat(`line of file content with \"quotes\" and tabs\t\n`, 24)
	for i := range 100 {
		id := "call_" + itoa(i)
		sb.WriteString(`,{"role":"assistant","content":"Reading.","tool_calls":[{"id":"` + id + `","type":"function","function":{"name":"read","arguments":"{\"path\":\"f` + itoa(i) + `.go\"}"}}]}`)
		sb.WriteString(`,{"role":"tool","tool_call_id":"` + id + `","content":"` + chunk + `"}`)
	}
	sb.WriteString(`]}`)
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for range b.N {
		if _, _, err := Request(providers.FormatOpenAI, providers.FormatAnthropic, body, RequestOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkResponse(b *testing.B) {
	for _, c := range []struct {
		name     string
		file     string
		from, to providers.Format
	}{
		{"anthropic_to_openai", "anthropic_to_openai/tool_use", providers.FormatAnthropic, providers.FormatOpenAI},
		{"openai_to_anthropic", "openai_to_anthropic/tool_calls", providers.FormatOpenAI, providers.FormatAnthropic},
	} {
		body, err := os.ReadFile(filepath.Join("testdata", "response", c.file+".in.json"))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for range b.N {
				if _, err := Response(c.from, c.to, body, ResponseOptions{Now: fixedNow}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// proseWords feeds the large-body generator: plain English with some
// punctuation, quotes and a non-ASCII word.
var proseWords = strings.Fields(`the gateway reads a request body once, validates it and then forwards
it to the provider; when the formats differ it translates the messages, the tools and the
parameters. "Streaming" responses are translated event by event, and usage is collected on
the way: input tokens, output tokens, cache reads and writes. A café in Zürich serves 42 kinds
of coffee (see section 3.1) — nobody knows why.`)

// prose returns about n bytes of paragraphs drawn from proseWords by seed.
func prose(seed, n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		w := proseWords[(seed*7+i*13+i*i)%len(proseWords)]
		if i > 0 {
			if i%97 == 0 {
				b.WriteString("\n\n")
			} else {
				b.WriteByte(' ')
			}
		}
		b.WriteString(w)
	}
	return b.String()
}

// sourceFile returns about n bytes of Go-like source with tabs, quotes and
// backslashes.
func sourceFile(seed, n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		b.WriteString("func handler" + itoa(seed*1000+i) + "(w http.ResponseWriter, r *http.Request) {\n")
		b.WriteString("\tif err := decode(r.Body, &req); err != nil {\n\t\thttp.Error(w, \"bad request: \\\"\"+err.Error()+\"\\\"\", 400)\n\t\treturn\n\t}\n")
		b.WriteString("\tfmt.Fprintf(w, \"%d items\\n\", len(req.Items)) // count < limit && ok\n}\n\n")
	}
	return b.String()
}

// largeBody returns a realistic ~400 KB agent conversation in format f: a
// long system prompt, eight tools, 53 rounds of user text, assistant text
// with a tool call and a tool result holding a source file, and one user
// message with a 48 KB base64 image. Both formats carry the same content.
func largeBody(f providers.Format) []byte {
	openai := f == providers.FormatOpenAI
	var b strings.Builder
	system := jsonString(prose(1, 6000))
	b.WriteString(`{"model":"m","max_tokens":8192,"stream":true,"temperature":0.7,`)
	if openai {
		b.WriteString(`"stream_options":{"include_usage":true},`)
	}
	b.WriteString(`"tools":[`)
	for i := range 8 {
		if i > 0 {
			b.WriteByte(',')
		}
		name := `"tool_` + itoa(i) + `"`
		desc := jsonString(prose(i+10, 400))
		schema := `{"type":"object","properties":{"path":{"type":"string","description":"File path, relative to the repository root."},"line":{"type":"integer","minimum":1},"flags":{"type":"array","items":{"type":"string","enum":["a","b","c"]}}},"required":["path"],"additionalProperties":false}`
		if openai {
			b.WriteString(`{"type":"function","function":{"name":` + name + `,"description":` + desc + `,"parameters":` + schema + `}}`)
		} else {
			b.WriteString(`{"name":` + name + `,"description":` + desc + `,"input_schema":` + schema + `}`)
		}
	}
	b.WriteString(`],"messages":[`)
	if openai {
		b.WriteString(`{"role":"system","content":` + system + `},`)
	}
	img := strings.Repeat("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg", 600)[:48<<10]
	for i := range 53 {
		if i > 0 {
			b.WriteByte(',')
		}
		user := jsonString(prose(i, 1500))
		id := `"call_` + itoa(i) + `"`
		args := `{"path":"internal/pkg` + itoa(i) + `/handler.go","line":` + itoa(i+1) + `,"flags":["a","c"]}`
		file := jsonString(sourceFile(i, 3300))
		say := jsonString(prose(i+100, 600))
		switch {
		case i == 30 && openai:
			b.WriteString(`{"role":"user","content":[{"type":"text","text":` + user + `},{"type":"image_url","image_url":{"url":"data:image/png;base64,` + img + `"}}]}`)
		case i == 30:
			b.WriteString(`{"role":"user","content":[{"type":"text","text":` + user + `},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"` + img + `"}}]}`)
		case openai:
			b.WriteString(`{"role":"user","content":` + user + `}`)
		default:
			b.WriteString(`{"role":"user","content":[{"type":"text","text":` + user + `}]}`)
		}
		if openai {
			b.WriteString(`,{"role":"assistant","content":` + say + `,"tool_calls":[{"id":` + id + `,"type":"function","function":{"name":"tool_` + itoa(i%8) + `","arguments":` + jsonString(args) + `}}]}`)
			b.WriteString(`,{"role":"tool","tool_call_id":` + id + `,"content":` + file + `}`)
		} else {
			b.WriteString(`,{"role":"assistant","content":[{"type":"text","text":` + say + `},{"type":"tool_use","id":` + id + `,"name":"tool_` + itoa(i%8) + `","input":` + args + `}]}`)
			b.WriteString(`,{"role":"user","content":[{"type":"tool_result","tool_use_id":` + id + `,"content":` + file + `}]}`)
		}
	}
	b.WriteString(`]`)
	if !openai {
		b.WriteString(`,"system":` + system)
	}
	b.WriteString(`}`)
	return []byte(b.String())
}

// BenchmarkRequest400K translates a ~400 KB conversation in each
// direction. The reference cases are what a same-format request costs the
// translator's share: copying the body, and validating it with jsonx.
func BenchmarkRequest400K(b *testing.B) {
	for _, c := range []struct {
		name     string
		from, to providers.Format
	}{
		{"openai_to_anthropic", providers.FormatOpenAI, providers.FormatAnthropic},
		{"anthropic_to_openai", providers.FormatAnthropic, providers.FormatOpenAI},
	} {
		body := largeBody(c.from)
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			defer benchcpu.Report(b)()
			for b.Loop() {
				if _, _, err := Request(c.from, c.to, body, RequestOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	body := largeBody(providers.FormatOpenAI)
	b.Run("reference/copy", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		defer benchcpu.Report(b)()
		for b.Loop() {
			_ = append([]byte(nil), body...)
		}
	})
	b.Run("reference/jsonx_valid", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		defer benchcpu.Report(b)()
		for b.Loop() {
			if err := jsonx.Valid(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
