package tokens

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOpenAIUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want Usage
		ok   bool
	}{
		{name: "chat completion", body: `{"id":"x","usage":{"prompt_tokens":120,"completion_tokens":30,"total_tokens":150,"prompt_tokens_details":{"cached_tokens":100},"completion_tokens_details":{"reasoning_tokens":12}}}`,
			want: Usage{InputTokens: 120, OutputTokens: 30, CacheReadTokens: 100, ReasoningTokens: 12}, ok: true},
		{name: "usage chunk", body: `{"id":"x","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}`,
			want: Usage{InputTokens: 7, OutputTokens: 3}, ok: true},
		{name: "null usage", body: `{"id":"x","choices":[{"delta":{"content":"hi \"usage\": {"}}],"usage":null}`},
		{name: "no usage", body: `{"id":"x"}`},
		{name: "responses completed", body: `{"type":"response.completed","response":{"id":"r","usage":{"input_tokens":50,"input_tokens_details":{"cached_tokens":10},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":2}}}}`,
			want: Usage{InputTokens: 50, OutputTokens: 5, CacheReadTokens: 10, ReasoningTokens: 2}, ok: true},
		{name: "groq x_groq", body: `{"id":"x","choices":[],"x_groq":{"id":"r","usage":{"prompt_tokens":4,"completion_tokens":2}}}`,
			want: Usage{InputTokens: 4, OutputTokens: 2}, ok: true},
		{name: "spaces", body: "{\"usage\" : \n {\"prompt_tokens\": 9 , \"completion_tokens\":1}}", want: Usage{InputTokens: 9, OutputTokens: 1}, ok: true},
		{name: "embeddings", body: `{"object":"list","data":[],"usage":{"prompt_tokens":8,"total_tokens":8}}`, want: Usage{InputTokens: 8}, ok: true},
		{name: "float counts", body: `{"usage":{"prompt_tokens":8.0,"completion_tokens":2e1}}`, want: Usage{InputTokens: 8, OutputTokens: 20}, ok: true},
		{name: "broken json", body: `{"usage":{"prompt_tokens":8`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, ok := OpenAIUsage([]byte(tc.body))
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, u)
		})
	}
}

func TestAnthropicUsage(t *testing.T) {
	u, ok := AnthropicUsage([]byte(`{"id":"msg","type":"message","usage":{"input_tokens":20,"cache_creation_input_tokens":5,"cache_read_input_tokens":100,"output_tokens":7}}`))
	require.True(t, ok)
	require.Equal(t, Usage{InputTokens: 125, OutputTokens: 7, CacheReadTokens: 100, CacheWriteTokens: 5}, u)
	require.Equal(t, int64(20), u.UncachedInputTokens())
	_, ok = AnthropicUsage([]byte(`{"id":"msg"}`))
	require.False(t, ok)
}

func TestStreamTaps(t *testing.T) {
	at := NewAnthropicTap()
	for _, ev := range []string{
		`{"type":"message_start","message":{"id":"m","usage":{"input_tokens":10,"cache_read_input_tokens":4,"output_tokens":1}}}`,
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\"usage\":{"}}`,
		`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}`,
	} {
		at.Observe([]byte(ev))
	}
	u, ok := at.Usage()
	require.True(t, ok)
	require.Equal(t, Usage{InputTokens: 14, OutputTokens: 15, CacheReadTokens: 4}, u, "message_delta is cumulative and keeps input")
	require.True(t, at.OutputReported())

	// A stream cut before message_delta: the input is known, the output
	// count is message_start's placeholder.
	at = NewAnthropicTap()
	at.Observe([]byte(`{"type":"message_start","message":{"id":"m","usage":{"input_tokens":10,"output_tokens":1}}}`))
	at.Observe([]byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}`))
	u, ok = at.Usage()
	require.True(t, ok)
	require.Equal(t, Usage{InputTokens: 10, OutputTokens: 1}, u)
	require.False(t, at.OutputReported())

	// Newer message_delta events repeat the input counts.
	at = NewAnthropicTap()
	at.Observe([]byte(`{"type":"message_start","message":{"usage":{"input_tokens":10,"output_tokens":1}}}`))
	at.Observe([]byte(`{"type":"message_delta","usage":{"input_tokens":12,"cache_creation_input_tokens":3,"output_tokens":9}}`))
	u, _ = at.Usage()
	require.Equal(t, Usage{InputTokens: 15, OutputTokens: 9, CacheWriteTokens: 3}, u)

	ot := NewOpenAITap()
	ot.Observe([]byte(`{"choices":[{"delta":{"content":"x"}}],"usage":null}`))
	_, ok = ot.Usage()
	require.False(t, ok)
	require.False(t, ot.OutputReported())
	ot.Observe([]byte(`{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}`))
	u, ok = ot.Usage()
	require.True(t, ok)
	require.Equal(t, Usage{InputTokens: 3, OutputTokens: 4}, u)
	require.True(t, ot.OutputReported())
}

func FuzzUsage(f *testing.F) {
	f.Add([]byte(`{"usage":{"prompt_tokens":1,"completion_tokens":2}}`))
	f.Add([]byte(`{"message":{"usage":{"input_tokens":1}},"usage":{"output_tokens":3}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, _ := OpenAIUsage(data)
		require.GreaterOrEqual(t, u.InputTokens, int64(0))
		_, _ = AnthropicUsage(data)
		NewAnthropicTap().Observe(data)
		NewOpenAITap().Observe(data)
	})
}

func BenchmarkOpenAIUsageChunk(b *testing.B) {
	d := []byte(`{"id":"chatcmpl-fake-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":25,"completion_tokens":20,"total_tokens":45,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`)
	b.ReportAllocs()
	for b.Loop() {
		OpenAIUsage(d)
	}
}

func BenchmarkObserveContentChunk(b *testing.B) {
	d := []byte(`{"id":"chatcmpl-fake-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" world"},"finish_reason":null}],"usage":null}`)
	tap := NewOpenAITap()
	b.ReportAllocs()
	for b.Loop() {
		tap.Observe(d)
	}
}
