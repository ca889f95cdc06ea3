package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/llmgate/gateway/providers"
)

// echo is a providers.Provider written by hand: it answers OpenAI chat
// completions itself by repeating the last user message, as JSON or as a
// stream. It needs no base URL and no key. Like every Provider it is a thin
// transport: the gateway parses, fails over, meters and translates (an
// Anthropic-format client can use it too).
type echo struct{}

var _ providers.Provider = echo{}

// Name implements providers.Provider.
func (echo) Name() string { return "echo" }

// Surfaces implements providers.Provider.
func (echo) Surfaces() []providers.Surface {
	return []providers.Surface{providers.SurfaceChatCompletions}
}

// Do implements providers.Provider.
func (echo) Do(ctx context.Context, req *providers.Request, _ providers.Key) (*providers.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("echo: %w: %w", providers.ErrNotSent, err)
	}
	var in struct {
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(req.Body, &in); err != nil {
		return errorResponse(http.StatusBadRequest, "invalid JSON: "+err.Error()), nil
	}
	text := "(nothing to repeat)"
	for _, m := range in.Messages {
		var s string
		if m.Role == "user" && json.Unmarshal(m.Content, &s) == nil {
			text = s
		}
	}
	reply, _ := json.Marshal("You said: " + text)
	usage := `{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}`
	created := time.Now().Unix()
	if !req.Stream {
		body := fmt.Sprintf(`{"id":"chatcmpl-echo","object":"chat.completion","created":%d,"model":%q,`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":%s},"finish_reason":"stop"}],"usage":%s}`,
			created, req.Model, reply, usage)
		return &providers.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(bytes.NewBufferString(body))}, nil
	}
	chunk := func(delta, finish string) string {
		return fmt.Sprintf("data: {\"id\":\"chatcmpl-echo\",\"object\":\"chat.completion.chunk\",\"created\":%d,\"model\":%q,"+
			"\"choices\":[{\"index\":0,\"delta\":%s,\"finish_reason\":%s}]}\n\n", created, req.Model, delta, finish)
	}
	var b bytes.Buffer
	b.WriteString(chunk(`{"role":"assistant","content":""}`, "null"))
	b.WriteString(chunk(`{"content":`+string(reply)+`}`, "null"))
	b.WriteString(chunk(`{}`, `"stop"`))
	fmt.Fprintf(&b, "data: {\"id\":\"chatcmpl-echo\",\"object\":\"chat.completion.chunk\",\"created\":%d,\"model\":%q,\"choices\":[],\"usage\":%s}\n\n", created, req.Model, usage)
	b.WriteString("data: [DONE]\n\n")
	return &providers.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"text/event-stream"}},
		Body: io.NopCloser(&b)}, nil
}

func errorResponse(status int, msg string) *providers.Response {
	body, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error"}})
	return &providers.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(body))}
}

// logged wraps another Provider and logs every upstream call: its model,
// key ID (never the key), status and time to the response headers. The
// same shape adds metrics, tracing or request signing to any transport.
type logged struct {
	providers.Provider
	logger *slog.Logger
}

// Do implements providers.Provider.
func (l logged) Do(ctx context.Context, req *providers.Request, key providers.Key) (*providers.Response, error) {
	start := time.Now()
	resp, err := l.Provider.Do(ctx, req, key)
	attrs := []any{"provider", l.Name(), "model", req.Model, "key_id", key.ID, "ttfb", time.Since(start)}
	if err != nil {
		l.logger.WarnContext(ctx, "upstream call failed", append(attrs, "err", err)...)
		return nil, err
	}
	l.logger.InfoContext(ctx, "upstream call", append(attrs, "status", resp.StatusCode)...)
	return resp, nil
}
