package tokens

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/internal/jsonx"
)

// segments returns the text collected, segment by segment.
func (o *OutputCounter) segments() []string {
	var out []string
	for i, start := range o.starts {
		end := len(o.text)
		if i+1 < len(o.starts) {
			end = o.starts[i+1]
		}
		out = append(out, string(o.text[start:end]))
	}
	return out
}

func q(s string) string { return string(jsonx.AppendQuote(nil, s)) }

// openAIChunk is a chat.completion.chunk with delta as its first choice's
// delta.
func openAIChunk(delta string) string {
	return `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":` + delta + `,"logprobs":null,"finish_reason":null}],"usage":null}`
}

func TestOutputCounterOpenAI(t *testing.T) {
	for _, tc := range []struct {
		name     string
		events   []string
		response string
		want     []string
	}{
		{name: "content", events: []string{
			openAIChunk(`{"role":"assistant","content":""}`),
			openAIChunk(`{"content":"Hello"}`),
			openAIChunk(`{"content":", \"world\"\n\u00e9"}`),
			openAIChunk(`{}`),
			`{"id":"chatcmpl-1","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":4}}`,
			`[DONE]`,
		}, want: []string{"Hello, \"world\"\né"}},
		{name: "reasoning then content", events: []string{
			openAIChunk(`{"reasoning_content":"Let me think."}`),
			openAIChunk(`{"reasoning_content":" Done."}`),
			openAIChunk(`{"content":"42"}`),
		}, want: []string{"Let me think. Done.", "42"}},
		{name: "reasoning and refusal", events: []string{
			openAIChunk(`{"reasoning":"hmm","reasoning_content":null}`),
			openAIChunk(`{"refusal":"I can't"}`),
			openAIChunk(`{"refusal":" help."}`),
		}, want: []string{"hmm", "I can't help."}},
		{name: "tool calls", events: []string{
			openAIChunk(`{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]}`),
			openAIChunk(`{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}`),
			openAIChunk(`{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}`),
			openAIChunk(`{"tool_calls":[{"index":1,"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{}"}}]}`),
		}, want: []string{"get_weather", `{"city":"Paris"}`, "get_time", "{}"}},
		{name: "interleaved choices", events: []string{
			`{"choices":[{"index":0,"delta":{"content":"a"}},{"index":1,"delta":{"content":"b"}}]}`,
			`{"choices":[{"delta":{"content":"c"},"index":1}]}`,
			`{"choices":[{"index":1,"delta":{"content":"d"}}]}`,
		}, want: []string{"a", "b", "c", "d"}}, // index after delta: counted as choice 0
		{name: "content parts", events: []string{
			openAIChunk(`{"content":[{"type":"text","text":"part one"},{"type":"refusal","refusal":"no"},{"type":"image_url"},"x",7]}`),
		}, want: []string{"part one", "no"}},
		{name: "legacy function call and object arguments", events: []string{
			openAIChunk(`{"function_call":{"name":"f","arguments":{"a": [1, 2]}}}`),
		}, want: []string{"f", `{"a": [1, 2]}`}},
		{name: "ignored", events: []string{
			``, `[DONE]`, `: ping`, `{"choices":null}`, `{"choices":[null,1,"x",{"delta":null}]}`, `{"error":{"message":"overloaded"}}`,
			openAIChunk(`{"content":7,"role":"assistant","audio":{"transcript":"t"}}`),
		}},
		{name: "malformed after text", events: []string{
			`{"choices":[{"delta":{"content":"kept"}},{"delta":{"content":"lo`,
		}, want: []string{"kept"}},
		{name: "escaped keys", events: []string{`{"cho\u0069ces":[{"delta":{"c\u006fntent":"yes"}}]}`}, want: []string{"yes"}},
		{name: "response", response: `{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"The answer.","refusal":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"lookup","arguments":"{\"q\":\"x\"}"}}]},"finish_reason":"tool_calls"},{"index":1,"message":{"role":"assistant","content":"Other."}}],"usage":{"prompt_tokens":9,"completion_tokens":12}}`,
			want: []string{"The answer.", "lookup", `{"q":"x"}`, "Other."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOpenAIOutput()
			for _, ev := range tc.events {
				o.Observe([]byte(ev))
			}
			if tc.response != "" {
				o.ObserveResponse([]byte(tc.response))
			}
			require.Equal(t, tc.want, o.segments())
			var zero OutputCounter
			for _, ev := range tc.events {
				zero.Observe([]byte(ev))
			}
			zero.ObserveResponse([]byte(tc.response))
			require.Equal(t, tc.want, zero.segments(), "the zero value collects OpenAI")
		})
	}
}

func TestOutputCounterAnthropic(t *testing.T) {
	for _, tc := range []struct {
		name     string
		events   []string
		response string
		want     []string
	}{
		{name: "stream", events: []string{
			`{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","usage":{"input_tokens":25,"output_tokens":1}}}`,
			`{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}`,
			`{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The user wants"}}`,
			`{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":" the weather."}}`,
			`{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM"}}`,
			`{"type":"content_block_stop","index":0}`,
			`{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}`,
			`{"type":"ping"}`,
			`{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Let me check."}}`,
			`{"type":"content_block_stop","index":1}`,
			`{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}}`,
			`{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}`,
			`{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Par"}}`,
			`{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"is\"}"}}`,
			`{"type":"content_block_stop","index":2}`,
			`{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":60}}`,
			`{"type":"message_stop"}`,
		}, want: []string{"The user wants the weather.", "Let me check.", "get_weather", `{"city": "Paris"}`}},
		{name: "ignored", events: []string{
			``, `[DONE]`, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
			`{"type":"content_block_delta","index":"x","delta":{"type":"text_delta","text":7}}`,
			`{"type":"content_block_start","index":0,"content_block":{"type":"web_search_tool_result","content":[{"type":"web_search_result","title":"t"}]}}`,
			`{"type":"content_block_delta","index":0,"delta":{"type":"citations_delta","citation":{"cited_text":"c"}}}`,
		}},
		{name: "response", response: `{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[{"type":"thinking","thinking":"Hmm.","signature":"sig"},{"type":"text","text":"Checking.","citations":[{"cited_text":"x"}]},{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}},{"type":"redacted_thinking","data":"abc"}],"stop_reason":"tool_use","usage":{"input_tokens":10,"output_tokens":50}}`,
			want: []string{"Hmm.", "Checking.", "get_weather", `{"city":"Paris"}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := NewAnthropicOutput()
			for _, ev := range tc.events {
				o.Observe([]byte(ev))
			}
			if tc.response != "" {
				o.ObserveResponse([]byte(tc.response))
			}
			require.Equal(t, tc.want, o.segments())
		})
	}
}

// streamText splits text into deltas of about size bytes (at character
// boundaries) and returns them as OpenAI chunks or Anthropic events.
func streamText(text string, size int, anthropic bool) []string {
	var events []string
	if anthropic {
		events = append(events, `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","usage":{"input_tokens":25,"output_tokens":1}}}`,
			`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	} else {
		events = append(events, openAIChunk(`{"role":"assistant","content":""}`))
	}
	for len(text) > 0 {
		n := min(size, len(text))
		for n < len(text) && text[n]&0xC0 == 0x80 {
			n++
		}
		if anthropic {
			events = append(events, `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":`+q(text[:n])+`}}`)
		} else {
			events = append(events, openAIChunk(`{"content":`+q(text[:n])+`}`))
		}
		text = text[n:]
	}
	if anthropic {
		events = append(events, `{"type":"content_block_stop","index":0}`,
			`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":20}}`,
			`{"type":"message_stop"}`)
	} else {
		events = append(events, `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`,
			`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":25,"completion_tokens":20,"total_tokens":45}}`,
			`[DONE]`)
	}
	return events
}

func toBytes(events []string) [][]byte {
	out := make([][]byte, len(events))
	for i, ev := range events {
		out[i] = []byte(ev)
	}
	return out
}

func TestOutputCounterTokens(t *testing.T) {
	c := NewCounter()
	texts := corpus(t)
	for _, name := range sortedNames(texts) {
		text := texts[name]
		for _, enc := range []string{EncodingCL100K, EncodingO200K} {
			want, err := c.Count(enc, text)
			require.NoError(t, err)
			for _, anthropic := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/anthropic=%v", name, enc, anthropic), func(t *testing.T) {
					o := &OutputCounter{anthropic: anthropic}
					for _, ev := range streamText(text, 17, anthropic) {
						o.Observe([]byte(ev))
					}
					require.Equal(t, []string{text}, o.segments())
					require.Equal(t, int64(want), o.Tokens(c, enc), "a stream counts as its whole text")
					require.Equal(t, int64(want), o.Tokens(c, enc), "Tokens does not change the counter")
				})
			}
		}
	}
	t.Run("segments count apart", func(t *testing.T) {
		o := NewOpenAIOutput()
		o.ObserveResponse([]byte(`{"choices":[{"message":{"content":"Hello there","tool_calls":[{"function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}}]}`))
		var want int64
		for _, s := range []string{"Hello there", "get_weather", `{"city":"Paris"}`} {
			n, err := c.Count(EncodingO200K, s)
			require.NoError(t, err)
			want += int64(n)
		}
		require.Equal(t, want, o.Tokens(c, EncodingO200K))
	})
	t.Run("empty and unknown encoding", func(t *testing.T) {
		o := NewAnthropicOutput()
		require.Zero(t, o.Tokens(c, EncodingO200K))
		o.Observe([]byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hello world"}}`))
		require.Equal(t, QuickCount("p99k", []byte("hello world")), o.Tokens(c, "p99k"))
	})
}

// TestOutputCounterSpill: text beyond the bound is not kept but counted as
// it comes, in the right encoding.
func TestOutputCounterSpill(t *testing.T) {
	c := NewCounter()
	text := corpus(t)["en_prose"] + corpus(t)["ru"] + corpus(t)["code_go"]
	for _, enc := range []string{EncodingCL100K, EncodingO200K} {
		t.Run(enc, func(t *testing.T) {
			o := &OutputCounter{max: 2000}
			for _, ev := range streamText(text, 40, false) {
				o.Observe([]byte(ev))
			}
			require.True(t, o.spilled)
			require.LessOrEqual(t, len(o.text), 2000)
			want, err := c.Count(enc, text)
			require.NoError(t, err)
			require.InEpsilon(t, want, o.Tokens(c, enc), 0.05)

			// Invalid UTF-8 decodes longer than its literal: it spills too.
			o = &OutputCounter{max: 10}
			o.Observe([]byte(openAIChunk("{\"content\":\"\xff\xff\xff\xff\xff\xff\"}")))
			require.Empty(t, o.text)
			require.True(t, o.spilled)
			require.Positive(t, o.Tokens(c, enc))
		})
	}
}

func TestOutputCounterReset(t *testing.T) {
	c := NewCounter()
	events := toBytes(streamText(corpus(t)["en_chat"], 23, true))
	o := NewAnthropicOutput()
	for _, ev := range events {
		o.Observe(ev)
	}
	first := o.Tokens(c, EncodingO200K)
	o.Reset()
	require.Zero(t, o.Tokens(c, EncodingO200K))
	allocs := testing.AllocsPerRun(20, func() {
		o.Reset()
		for _, ev := range events {
			o.Observe(ev)
		}
	})
	require.Zero(t, allocs, "a reused counter does not allocate")
	require.Equal(t, first, o.Tokens(c, EncodingO200K))
	require.True(t, o.anthropic, "Reset keeps the format")
}

func FuzzOutputCounter(f *testing.F) {
	for _, ev := range streamText("Hello, wörld! 🙂", 3, false) {
		f.Add([]byte(ev))
	}
	for _, ev := range streamText("Hello, wörld! 🙂", 3, true) {
		f.Add([]byte(ev))
	}
	f.Add([]byte(`{"choices":[{"message":{"content":[{"text":"a"}],"tool_calls":[{"function":{"name":"f","arguments":{"a":1}}}]}}]}`))
	f.Add([]byte(`{"content":[{"type":"tool_use","name":"f","input":{"a":1}}]}`))
	c := NewCounter()
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, o := range []*OutputCounter{NewOpenAIOutput(), NewAnthropicOutput(), {max: 8}, {anthropic: true, max: 8}} {
			o.Observe(data)
			o.ObserveResponse(data)
			o.Observe(data)
			if n := o.Tokens(c, EncodingO200K); n < 0 {
				t.Fatalf("negative count %d", n)
			}
			// Three reads of the data, each decoding at most three bytes
			// (U+FFFD) for one.
			if len(o.text) > 9*len(data) {
				t.Fatalf("collected %d bytes from %d", len(o.text), len(data))
			}
		}
	})
}

func BenchmarkOutputCounter(b *testing.B) {
	text := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 12)
	for _, anthropic := range []bool{false, true} {
		events := toBytes(streamText(text, len(text)/17+1, anthropic))
		name := "openai"
		if anthropic {
			name = "anthropic"
		}
		var size int
		for _, ev := range events {
			size += len(ev)
		}
		b.Run(fmt.Sprintf("%s_%d_events", name, len(events)), func(b *testing.B) {
			o := &OutputCounter{anthropic: anthropic}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				o.Reset()
				for _, ev := range events {
					o.Observe(ev)
				}
			}
		})
	}
	b.Run("tokens_o200k", func(b *testing.B) {
		o := NewOpenAIOutput()
		for _, ev := range streamText(text, 32, false) {
			o.Observe([]byte(ev))
		}
		c := NewCounter()
		b.ReportAllocs()
		for b.Loop() {
			o.Tokens(c, EncodingO200K)
		}
	})
}
