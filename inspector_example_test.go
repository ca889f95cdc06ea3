package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
	"github.com/llmgate/gateway/redaction"
)

// captureList is an in-memory gateway.InspectorSink: it keeps every
// capture, for a test or an admin page to read.
type captureList struct {
	mu   sync.Mutex
	list []*gateway.Capture
}

// Capture keeps c; it is called once per request and never blocks for
// long.
func (l *captureList) Capture(_ context.Context, c *gateway.Capture) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.list = append(l.list, c)
}

// Inspect traffic: keep the start of every request and response body, as
// redacted for the upstream and the client, in a sink of one's own.
func ExampleWithInspector() {
	upstream := providertest.NewServer(providers.FormatOpenAI) // stands in for api.openai.com
	defer upstream.Close()
	upstream.Enqueue(providertest.OpenAIChat("gpt-4o-mini", "I wrote to ops@example.com for you.", providertest.Usage{Input: 12, Output: 9}))

	captures := &captureList{}
	gw, err := gateway.New(
		gateway.WithProvider(gateway.ProviderConfig{ID: "openai", BaseURL: upstream.URL, Keys: []gateway.ProviderKey{{Value: "sk-your-key"}}}),
		gateway.WithRedaction([]redaction.Rule{{Preset: redaction.PresetEmail}}, redaction.AcrossChunks),
		gateway.WithInspector(captures, gateway.InspectorOptions{MaxBytes: 4 << 10}))
	if err != nil {
		log.Fatal(err)
	}
	defer gw.Close()

	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Ask jane@example.org to reply to ops"}]}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	gw.ServeHTTP(rec, req) // the capture is handed over before ServeHTTP returns

	c := captures.list[0]
	fmt.Println(rec.Code, "request id matches:", c.RequestID == rec.Header().Get(gateway.HeaderRequestID), "stream:", c.Stream)
	fmt.Println("request: ", string(c.Request))
	var resp struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(c.Response, &resp); err != nil {
		log.Fatal(err)
	}
	fmt.Println("response:", resp.Choices[0].Message.Content, "truncated:", c.ResponseTruncated)
	// Output:
	// 200 request id matches: true stream: false
	// request:  {"model":"gpt-4o-mini","messages":[{"role":"user","content":"Ask [EMAIL] to reply to ops"}]}
	// response: I wrote to [EMAIL] for you. truncated: false
}
