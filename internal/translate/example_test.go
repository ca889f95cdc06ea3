package translate_test

import (
	"fmt"
	"time"

	"github.com/llmgate/gateway/internal/translate"
	"github.com/llmgate/gateway/providers"
)

func ExampleRequest() {
	body := []byte(`{"model":"claude","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"seed":7,"stop":"END"}`)
	out, removed, err := translate.Request(providers.FormatOpenAI, providers.FormatAnthropic, body,
		translate.RequestOptions{Model: "claude-sonnet-4-5", MaxOutputTokens: 64000})
	fmt.Println(string(out), removed, err)

	_, _, err = translate.Request(providers.FormatOpenAI, providers.FormatAnthropic, []byte(`{"messages":[],"n":3}`), translate.RequestOptions{})
	fmt.Println(err)
	// Output:
	// {"model":"claude-sonnet-4-5","max_tokens":64000,"system":"Be brief.","messages":[{"role":"user","content":"Hi"}],"stop_sequences":["END"]} [seed] <nil>
	// translate: n: this model returns one choice; n > 1 cannot be translated
}

func ExampleStream() {
	s := translate.NewStream(providers.FormatAnthropic, providers.FormatOpenAI, translate.StreamOptions{
		Now: func() time.Time { return time.Unix(1700000000, 0) },
	})
	var out []byte
	for _, data := range []string{
		`{"type":"message_start","message":{"id":"msg_1","model":"claude-sonnet-4-5","usage":{"input_tokens":3}}}`,
		`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi!"}}`,
		`{"type":"content_block_stop","index":0}`,
		`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}`,
		`{"type":"message_stop"}`,
	} {
		out, _ = s.Event(out, nil, []byte(data))
	}
	out = s.Finish(out, s.Done()) // nothing more is owed
	fmt.Print(string(out))
	// Output:
	// data: {"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1700000000,"model":"claude-sonnet-4-5","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}
	//
	// data: {"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1700000000,"model":"claude-sonnet-4-5","choices":[{"index":0,"delta":{"content":"Hi!"},"logprobs":null,"finish_reason":null}]}
	//
	// data: {"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1700000000,"model":"claude-sonnet-4-5","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}
	//
	// data: [DONE]
}
