package strategy

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/metrics"
)

// testStats is the live metrics of gpt-4o at openai in the test universe.
var testStats = &metrics.Stats{
	Start:     time.Unix(1_700_000_000, 0),
	End:       time.Unix(1_700_000_300, 0),
	Requests:  10,
	InFlight:  2,
	Latency:   metrics.Latency{UpstreamAvg: 1200 * time.Millisecond, UpstreamP95: 3 * time.Second, TTFTAvg: 300 * time.Millisecond, TTFTP95: 900 * time.Millisecond},
	ErrorRate: metrics.ErrorRate{Total: 0.25, Timeout: 0.05, RateLimit: 0.1, Client: 0.04, Server: 0.06},
}

// testModels returns a small universe: openai (gpt-4o, gpt-4o-mini,
// gpt-5-preview unknown), anthropic (claude-sonnet-4), azure (gpt-4o) and a
// custom local provider (llama3:8b, unpriced but custom).
func testModels() []*Model {
	return []*Model{
		{
			ID: "gpt-4o", Aliases: []string{"gpt-4o-2024-08-06"}, ProviderID: "openai", ProviderAliases: []string{"oai"},
			AuthorID: "openai", DisplayName: "GPT-4o", Known: true,
			InputModalities: []string{"text", "image"}, OutputModalities: []string{"text"}, Features: []string{"tools", "streaming"},
			ContextWindow: 128_000, MaxOutputTokens: 16_384,
			Pricing: catalog.Pricing{Input: 2_500_000, Output: 10_000_000, CacheRead: 1_250_000},
			Stats:   func() *metrics.Stats { return testStats },
		},
		{
			ID: "gpt-4o-mini", ProviderID: "openai", ProviderAliases: []string{"oai"}, AuthorID: "openai", Known: true,
			ContextWindow: 128_000, Pricing: catalog.Pricing{Input: 150_000, Output: 600_000, CacheRead: 75_000},
		},
		{ID: "gpt-5-preview", ProviderID: "openai", ProviderAliases: []string{"oai"}, AuthorID: "openai"},
		{
			ID: "claude-sonnet-4", Aliases: []string{"claude-sonnet-4-0"}, ProviderID: "anthropic", AuthorID: "anthropic", Known: true,
			ContextWindow: 200_000, Pricing: catalog.Pricing{Input: 3_000_000, Output: 15_000_000, CacheRead: 300_000, CacheWrite: 3_750_000},
		},
		{ID: "gpt-4o", ProviderID: "azure", AuthorID: "openai", Known: true, ContextWindow: 128_000, Pricing: catalog.Pricing{Input: 2_500_000, Output: 10_000_000}},
		{
			ID: "llama3:8b", ProviderID: "local", AuthorID: "meta", Known: true, Custom: true, ContextWindow: 8192,
			Metadata: map[string]any{"tier": "free", "region": map[string]any{"name": "eu", "zone": 2}},
		},
	}
}

// names lists models as "provider:id".
func names(ms []*Model) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.ProviderID+":"+m.ID)
	}
	return out
}

// evalModels compiles and evaluates one model expression.
func evalModels(t *testing.T, u *Universe, req *Request, expr string, o Options) ([]*Model, error) {
	t.Helper()
	p, err := Compile(Models, []string{expr}, o)
	require.NoError(t, err)
	return p.EvalModels(context.Background(), 0, u, req)
}

// testRequest is a streamed chat request with a few headers.
func testRequest() *Request {
	h := http.Header{}
	h.Set("X-Tier", "gold")
	h.Add("Accept", "text/event-stream")
	h.Add("Accept", "application/json")
	return &Request{
		Headers: h, Stream: true, API: "chat_completions", Models: []string{"gpt-4o", "claude-sonnet-4"},
		InputTokens: func() int { return 1234 }, KeyID: "k_1", KeyMetadata: map[string]any{"team": "ml"},
	}
}

// seqRand returns a deterministic Rand that always picks the last index.
func lastRand(n int) int { return n - 1 }

func errorsIsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
