package gateway

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

// TestReloadUnderLoad swaps providers, keys and defaults many times while
// clients keep sending JSON and streaming requests: not one fails, and each
// is served by a configuration that existed when it started.
func TestReloadUnderLoad(t *testing.T) {
	oa := providertest.Start(t, providers.FormatOpenAI)
	an := providertest.Start(t, providers.FormatAnthropic)
	configs := [][]Option{
		{WithProvider(ProviderConfig{ID: "openai", BaseURL: oa.URL, Keys: []ProviderKey{{Value: "sk-a"}}}),
			WithProvider(ProviderConfig{ID: "anthropic", BaseURL: an.URL, Keys: []ProviderKey{{Value: "sk-ant-a"}}})},
		{WithProvider(ProviderConfig{ID: "openai", BaseURL: oa.URL, Keys: []ProviderKey{{ID: "k2", Value: "sk-b"}, {Value: "sk-c"}}}),
			WithProvider(ProviderConfig{ID: "anthropic", BaseURL: an.URL, Keys: []ProviderKey{{Value: "sk-ant-b"}}}),
			WithDefaultModels("openai:gpt-4o-mini"), WithTimeouts(time.Minute, 2*time.Minute)},
		{WithProvider(ProviderConfig{ID: "anthropic", BaseURL: an.URL, Keys: []ProviderKey{{Value: "sk-ant-c"}}}),
			WithProvider(ProviderConfig{ID: "openai", BaseURL: oa.URL, Keys: []ProviderKey{{Value: "sk-d"}}}),
			WithOnlyConfiguredProviders(true)},
	}
	gw, err := New(configs[0]...)
	require.NoError(t, err)
	defer gw.Close()
	srv := newServer(t, gw)
	e := &testEnv{gw: gw, srv: srv}

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var sent, failed atomic.Int64
	var firstFailure atomic.Value
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				var err error
				switch (i + n) % 4 {
				case 0:
					_, err = e.openai().Chat.Completions.New(ctx, openAIStreamParams("gpt-4o"))
				case 1:
					_, err = collectOpenAI(t, e, "claude-sonnet-4-5")
				case 2:
					_, err = e.anthropic().Messages.New(ctx, anthropicStreamParams("claude-sonnet-4-5"))
				default:
					_, err = collectAnthropic(t, e, "gpt-4o-mini")
				}
				if ctx.Err() != nil {
					return
				}
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
				}
			}
		}(i)
	}
	for r := 0; r < 29; r++ { // ends on configs[2]
		time.Sleep(10 * time.Millisecond)
		require.NoError(t, gw.Reload(configs[(r+1)%len(configs)]...))
	}
	// An invalid configuration is refused whole and changes nothing.
	err = gw.Reload(WithProvider(ProviderConfig{ID: "openai", Keys: []ProviderKey{{Value: ""}}}), WithTimeouts(0, 0))
	require.Error(t, err)
	require.Len(t, OptionErrors(err), 3, "both timeouts and the key")
	time.Sleep(20 * time.Millisecond)
	stop()
	wg.Wait()
	require.Positive(t, sent.Load())
	require.Zero(t, failed.Load(), "first failure: %v", firstFailure.Load())
	// The last valid configuration is in force.
	require.Equal(t, []string{"anthropic", "openai"}, gw.Providers())
}

func TestReloadKeepsCooldownsOfKeptKeys(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.oa.Enqueue(providertest.Error(providers.FormatOpenAI, 401, "revoked"))
	resp, _ := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	reload := func(keys ...ProviderKey) {
		require.NoError(t, e.gw.Reload(WithProvider(ProviderConfig{ID: "openai", BaseURL: e.oa.URL, Keys: keys}),
			WithProvider(ProviderConfig{ID: "anthropic", BaseURL: e.an.URL, Keys: []ProviderKey{{Value: "sk-an-1"}}}),
			WithEventSink(e.events)))
	}
	reload(ProviderKey{Value: "sk-oa-1"}, ProviderKey{Value: "sk-oa-2"})
	resp, _ = e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, AttemptSkippedCooldown, e.events.last(t).Attempts[0].Error, "the refused key is still benched")
	// A key whose value changed is a new key.
	reload(ProviderKey{Value: "sk-oa-1-rotated"}, ProviderKey{Value: "sk-oa-2"})
	resp, _ = e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, AttemptOK, e.events.last(t).Attempts[0].Error)
	require.Equal(t, "Bearer sk-oa-1-rotated", e.oa.Requests()[e.oa.Count()-1].Header.Get("Authorization"))
}

func TestReloadAfterClose(t *testing.T) {
	gw, err := New()
	require.NoError(t, err)
	require.NoError(t, gw.Close())
	require.Error(t, gw.Reload())
}

func TestOptionErrorsNameTheirField(t *testing.T) {
	_, err := New(
		WithProvider(ProviderConfig{ID: "openai", Keys: []ProviderKey{{Value: "sk-1"}, {Value: ""}}}),
		WithProvider(ProviderConfig{ID: "lab", BaseURL: "ftp://lab", Models: []catalogModel{{ID: "m"}, {ID: "M"}}}),
		WithTimeouts(-1, 0),
		WithDefaultModels("openai:gpt-4o", "nope-model"),
	)
	require.Error(t, err)
	var got []string
	for _, oe := range OptionErrors(err) {
		got = append(got, fmt.Sprintf("%s|%s|%s", oe.Option, oe.Provider, oe.Field))
	}
	require.Contains(t, got, "WithProvider|openai|Keys[1].Value")
	require.Contains(t, got, "WithProvider|lab|Models[1].ID")
	require.Contains(t, got, "WithTimeouts||perAttempt")
	require.Contains(t, got, "WithTimeouts||total")
	require.Contains(t, got, "WithProvider|lab|BaseURL")
	seen := map[string]bool{}
	for _, g := range got {
		require.False(t, seen[g], "one problem per field: %s twice", g)
		seen[g] = true
	}
	_, err = New(WithCORS("https://ok.example", "bad", "*", "also bad"), WithFailFastStatuses(500, 200))
	got = got[:0]
	for _, oe := range OptionErrors(err) {
		got = append(got, oe.Option+oe.Field)
	}
	require.Equal(t, []string{"WithCORS[1]", "WithCORS[3]", "WithFailFastStatuses[1]"}, got)
}

func TestCustomTransportNeedsNoBaseURL(t *testing.T) {
	p := &headerProvider{}
	gw, err := New(WithProvider(ProviderConfig{ID: "echo", Provider: p, Models: []catalogModel{{ID: "parrot"}}}))
	require.NoError(t, err)
	defer gw.Close()
	e := &testEnv{gw: gw, srv: newServer(t, gw)}
	resp, body := e.post(t, "/v1/chat/completions", chatBody("echo:parrot"))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
}
