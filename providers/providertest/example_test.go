package providertest_test

import (
	"context"
	"fmt"
	"io"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/openai"
	"github.com/llmgate/gateway/providers/providertest"
)

// A scripted upstream: the first call is rate limited, the second answers
// with a completion; later calls would get automatic replies.
func ExampleServer() {
	s := providertest.NewServer(providers.FormatOpenAI)
	defer s.Close()
	s.Enqueue(
		providertest.RateLimited(providers.FormatOpenAI, "2"),
		providertest.OpenAIChat("gpt-4o-mini", "Hi!", providertest.Usage{Input: 9, Output: 2}),
	)

	p, err := openai.New(openai.Config{Name: "openai", BaseURL: s.URL})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.CloseIdleConnections()
	req := &providers.Request{
		Surface: providers.SurfaceChatCompletions,
		Model:   "gpt-4o-mini",
		Body:    []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}`),
	}
	for range 2 {
		resp, err := p.Do(context.Background(), req, providers.Key{ID: "key-1", Secret: "sk-example"})
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		fmt.Println(resp.StatusCode, resp.Header.Get("Retry-After"), len(body) > 0)
	}
	rec := s.Requests()[1]
	fmt.Println(rec.Method, rec.Path, rec.Header.Get("Authorization"))
	// Output:
	// 429 2 true
	// 200  true
	// POST /v1/chat/completions Bearer sk-example
}
