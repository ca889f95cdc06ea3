package tokens_test

import (
	"fmt"

	"github.com/llmgate/gateway/tokens"
)

// A credit hold is sized from UpperBound before the upstream call; the
// exact count is taken only when a limit needs it.
func ExampleUpperBound() {
	body := []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":[` +
		`{"type":"text","text":"What is in this picture?"},` +
		`{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]}`)
	fmt.Println("bytes:", len(body))
	fmt.Println("upper bound:", tokens.UpperBound(body))
	fmt.Println("exact text count:", tokens.NewCounter().EstimateOpenAIChat(tokens.EncodingO200K, body))
	// Output:
	// bytes: 180
	// upper bound: 4183
	// exact text count: 12
}

// A stream that stops early reports no output count; the text delivered
// is counted instead.
func ExampleOutputCounter() {
	tap := tokens.NewAnthropicTap()
	out := tokens.NewAnthropicOutput()
	for _, data := range []string{
		`{"type":"message_start","message":{"usage":{"input_tokens":12,"output_tokens":1}}}`,
		`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"The quick brown fox"}}`,
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" jumps over"}}`,
		// ... the connection drops here.
	} {
		tap.Observe([]byte(data))
		out.Observe([]byte(data))
	}
	u, _ := tap.Usage()
	if !tap.OutputReported() {
		u.OutputTokens = max(u.OutputTokens, out.Tokens(tokens.NewCounter(), tokens.EncodingFor("claude-sonnet-4-5")))
	}
	fmt.Printf("input %d, output %d\n", u.InputTokens, u.OutputTokens)
	// Output:
	// input 12, output 6
}

func ExampleEncodingFor() {
	for _, model := range []string{"gpt-5-mini", "openai/gpt-oss-20b", "gpt-3.5-turbo", "claude-opus-4-1"} {
		fmt.Println(model, tokens.EncodingFor(model))
	}
	// Output:
	// gpt-5-mini o200k_base
	// openai/gpt-oss-20b o200k_base
	// gpt-3.5-turbo cl100k_base
	// claude-opus-4-1 cl100k_base
}
