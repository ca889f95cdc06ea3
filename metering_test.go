package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	anthropicsdk "github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	openaisdk "github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/keys"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

// The test models' prices, in micro-USD per million tokens.
var (
	pricedChat = catalog.Model{ID: "priced-chat", MaxOutputTokens: 1000, ContextWindow: 100_000,
		Pricing: catalog.Pricing{Input: 2_000_000, Output: 8_000_000, CacheRead: 500_000}}
	pricedClaude = catalog.Model{ID: "priced-claude", MaxOutputTokens: 2000, ContextWindow: 200_000,
		Pricing: catalog.Pricing{Input: 3_000_000, Output: 15_000_000, CacheRead: 300_000, CacheWrite: 3_750_000}}
	unpricedChat = catalog.Model{ID: "free-chat", MaxOutputTokens: 1000}
	unboundChat  = catalog.Model{ID: "unbound-chat", Pricing: catalog.Pricing{Input: 1_000_000, Output: 1_000_000}}
)

// creditEnv is a gateway with gateway keys and credits in memory stores,
// in front of a fake OpenAI and a fake Anthropic with priced models.
type creditEnv struct {
	*testEnv
	keys   *keys.MemoryStore
	ledger *credits.Memory
}

func newCreditEnv(t *testing.T, mo MeteringOptions, opts ...Option) *creditEnv {
	t.Helper()
	e := &creditEnv{testEnv: &testEnv{oa: providertest.Start(t, providers.FormatOpenAI), an: providertest.Start(t, providers.FormatAnthropic),
		events: &eventLog{ch: make(chan *Event, 64)}}, keys: keys.NewMemoryStore(), ledger: credits.NewMemory(credits.MemoryOptions{})}
	sealer, err := keys.NewSealer(keys.KEK{ID: "kek-1", Key: [32]byte{7}})
	require.NoError(t, err)
	base := []Option{
		WithProvider(ProviderConfig{ID: "openai", BaseURL: e.oa.URL, Keys: []ProviderKey{{Value: "sk-oa-1"}},
			Models: []catalog.Model{pricedChat, unpricedChat, unboundChat}}),
		WithProvider(ProviderConfig{ID: "anthropic", BaseURL: e.an.URL, Keys: []ProviderKey{{Value: "sk-an-1"}},
			Models: []catalog.Model{pricedClaude}}),
		WithEventSink(e.events),
		WithKeyStore(e.keys, KeyStoreOptions{Endpoint: "gw", Sealer: sealer}),
		WithMetering(e.ledger, mo),
	}
	gw, err := New(append(base, opts...)...)
	require.NoError(t, err)
	e.gw = gw
	e.srv = httptest.NewServer(gw)
	t.Cleanup(func() {
		e.srv.Close()
		_ = gw.Close()
	})
	return e
}

// account creates a gateway key of account acct with dollars of credits
// (none when 0) and returns its token.
func (e *creditEnv) account(t *testing.T, acct string, dollars credits.Amount) (keys.Key, string) {
	t.Helper()
	k, token, err := keys.NewKey("gw")
	require.NoError(t, err)
	k.Account = acct
	k, err = e.keys.Create(context.Background(), k)
	require.NoError(t, err)
	if dollars > 0 {
		_, err = e.ledger.Purchase(context.Background(), credits.Purchase{ID: "p-" + acct, Account: acct, Amount: dollars})
		require.NoError(t, err)
	}
	return k, token
}

func (e *creditEnv) balance(t *testing.T, acct string) credits.Balance {
	t.Helper()
	b, err := e.ledger.Balance(context.Background(), acct)
	require.NoError(t, err)
	require.Equal(t, b.Purchased, b.Available+b.Held+b.Spent+b.Expired, "the accounting identity")
	return b
}

func (e *creditEnv) usage(t *testing.T, requestID string) credits.UsageRecord {
	t.Helper()
	page, err := e.ledger.Usage(context.Background(), credits.UsageQuery{})
	require.NoError(t, err)
	for _, r := range page.Records {
		if r.RequestID == requestID {
			return r
		}
	}
	t.Fatalf("no usage record for %s", requestID)
	return credits.UsageRecord{}
}

// The fee of the tests: 5% of the model cost plus $0.05 per million tokens.
var testFees = MeteringOptions{Credits: true, FeeBasisPoints: 500, FeePerMillionTokens: 50_000}

// TestCreditsCost checks what requests are charged against prices computed
// by hand, for both formats, streamed and not, translated, with cached
// tokens.
func TestCreditsCost(t *testing.T) {
	// priced-chat, 800 uncached + 200 cached prompt tokens, 500 output:
	// 800×$2 + 200×$0.50 + 500×$8 per million = 5700 µ$; fee 5% = 285,
	// 1500 tokens × $0.05/M = 75.
	const chatCharge = 5700 + 285 + 75
	chatUsage := providertest.Usage{Input: 800, CacheRead: 200, Output: 500}
	// priced-claude, 600 uncached + 300 cache reads + 100 cache writes,
	// 400 output: 600×$3 + 300×$0.30 + 100×$3.75 + 400×$15 per million =
	// 8265 µ$; fee 5% = 413.25 → 414, 1400 × $0.05/M = 70.
	const claudeCharge = 8265 + 414 + 70
	claudeUsage := providertest.Usage{Input: 600, CacheRead: 300, CacheWrite: 100, Output: 400}

	for _, tc := range []struct {
		name    string
		path    string
		body    string
		step    func(e *creditEnv)
		charge  credits.Amount
		billed  credits.Tokens
		servedB string
	}{
		{name: "openai json", path: "/v1/chat/completions", body: chatBody("priced-chat"),
			step:   func(e *creditEnv) { e.oa.Enqueue(providertest.OpenAIChat("priced-chat", "Hello", chatUsage)) },
			charge: chatCharge, billed: credits.Tokens{Input: 1000, CacheRead: 200, Output: 500}},
		{name: "openai stream", path: "/v1/chat/completions", body: chatBody("priced-chat", `"stream":true`),
			step: func(e *creditEnv) {
				e.oa.Enqueue(providertest.OpenAIChatStream("priced-chat", []string{"Hel", "lo"}, chatUsage, true))
			},
			charge: chatCharge, billed: credits.Tokens{Input: 1000, CacheRead: 200, Output: 500}},
		{name: "anthropic json", path: "/v1/messages", body: messagesBody("priced-claude"),
			step:   func(e *creditEnv) { e.an.Enqueue(providertest.AnthropicMessage("priced-claude", "Hello", claudeUsage)) },
			charge: claudeCharge, billed: credits.Tokens{Input: 1000, CacheRead: 300, CacheWrite: 100, Output: 400}},
		{name: "anthropic stream", path: "/v1/messages", body: messagesBody("priced-claude", `"stream":true`),
			step: func(e *creditEnv) {
				e.an.Enqueue(providertest.AnthropicStream("priced-claude", []string{"Hel", "lo"}, claudeUsage))
			},
			charge: claudeCharge, billed: credits.Tokens{Input: 1000, CacheRead: 300, CacheWrite: 100, Output: 400}},
		{name: "openai client, anthropic model, stream", path: "/v1/chat/completions", body: chatBody("anthropic:priced-claude", `"stream":true`),
			step: func(e *creditEnv) {
				e.an.Enqueue(providertest.AnthropicStream("priced-claude", []string{"Hel", "lo"}, claudeUsage))
			},
			charge: claudeCharge, billed: credits.Tokens{Input: 1000, CacheRead: 300, CacheWrite: 100, Output: 400}},
		{name: "anthropic client, openai model", path: "/v1/messages", body: messagesBody("openai:priced-chat"),
			step:   func(e *creditEnv) { e.oa.Enqueue(providertest.OpenAIChat("priced-chat", "Hello", chatUsage)) },
			charge: chatCharge, billed: credits.Tokens{Input: 1000, CacheRead: 200, Output: 500}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newCreditEnv(t, testFees)
			k, token := e.account(t, "acme", 10*credits.Dollar)
			tc.step(e)
			resp, body := e.post(t, tc.path, tc.body, "Authorization", "Bearer "+token)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			b := e.balance(t, "acme")
			require.Equal(t, tc.charge, b.Spent)
			require.Zero(t, b.Held, "the hold ended")
			require.Equal(t, 10*credits.Dollar-tc.charge, b.Available)
			rec := e.usage(t, resp.Header.Get(HeaderRequestID))
			require.True(t, rec.Paid)
			require.True(t, rec.ReportedKnown)
			require.Equal(t, tc.billed, rec.Reported)
			require.Equal(t, tc.charge, rec.Cost+rec.Fee)
			require.Equal(t, k.ID, rec.KeyID)
			require.Equal(t, "acme", rec.Account)
			require.Equal(t, credits.SourceConfigured, rec.KeySource)
			require.Equal(t, http.StatusOK, rec.Status)
			require.Len(t, rec.Attempts, 1)
			require.True(t, rec.Attempts[0].Served)
		})
	}
}

// TestCreditsWithSDKs runs the official SDKs against a credit-paid
// gateway: a paid request, then an account without credits refused with
// 403 credits_exhausted in each SDK's error type, before any upstream call.
func TestCreditsWithSDKs(t *testing.T) {
	e := newCreditEnv(t, testFees)
	_, rich := e.account(t, "rich", 5*credits.Dollar)
	_, poor := e.account(t, "poor", 0)

	oc := openaisdk.NewClient(ooption.WithBaseURL(e.srv.URL+"/v1/"), ooption.WithAPIKey(rich), ooption.WithMaxRetries(0))
	_, err := oc.Chat.Completions.New(context.Background(), openaisdk.ChatCompletionNewParams{
		Model: "priced-chat", Messages: []openaisdk.ChatCompletionMessageParamUnion{openaisdk.UserMessage("Hi")}})
	require.NoError(t, err)
	require.Positive(t, e.balance(t, "rich").Spent)

	upstreamCalls := e.oa.Count() + e.an.Count()
	op := openaisdk.NewClient(ooption.WithBaseURL(e.srv.URL+"/v1/"), ooption.WithAPIKey(poor), ooption.WithMaxRetries(0))
	_, err = op.Chat.Completions.New(context.Background(), openaisdk.ChatCompletionNewParams{
		Model: "priced-chat", Messages: []openaisdk.ChatCompletionMessageParamUnion{openaisdk.UserMessage("Hi")}})
	var oe *openaisdk.Error
	require.ErrorAs(t, err, &oe)
	require.Equal(t, http.StatusForbidden, oe.StatusCode)
	require.Equal(t, "credits_exhausted", oe.Code)
	require.Contains(t, oe.Message, `account "poor" has no credits`)

	ap := anthropicsdk.NewClient(aoption.WithBaseURL(e.srv.URL), aoption.WithAPIKey(poor), aoption.WithMaxRetries(0))
	stream := ap.Messages.NewStreaming(context.Background(), anthropicsdk.MessageNewParams{Model: "priced-claude", MaxTokens: 64,
		Messages: []anthropicsdk.MessageParam{anthropicsdk.NewUserMessage(anthropicsdk.NewTextBlock("Hi"))}})
	for stream.Next() {
		t.Fatal("no event may arrive")
	}
	var ae *anthropicsdk.Error
	require.ErrorAs(t, stream.Err(), &ae)
	require.Equal(t, http.StatusForbidden, ae.StatusCode)
	require.Contains(t, ae.RawJSON(), "credits_exhausted")
	require.Equal(t, upstreamCalls, e.oa.Count()+e.an.Count(), "nothing went upstream")
}

// TestCreditsLowerMaxTokens: an account that cannot pay the worst case
// gets its answer's maximum lowered to what it can pay, and is told so;
// one that cannot pay the prompt and a minimum answer is refused.
func TestCreditsLowerMaxTokens(t *testing.T) {
	e := newCreditEnv(t, MeteringOptions{Credits: true})
	_, token := e.account(t, "acme", 5*credits.Dollar)
	// Leave $0.001 available: 1000 µ$ pays for the prompt at $2/M and
	// about (1000 − prompt)/8 output tokens at $8/M, far fewer than the
	// 1000 asked for.
	_, err := e.ledger.Reserve(context.Background(), credits.Reservation{ID: "other", Account: "acme",
		Min: 5*credits.Dollar - 1000, Max: 5*credits.Dollar - 1000, TTL: time.Hour})
	require.NoError(t, err)

	resp, body := e.post(t, "/v1/chat/completions", chatBody("priced-chat", `"max_tokens":1000`), "Authorization", "Bearer "+token)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	h := resp.Header.Get(HeaderMaxOutputTokens)
	require.True(t, strings.HasSuffix(h, "; reason=credits"), h)
	n, err := strconv.Atoi(strings.TrimSuffix(h, "; reason=credits"))
	require.NoError(t, err)
	require.Less(t, n, 125)
	require.Greater(t, n, 16)
	var sent struct {
		MaxTokens int `json:"max_tokens"`
	}
	require.NoError(t, json.Unmarshal(e.oa.Requests()[0].Body, &sent))
	require.Equal(t, n, sent.MaxTokens, "the upstream got the lowered maximum")

	// The prompt's exact count (a few tokens) plus n outputs fit in $0.001.
	prompt := e.gw.counter.EstimateOpenAIChat(catalog.EncodingO200K, []byte(chatBody("priced-chat", `"max_tokens":1000`)))
	require.LessOrEqual(t, (prompt*2_000_000+int64(n)*8_000_000+999_999)/1_000_000, int64(1000))

	// Now the rest is spent: nothing is left for the minimum.
	b := e.balance(t, "acme")
	_, err = e.ledger.Reserve(context.Background(), credits.Reservation{ID: "rest", Account: "acme", Min: b.Available, Max: b.Available, TTL: time.Hour})
	require.NoError(t, err)
	resp, body = e.post(t, "/v1/messages", messagesBody("openai:priced-chat"), "Authorization", "Bearer "+token)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, string(body))
	ae := decodeAnthropicError(t, body)
	require.Equal(t, "permission_error", ae.Error.Type)
	require.Contains(t, ae.Error.Message, "$0.00 of credits available")
	require.Equal(t, 1, e.oa.Count())
}

// TestCreditsUnpricedModel: credits can only pay for priced models.
func TestCreditsUnpricedModel(t *testing.T) {
	e := newCreditEnv(t, testFees)
	_, token := e.account(t, "acme", 5*credits.Dollar)
	resp, body := e.post(t, "/v1/chat/completions", chatBody("free-chat"), "Authorization", "Bearer "+token)
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, string(body))
	require.Equal(t, "model_not_priced", decodeOpenAIError(t, body).Error.Code)
	// With a priced fallback the unpriced model is skipped and reported.
	resp, body = e.post(t, "/v1/chat/completions", `{"models":["free-chat","priced-chat"],"messages":[{"role":"user","content":"Hi"}]}`,
		"Authorization", "Bearer "+token)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Contains(t, resp.Header.Get(HeaderRejectedModels), "openai:free-chat")
	require.Equal(t, "openai:priced-chat", resp.Header.Get(HeaderModel))
	// An uncatalogued pass-through model has no price either.
	resp, body = e.post(t, "/v1/chat/completions", chatBody("openai:brand-new-model"), "Authorization", "Bearer "+token)
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, string(body))
	require.Zero(t, e.balance(t, "acme").Held)
}

// TestCreditsBYOK: requests served with the client's own provider keys
// never touch credits, work at a zero balance, and are still recorded.
func TestCreditsBYOK(t *testing.T) {
	e := newCreditEnv(t, testFees)
	k, token := e.account(t, "acme", 0)
	sealer, err := keys.NewSealer(keys.KEK{ID: "kek-1", Key: [32]byte{7}})
	require.NoError(t, err)
	a, err := sealer.NewAttached(k.ID, "openai", "sk-team-own-key-0123456789")
	require.NoError(t, err)
	_, err = e.keys.Attach(context.Background(), a)
	require.NoError(t, err)
	e.gw.Forget(k.Hash)

	resp, body := e.post(t, "/v1/chat/completions", chatBody("free-chat"), "Authorization", "Bearer "+token)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "Bearer sk-team-own-key-0123456789", e.oa.Requests()[0].Header.Get("Authorization"))
	rec := e.usage(t, resp.Header.Get(HeaderRequestID))
	require.False(t, rec.Paid)
	require.Equal(t, credits.SourceAttached, rec.KeySource)
	require.Equal(t, "acme", rec.Account)
	require.Equal(t, credits.Amount(0), rec.Cost, "free-chat has no price")
	b := e.balance(t, "acme")
	require.False(t, b.Known)
	require.Zero(t, b.Spent)

	// A priced model is priced in the record, but not paid.
	resp, body = e.post(t, "/v1/chat/completions", chatBody("priced-chat"), "Authorization", "Bearer "+token)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	rec = e.usage(t, resp.Header.Get(HeaderRequestID))
	require.False(t, rec.Paid)
	require.Positive(t, rec.Cost)
	require.Zero(t, e.balance(t, "acme").Spent)
}

// TestCreditsHoldEndsOnEveryPath: failure, client disconnect and panic all
// end the hold.
func TestCreditsHoldEndsOnEveryPath(t *testing.T) {
	t.Run("all providers failed", func(t *testing.T) {
		e := newCreditEnv(t, testFees)
		_, token := e.account(t, "acme", 5*credits.Dollar)
		e.oa.Enqueue(providertest.Error(providers.FormatOpenAI, 500, "boom"))
		resp, body := e.post(t, "/v1/chat/completions", chatBody("priced-chat"), "Authorization", "Bearer "+token)
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(body))
		b := e.balance(t, "acme")
		require.Zero(t, b.Held)
		require.Zero(t, b.Spent)
		rec := e.usage(t, resp.Header.Get(HeaderRequestID))
		require.False(t, rec.Paid)
		require.Equal(t, "all_providers_failed", rec.Error)
	})
	t.Run("upstream error relayed", func(t *testing.T) {
		e := newCreditEnv(t, testFees)
		_, token := e.account(t, "acme", 5*credits.Dollar)
		e.oa.Enqueue(providertest.Error(providers.FormatOpenAI, 400, "bad request: messages[0] is odd"))
		resp, body := e.post(t, "/v1/chat/completions", chatBody("priced-chat"), "Authorization", "Bearer "+token)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(body))
		b := e.balance(t, "acme")
		require.Zero(t, b.Held)
		require.Zero(t, b.Spent)
	})
	t.Run("panic", func(t *testing.T) {
		ledger := credits.NewMemory(credits.MemoryOptions{})
		store := keys.NewMemoryStore()
		gw, err := New(
			WithProvider(ProviderConfig{ID: "boom", BaseURL: "http://127.0.0.1:1/v1/", Keys: []ProviderKey{{Value: "k"}},
				Provider: panicProvider{}, Models: []catalog.Model{pricedChat}}),
			WithKeyStore(store, KeyStoreOptions{Endpoint: "gw"}), WithMetering(ledger, testFees))
		require.NoError(t, err)
		defer gw.Close()
		k, token, err := keys.NewKey("gw")
		require.NoError(t, err)
		k.Account = "acme"
		_, err = store.Create(context.Background(), k)
		require.NoError(t, err)
		_, err = ledger.Purchase(context.Background(), credits.Purchase{ID: "p", Account: "acme", Amount: 5 * credits.Dollar})
		require.NoError(t, err)
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(chatBody("boom:priced-chat")))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		gw.ServeHTTP(rec, req)
		require.Equal(t, http.StatusInternalServerError, rec.Code, rec.Body.String())
		b, err := ledger.Balance(context.Background(), "acme")
		require.NoError(t, err)
		require.Zero(t, b.Held)
		require.Equal(t, 5*credits.Dollar, b.Available)
	})
}

type panicProvider struct{}

func (panicProvider) Name() string { return "boom" }
func (panicProvider) Surfaces() []providers.Surface {
	return []providers.Surface{providers.SurfaceChatCompletions}
}
func (panicProvider) Do(context.Context, *providers.Request, providers.Key) (*providers.Response, error) {
	panic("provider bug")
}

// TestTokenLimits: max_input_tokens refuses before any upstream call;
// max_output_tokens lowers (or sets) the request's maximum.
func TestTokenLimits(t *testing.T) {
	e := newEnv(t, envConfig{opts: []Option{WithTokenLimits(50, 100)}})
	long := strings.Repeat("lorem ipsum dolor ", 40)
	resp, body := e.post(t, "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"`+long+`"}]}`)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(body))
	oe := decodeOpenAIError(t, body)
	require.Equal(t, "input_too_large", oe.Error.Code)
	require.Contains(t, oe.Error.Message, "at most 50")
	require.Zero(t, e.oa.Count())

	resp, body = e.post(t, "/v1/messages", `{"model":"claude-haiku-4-5","max_tokens":100,"messages":[{"role":"user","content":"`+long+`"}]}`)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(body))
	require.Equal(t, "request_too_large", decodeAnthropicError(t, body).Error.Type)

	for _, tc := range []struct {
		name, path, body, field string
		want                    int
		header                  bool
	}{
		{"openai none", "/v1/chat/completions", chatBody("gpt-4o-mini"), "max_completion_tokens", 100, true},
		{"openai above", "/v1/chat/completions", chatBody("gpt-4o-mini", `"max_tokens":5000`), "max_tokens", 100, true},
		{"openai below", "/v1/chat/completions", chatBody("gpt-4o-mini", `"max_completion_tokens":7`), "max_completion_tokens", 7, false},
		{"anthropic above", "/v1/messages", messagesBody("claude-haiku-4-5", `"temperature":0`), "max_tokens", 64, false},
		{"translated", "/v1/chat/completions", chatBody("anthropic:claude-haiku-4-5"), "max_tokens", 100, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.post(t, tc.path, tc.body)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			require.Equal(t, tc.header, resp.Header.Get(HeaderMaxOutputTokens) != "")
			reqs := append(e.oa.Requests(), e.an.Requests()...)
			var last providertest.Recorded
			for _, r := range reqs {
				if last.Time.Before(r.Time) {
					last = r
				}
			}
			var v map[string]any
			require.NoError(t, json.Unmarshal(last.Body, &v))
			require.EqualValues(t, tc.want, v[tc.field], string(last.Body))
		})
	}
}

func TestCapMaxOutput(t *testing.T) {
	for _, tc := range []struct{ in, field, want string }{
		{`{"a":1}`, "max_tokens", `{"max_tokens":10,"a":1}`},
		{`{}`, "max_tokens", `{"max_tokens":10}`},
		{`{ }`, "max_tokens", `{"max_tokens":10 }`},
		{`{"max_tokens":500,"b":2}`, "max_completion_tokens", `{"max_tokens":10,"b":2}`},
		{`{"max_tokens":5}`, "max_tokens", `{"max_tokens":5}`},
		{`{"max_completion_tokens":50,"max_tokens":3}`, "max_tokens", `{"max_completion_tokens":10,"max_tokens":3}`},
		{`{"max_output_tokens":null}`, "max_output_tokens", `{"max_output_tokens":10}`},
	} {
		require.Equal(t, tc.want, string(capMaxOutput([]byte(tc.in), 10, tc.field)), tc.in)
	}
}

func TestCostArithmetic(t *testing.T) {
	p := catalog.Pricing{Input: 2_500_000, Output: 10_000_000}
	require.Equal(t, credits.Amount(25), cost(p, credits.Tokens{Input: 10}))
	require.Equal(t, credits.Amount(3), cost(p, credits.Tokens{Input: 1}), "rounded up")
	require.Equal(t, credits.Amount(0), cost(p, credits.Tokens{}))
	// Cached tokens without a cache price are input tokens.
	require.Equal(t, credits.Amount(25), cost(p, credits.Tokens{Input: 10, CacheRead: 4, CacheWrite: 6}))
	// A provider's absurd count cannot overflow.
	require.Positive(t, cost(catalog.Pricing{Input: 1 << 40, Output: 1 << 40}, credits.Tokens{Input: 1 << 62, Output: 1 << 62}))
}

// TestCreditsConcurrentRequestsNeverOverspend races 64 clients of one
// account against a balance that pays for a few of their worst cases.
func TestCreditsConcurrentRequestsNeverOverspend(t *testing.T) {
	e := newCreditEnv(t, MeteringOptions{Credits: true})
	_, token := e.account(t, "acme", 5*credits.Dollar)
	// Leave 20,000 µ$ available. A worst case (1000 output tokens at $8/M
	// plus the prompt) is about 8,100 µ$: two or three requests hold at
	// once, the rest get a lower maximum or wait for nothing.
	_, err := e.ledger.Reserve(context.Background(), credits.Reservation{ID: "other", Account: "acme",
		Min: 5*credits.Dollar - 20_000, Max: 5*credits.Dollar - 20_000, TTL: time.Hour})
	require.NoError(t, err)
	for range 64 {
		e.oa.Enqueue(providertest.Step{HeaderDelay: 20 * time.Millisecond,
			Body: []byte(`{"id":"c","object":"chat.completion","created":1,"model":"priced-chat","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":1000,"total_tokens":1010}}`)})
	}
	type result struct {
		status int
		cap    string
	}
	results := make(chan result, 64)
	for range 64 {
		go func() {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/chat/completions", strings.NewReader(chatBody("priced-chat", `"max_tokens":1000`)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				results <- result{}
				return
			}
			resp.Body.Close()
			results <- result{resp.StatusCode, resp.Header.Get(HeaderMaxOutputTokens)}
		}()
	}
	ok, refused := 0, 0
	for range 64 {
		r := <-results
		switch r.status {
		case http.StatusOK:
			ok++
		case http.StatusForbidden:
			refused++
		default:
			t.Fatalf("unexpected status %d", r.status)
		}
	}
	require.Equal(t, 64, ok+refused)
	require.Positive(t, ok)
	require.Positive(t, refused)
	// Every upstream answer claimed 1000 output tokens, more than a
	// lowered request asked for: the account pays what it held and at
	// most what it had, never more.
	deadline := time.Now().Add(5 * time.Second)
	for e.balance(t, "acme").Held != 5*credits.Dollar-20_000 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // handlers settle just after their responses
	}
	b := e.balance(t, "acme")
	require.Equal(t, 5*credits.Dollar-20_000, b.Held, "only the outside hold remains")
	require.GreaterOrEqual(t, b.Available, credits.Amount(0))
	require.LessOrEqual(t, b.Spent, credits.Amount(20_000), "never more than the account had")
}

// TestCreditsInterruptedStream: a stream that fails, or whose client goes
// away, after content was delivered is charged for what was delivered:
// the prompt counted by the gateway (no usage arrived) and the output
// counted from the text that passed.
func TestCreditsInterruptedStream(t *testing.T) {
	tc := func(t *testing.T, e *creditEnv) (counter func(string, string) int64, enc string) {
		m := catalogModelOf(t, e.gw, "openai", "priced-chat")
		return func(enc, s string) int64 {
			n, err := e.gw.counter.Count(enc, s)
			require.NoError(t, err)
			return int64(n)
		}, m.Encoding
	}
	// µ$ of in prompt and out output tokens of priced-chat, fee included.
	charge := func(in, out int64) credits.Amount {
		c := (in*2_000_000 + out*8_000_000 + 999_999) / 1_000_000
		fee := (c*500+9_999)/10_000 + ((in+out)*50_000+999_999)/1_000_000
		return credits.Amount(c + fee)
	}

	t.Run("upstream fails midway", func(t *testing.T) {
		e := newCreditEnv(t, testFees)
		_, token := e.account(t, "acme", 5*credits.Dollar)
		count, enc := tc(t, e)
		deltas := []string{"The quick", " brown fox", " jumps"}
		e.oa.Enqueue(providertest.StreamError(providers.FormatOpenAI, "priced-chat", deltas, 500, "overloaded"))
		body := chatBody("priced-chat", `"stream":true`)
		resp, out := e.post(t, "/v1/chat/completions", body, "Authorization", "Bearer "+token)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, string(out), "stream_failed")
		in := e.gw.counter.EstimateOpenAIChat(enc, []byte(body))
		want := charge(in, count(enc, "The quick brown fox jumps"))
		rec := e.usage(t, resp.Header.Get(HeaderRequestID))
		require.True(t, rec.Paid)
		require.False(t, rec.ReportedKnown)
		require.Equal(t, in, rec.Estimated.Input)
		require.Equal(t, want, rec.Cost+rec.Fee)
		require.Equal(t, want, e.balance(t, "acme").Spent)
	})

	t.Run("client goes away", func(t *testing.T) {
		e := newCreditEnv(t, testFees)
		_, token := e.account(t, "acme", 5*credits.Dollar)
		count, enc := tc(t, e)
		never := make(chan struct{})
		defer close(never)
		step := providertest.OpenAIChatStream("priced-chat", []string{"Once upon", " a time", " there was", " more"}, providertest.Usage{}, false)
		// Hold back everything after the second delta: the client leaves
		// first.
		step.Events[3].Wait = never
		e.oa.Enqueue(step)
		body := chatBody("priced-chat", `"stream":true`)
		req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/chat/completions", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		id := resp.Header.Get(HeaderRequestID)
		buf := make([]byte, 4096)
		var got string
		for !strings.Contains(got, "a time") {
			n, err := resp.Body.Read(buf)
			require.NoError(t, err)
			got += string(buf[:n])
		}
		resp.Body.Close()
		ev := e.events.find(t, id)
		require.Equal(t, "client_closed_request", ev.Err.Code())
		in := e.gw.counter.EstimateOpenAIChat(enc, []byte(body))
		want := charge(in, count(enc, "Once upon a time"))
		rec := e.usage(t, id)
		require.True(t, rec.Paid)
		require.Equal(t, want, rec.Cost+rec.Fee)
		require.Equal(t, want, e.balance(t, "acme").Spent)
		require.Zero(t, e.balance(t, "acme").Held)
	})

	t.Run("anthropic cut after message_start", func(t *testing.T) {
		e := newCreditEnv(t, testFees)
		_, token := e.account(t, "acme", 5*credits.Dollar)
		m := catalogModelOf(t, e.gw, "anthropic", "priced-claude")
		e.an.Enqueue(providertest.StreamError(providers.FormatAnthropic, "priced-claude", []string{"Hello", " there"}, 529, "overloaded"))
		resp, _ := e.post(t, "/v1/messages", messagesBody("priced-claude", `"stream":true`), "Authorization", "Bearer "+token)
		rec := e.usage(t, resp.Header.Get(HeaderRequestID))
		n, err := e.gw.counter.Count(m.Encoding, "Hello there")
		require.NoError(t, err)
		require.Equal(t, int64(n), rec.Estimated.Output)
		require.Equal(t, int64(n), max(rec.Reported.Output, rec.Estimated.Output), "message_start's placeholder output does not win")
		require.True(t, rec.Paid)
		require.Positive(t, rec.Cost)
	})
}

func catalogModelOf(t *testing.T, gw *Gateway, provider, id string) *catalog.Model {
	t.Helper()
	for _, m := range gw.Catalog().Models() {
		if m.Provider == provider && m.ID == id {
			return m
		}
	}
	t.Fatalf("no catalog model %s:%s", provider, id)
	return nil
}

// sweepCounter is a credits.Sweeper that counts its sweeps; when block is
// set, a sweep waits for its context to end.
type sweepCounter struct {
	calls chan struct{}
	block bool
	ended atomic.Int64 // sweeps whose context ended
}

func (s *sweepCounter) Sweep(ctx context.Context) (credits.SweepResult, error) {
	s.calls <- struct{}{}
	if s.block {
		<-ctx.Done()
		s.ended.Add(1)
		return credits.SweepResult{}, ctx.Err()
	}
	return credits.SweepResult{}, nil
}

// TestSweeper: the sweeper sweeps at start and then every interval, and
// stop cancels a sweep in progress and waits for it. Started and stopped
// many times under -race, nothing of a stopped sweeper may still touch
// it.
func TestSweeper(t *testing.T) {
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	t.Run("start and stop", func(t *testing.T) {
		for range 200 {
			sc := &sweepCounter{calls: make(chan struct{}, 1)}
			s := &sweeper{s: sc, interval: time.Hour, logger: logger}
			s.start()
			<-sc.calls // the sweep at start
			s.stop()
			s.stop() // again: nothing
		}
	})
	t.Run("every interval", func(t *testing.T) {
		sc := &sweepCounter{calls: make(chan struct{}, 1)}
		s := &sweeper{s: sc, interval: time.Millisecond, logger: logger}
		s.start()
		for range 5 {
			<-sc.calls
		}
		s.stop()
	})
	t.Run("stop cancels a sweep in progress", func(t *testing.T) {
		sc := &sweepCounter{calls: make(chan struct{}, 1), block: true}
		s := &sweeper{s: sc, interval: time.Hour, logger: logger}
		s.start()
		<-sc.calls
		s.stop()
		require.EqualValues(t, 1, sc.ended.Load(), "stop waited for the sweep")
	})
	require.NotContains(t, logs.String(), "sweep failed", "a canceled sweep is no failure")
}
