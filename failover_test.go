package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	openaisdk "github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

func TestFailoverTriggers(t *testing.T) {
	ok := providertest.OpenAIChat("gpt-4o", "recovered", providertest.Usage{Input: 1, Output: 1})
	for _, tc := range []struct {
		name      string
		first     providertest.Step
		opts      []Option
		wantError AttemptError
		wantCode  int
	}{
		{name: "500", first: providertest.Error(providers.FormatOpenAI, 500, "boom"), wantError: AttemptStatus, wantCode: 500},
		{name: "503", first: providertest.Error(providers.FormatOpenAI, 503, "overloaded"), wantError: AttemptStatus, wantCode: 503},
		{name: "400 about the model's limits", first: providertest.Error(providers.FormatOpenAI, 400, "This model's maximum context length is 128000 tokens."), wantError: AttemptStatus, wantCode: 400},
		{name: "422 about an unsupported parameter", first: providertest.Error(providers.FormatOpenAI, 422, "Unsupported parameter: 'logprobs' is not supported with this model."), wantError: AttemptStatus, wantCode: 422},
		{name: "429", first: providertest.RateLimited(providers.FormatOpenAI, "1"), wantError: AttemptStatus, wantCode: 429},
		{name: "401", first: providertest.Error(providers.FormatOpenAI, 401, "bad key"), wantError: AttemptStatus, wantCode: 401},
		{name: "attempt timeout", first: providertest.Step{Hang: true}, opts: []Option{WithTimeouts(200*time.Millisecond, 10*time.Second)}, wantError: AttemptTimeout},
		{name: "truncated body", first: providertest.Step{Body: []byte(`{"id":"x","choices":[`)}, wantError: AttemptBadResponse, wantCode: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envConfig{opts: tc.opts})
			e.oa.Enqueue(tc.first, ok)
			resp, body := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			require.Contains(t, string(body), "recovered")
			require.Equal(t, "2", resp.Header.Get(HeaderAttempts))
			reqs := e.oa.Requests()
			require.Len(t, reqs, 2)
			require.Equal(t, "Bearer sk-oa-1", reqs[0].Header.Get("Authorization"))
			require.Equal(t, "Bearer sk-oa-2", reqs[1].Header.Get("Authorization"), "second key of the same provider")
			require.Equal(t, reqs[0].Body, reqs[1].Body, "the body is replayed byte for byte")
			ev := e.events.last(t)
			require.Len(t, ev.Attempts, 2)
			require.Equal(t, tc.wantError, ev.Attempts[0].Error)
			require.Equal(t, tc.wantCode, ev.Attempts[0].Status)
			require.Equal(t, "key-1", ev.Attempts[0].KeyID)
			require.Equal(t, AttemptOK, ev.Attempts[1].Error)
		})
	}
}

func TestFailoverAcrossModels(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.oa.Enqueue(providertest.Error(providers.FormatOpenAI, 500, "a"), providertest.Error(providers.FormatOpenAI, 502, "b"),
		providertest.OpenAIChat("gpt-4o-mini", "from the second model", providertest.Usage{}))
	resp, body := e.post(t, "/v1/chat/completions", `{"model":"gpt-4o","models":["gpt-4o-mini"],"messages":[]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "openai:gpt-4o-mini", resp.Header.Get(HeaderModel))
	require.Equal(t, "3", resp.Header.Get(HeaderAttempts))
	reqs := e.oa.Requests()
	require.Equal(t, []string{"gpt-4o", "gpt-4o", "gpt-4o-mini"}, []string{upstreamModel(t, reqs[0]), upstreamModel(t, reqs[1]), upstreamModel(t, reqs[2])})
	for _, r := range reqs {
		require.NotContains(t, string(r.Body), `"models"`, "models is never sent upstream")
	}
}

func TestConnectionRefusedFailsOver(t *testing.T) {
	oa := providertest.Start(t, providers.FormatOpenAI)
	dead := providertest.DeadURL(t)
	gw, err := New(
		WithProvider(ProviderConfig{ID: "dead", BaseURL: dead, Keys: []ProviderKey{{Value: "sk-dead-secret"}}, Models: []catalogModel{{ID: "m1"}}}),
		WithProvider(ProviderConfig{ID: "openai", BaseURL: oa.URL, Keys: []ProviderKey{{Value: "sk-live"}}}),
	)
	require.NoError(t, err)
	defer gw.Close()
	e := &testEnv{gw: gw, srv: newServer(t, gw)}
	resp, body := e.post(t, "/v1/chat/completions", `{"model":"dead:m1","models":["openai:gpt-4o"],"messages":[]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "openai:gpt-4o", resp.Header.Get(HeaderModel))
	require.Equal(t, "2", resp.Header.Get(HeaderAttempts))
}

func TestAllProvidersFailed(t *testing.T) {
	e := newEnv(t, envConfig{opts: []Option{WithErrorDetail(true)}})
	e.oa.Enqueue(providertest.Error(providers.FormatOpenAI, 500, "first broke"), providertest.Error(providers.FormatOpenAI, 500, "second broke with sk-oa-2 inside"))
	e.an.Enqueue(providertest.Error(providers.FormatAnthropic, 529, "overloaded"))
	resp, body := e.post(t, "/v1/chat/completions", `{"models":["gpt-4o","anthropic:claude-sonnet-4-5"],"messages":[]}`)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	v := decodeOpenAIError(t, body)
	require.Equal(t, "all_providers_failed", v.Error.Code)
	require.Equal(t, "server_error", v.Error.Type)
	require.Len(t, v.Error.Attempts, 3, "two keys of openai, then anthropic through translation")
	require.NotContains(t, string(body), "sk-oa-2", "secrets are redacted from upstream error text")
	require.Contains(t, string(body), "[redacted]")
	require.Equal(t, "3", resp.Header.Get(HeaderAttempts))
	require.Empty(t, resp.Header.Get("X-Should-Retry"))

	var attempts []Attempt
	for _, raw := range v.Error.Attempts {
		var a Attempt
		require.NoError(t, json.Unmarshal(raw, &a))
		attempts = append(attempts, a)
	}
	require.Equal(t, "openai", attempts[0].Provider)
	require.Equal(t, 500, attempts[0].Status)
	require.Equal(t, "first broke", attempts[0].Reason)
	require.Equal(t, "anthropic", attempts[2].Provider)
	require.Equal(t, 529, attempts[2].Status)
	require.True(t, attempts[2].Translated)
	ev := e.events.last(t)
	require.ErrorIs(t, ev.Err, ErrAllProvidersFailed)
	require.Equal(t, KindAllProvidersFailed, KindOf(ev.Err))
}

// A request-level rejection of a native request is the client's mistake:
// it stops failover and reaches the client with the upstream's status.
func TestAllClientErrorsAreNotRetried(t *testing.T) {
	e := newEnv(t, envConfig{openAIKeys: []ProviderKey{{Value: "sk-1"}}})
	e.oa.Enqueue(providertest.Error(providers.FormatOpenAI, 400, "messages must not be empty"))
	resp, body := e.post(t, "/v1/chat/completions", `{"model":"gpt-4o","models":["anthropic:claude-sonnet-4-5"],"messages":[]}`)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Equal(t, 1, e.oa.Count()+e.an.Count(), "no failover after a request-level rejection")
	require.Equal(t, "false", resp.Header.Get("X-Should-Retry"), "SDKs must not retry a request every provider refused")
	require.Contains(t, string(body), "messages must not be empty", "the provider's own error body is relayed")
	require.Equal(t, "openai:gpt-4o", resp.Header.Get(HeaderModel))
	ev := e.events.last(t)
	require.ErrorIs(t, ev.Err, ErrUpstream)
	require.Equal(t, http.StatusBadRequest, ev.Err.HTTPStatus())
}

func TestFailFastStatus(t *testing.T) {
	e := newEnv(t, envConfig{opts: []Option{WithFailFastStatuses(400, 422)}})
	e.oa.Enqueue(providertest.Error(providers.FormatOpenAI, 400, "Invalid value for 'temperature'"))
	resp, body := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Equal(t, 1, e.oa.Count(), "no failover")
	require.Contains(t, string(body), "Invalid value for 'temperature'", "the provider's own error body is relayed")
	require.Equal(t, "openai:gpt-4o", resp.Header.Get(HeaderModel))
	require.Equal(t, "false", resp.Header.Get("X-Should-Retry"))
	require.ErrorIs(t, e.events.last(t).Err, ErrUpstream)
}

func TestCooldownSharedAcrossRequests(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	e := newEnv(t, envConfig{opts: []Option{WithClock(func() time.Time { return time.Unix(0, clock.Load()) })}})

	// Key 1 is rate limited for 30 s; key 2 answers.
	e.oa.Enqueue(providertest.RateLimited(providers.FormatOpenAI, "30"), providertest.OpenAIChat("gpt-4o", "one", providertest.Usage{}))
	resp, _ := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// The next request skips key 1 without calling it.
	resp, _ = e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "1", resp.Header.Get(HeaderAttempts))
	reqs := e.oa.Requests()
	require.Len(t, reqs, 3)
	require.Equal(t, "Bearer sk-oa-2", reqs[2].Header.Get("Authorization"))
	ev := e.events.last(t)
	require.True(t, ev.Attempts[0].Skipped)
	require.Equal(t, AttemptSkippedCooldown, ev.Attempts[0].Error)
	require.Equal(t, "key-1", ev.Attempts[0].KeyID)

	// Retry-After is honoured but capped (1 minute here).
	e.oa.Enqueue(providertest.RateLimited(providers.FormatOpenAI, "86400"), providertest.OpenAIChat("gpt-4o", "x", providertest.Usage{}))
	clock.Add(int64(31 * time.Second))
	resp, _ = e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "2", resp.Header.Get(HeaderAttempts))

	// Both keys cooling: key 2 got 401 (1 minute), key 1 is rate limited.
	e.oa.Enqueue(providertest.Error(providers.FormatOpenAI, 401, "revoked"))
	clock.Add(int64(61 * time.Second)) // key 1's capped cooldown is over
	e.oa.Enqueue(providertest.RateLimited(providers.FormatOpenAI, "5"))
	resp, body := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(body))
	resp, body = e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(body))
	require.Equal(t, "0", resp.Header.Get(HeaderAttempts), "every key is cooling: nothing is sent")
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
	require.Contains(t, decodeOpenAIError(t, body).Error.Message, "skipped")
}

func TestTotalTimeout(t *testing.T) {
	e := newEnv(t, envConfig{opts: []Option{WithTimeouts(150*time.Millisecond, 400*time.Millisecond)}})
	for i := 0; i < 10; i++ {
		e.oa.Enqueue(providertest.Step{Hang: true})
	}
	start := time.Now()
	resp, body := e.post(t, "/v1/chat/completions", `{"model":"gpt-4o","models":["gpt-4o-mini","gpt-4.1"],"messages":[]}`)
	elapsed := time.Since(start)
	require.Equal(t, http.StatusGatewayTimeout, resp.StatusCode, string(body))
	v := decodeOpenAIError(t, body)
	require.Equal(t, "total_timeout", v.Error.Code)
	require.Less(t, elapsed, 5*time.Second)
	require.GreaterOrEqual(t, len(v.Error.Attempts), 2)
	ev := e.events.last(t)
	require.ErrorIs(t, ev.Err, ErrTotalTimeout)
}

func TestClientCancelStopsFailover(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.oa.Enqueue(providertest.Step{Hang: true}, providertest.Step{Hang: true})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := e.openai().Chat.Completions.New(ctx, openaisdk.ChatCompletionNewParams{
		Model: "gpt-4o", Messages: []openaisdk.ChatCompletionMessageParamUnion{openaisdk.UserMessage("Hi")},
	})
	require.Error(t, err)
	require.True(t, errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "deadline"))
	ev := e.events.last(t)
	require.Equal(t, KindCanceled, KindOf(ev.Err))
	require.Equal(t, 1, countSent(ev.Attempts), "no second attempt after the client left")
	require.Equal(t, AttemptCanceled, ev.Attempts[0].Error)
}

func TestPassThroughCredentials(t *testing.T) {
	e := newEnv(t, envConfig{noKeys: true})
	resp, body := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"), "Authorization", "Bearer sk-client-own")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "Bearer sk-client-own", e.oa.Requests()[0].Header.Get("Authorization"))
	require.Equal(t, "client", e.events.last(t).Attempts[0].KeyID)

	resp, body = e.post(t, "/v1/messages", messagesBody("claude-sonnet-4-5"), "X-Api-Key", "sk-ant-client")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "sk-ant-client", e.an.Requests()[0].Header.Get("X-Api-Key"))

	// No credential at all: sent without one (local servers need none).
	resp, _ = e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Empty(t, e.oa.Requests()[1].Header.Get("Authorization"))

	// With configured keys the client's credential is never forwarded.
	e2 := newEnv(t, envConfig{})
	resp, _ = e2.post(t, "/v1/chat/completions", chatBody("gpt-4o"), "Authorization", "Bearer sk-client-own")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, r := range e2.oa.Requests() {
		for _, vs := range r.Header {
			for _, v := range vs {
				require.NotContains(t, v, "sk-client-own")
			}
		}
	}
	// A client 401 in pass-through mode does not cool down anything shared.
	e.oa.Enqueue(providertest.Error(providers.FormatOpenAI, 401, "bad client key"), providertest.OpenAIChat("gpt-4o", "ok", providertest.Usage{}))
	resp, _ = e.post(t, "/v1/chat/completions", chatBody("gpt-4o"), "Authorization", "Bearer sk-wrong")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	resp, _ = e.post(t, "/v1/chat/completions", chatBody("gpt-4o"), "Authorization", "Bearer sk-right")
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestRequestTooLarge(t *testing.T) {
	e := newEnv(t, envConfig{opts: []Option{WithMaxRequestBytes(1024)}})
	big := chatBody("gpt-4o", `"pad":"`+strings.Repeat("x", 2048)+`"`)
	resp, body := e.post(t, "/v1/chat/completions", big)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	require.Equal(t, "input_too_large", decodeOpenAIError(t, body).Error.Code)
	// Chunked (no Content-Length) bodies are cut at the limit too.
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/messages", strings.NewReader(big))
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = -1
	r, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer r.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, r.StatusCode)
	require.Zero(t, e.oa.Count())
}

func TestBodyCutMidwayFailsOver(t *testing.T) {
	var calls atomic.Int32
	up := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			// Promise 400 bytes, send 20, then cut the connection.
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "400")
			w.WriteHeader(200)
			_, _ = w.Write([]byte(`{"id":"chatcmpl-1",`))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(providertest.OpenAIChat("gpt-4o", "second try", providertest.Usage{}).Body)
	}))
	gw, err := New(WithProvider(ProviderConfig{ID: "openai", BaseURL: up.URL + "/v1/", Keys: []ProviderKey{{Value: "a"}, {Value: "b"}}}))
	require.NoError(t, err)
	defer gw.Close()
	e := &testEnv{gw: gw, srv: newServer(t, gw)}
	resp, body := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Contains(t, string(body), "second try")
	require.Equal(t, "2", resp.Header.Get(HeaderAttempts))
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	var leaked atomic.Bool
	evil := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") != "" || r.Header.Get("Authorization") != "" {
			leaked.Store(true)
		}
	}))
	redirector := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, evil.URL+"/v1/messages", http.StatusTemporaryRedirect)
	}))
	gw, err := New(WithProvider(ProviderConfig{ID: "anthropic", BaseURL: redirector.URL + "/v1/", Keys: []ProviderKey{{Value: "sk-ant-secret"}}}))
	require.NoError(t, err)
	defer gw.Close()
	e := &testEnv{gw: gw, srv: newServer(t, gw)}
	resp, body := e.post(t, "/v1/messages", messagesBody("claude-sonnet-4-5"))
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(body))
	require.False(t, leaked.Load(), "the key followed a redirect")
}
