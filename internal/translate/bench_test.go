package translate

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
