package wire

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// The shapes must marshal the fields clients require even when empty, and
// omit the optional ones.
func TestMarshalledShapes(t *testing.T) {
	empty := ""
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"choice keeps null logprobs and content", ChatChoice{Message: ChatResponseMessage{Role: "assistant"}, FinishReason: "stop"},
			`{"index":0,"message":{"role":"assistant","content":null,"refusal":null},"logprobs":null,"finish_reason":"stop"}`},
		{"thinking block keeps an empty signature", ContentBlock{Type: "thinking", Thinking: &empty, Signature: &empty},
			`{"type":"thinking","thinking":"","signature":""}`},
		{"tool_use block", ContentBlock{Type: "tool_use", ID: "t", Name: "f", Input: json.RawMessage(`{}`)},
			`{"type":"tool_use","id":"t","name":"f","input":{}}`},
		{"message keeps null stop fields", MessageResponse{ID: "m", Type: "message", Role: "assistant", Content: []ContentBlock{}},
			`{"id":"m","type":"message","role":"assistant","model":"","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}`},
		{"usage omits zero cache writes", ChatUsage{PromptTokens: 3, CompletionTokens: 2, TotalTokens: 5, PromptTokensDetails: &PromptTokensDetails{CachedTokens: 1}},
			`{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"prompt_tokens_details":{"cached_tokens":1}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.v)
			require.NoError(t, err)
			require.Equal(t, tt.want, string(b))
		})
	}
}

func TestStreamEventDecodesEveryEventType(t *testing.T) {
	var e StreamEvent
	require.NoError(t, json.Unmarshal([]byte(`{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":7}}`), &e))
	require.Equal(t, "tool_use", *e.Delta.StopReason)
	require.Nil(t, e.Usage.InputTokens)
	require.EqualValues(t, 7, *e.Usage.OutputTokens)
	e = StreamEvent{}
	require.NoError(t, json.Unmarshal([]byte(`{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}}`), &e))
	require.EqualValues(t, 2, e.Index)
	require.Equal(t, "t", e.ContentBlock.ID)
}
