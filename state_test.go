package gateway

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

func TestKeyStates(t *testing.T) {
	e := newEnv(t, envConfig{})
	states := func() map[string]KeyState {
		m := map[string]KeyState{}
		for _, s := range e.gw.KeyStates() {
			m[s.Provider+"/"+s.KeyID] = s
		}
		return m
	}
	before := states()
	require.Len(t, before, 3)
	for id, s := range before {
		require.False(t, s.Cooling(), id)
	}

	t.Run("rate limit cools the key for the model", func(t *testing.T) {
		e.oa.Enqueue(providertest.RateLimited(providers.FormatOpenAI, "30"), providertest.OpenAIChat("gpt-4o-mini", "hi", providertest.Usage{}))
		resp, _ := e.post(t, "/v1/chat/completions", chatBody("openai:gpt-4o-mini"))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		s := states()["openai/key-1"]
		require.True(t, s.Cooling())
		require.True(t, s.CooldownUntil.IsZero())
		require.Equal(t, 1, s.CoolingModels)
		require.False(t, states()["openai/key-2"].Cooling())
	})
	t.Run("refused credentials cool the whole key", func(t *testing.T) {
		e.an.Enqueue(providertest.Error(providers.FormatAnthropic, http.StatusUnauthorized, "invalid x-api-key"))
		resp, _ := e.post(t, "/v1/messages", messagesBody("anthropic:claude-sonnet-4-5"))
		require.NotEqual(t, http.StatusOK, resp.StatusCode)
		s := states()["anthropic/key-1"]
		require.True(t, s.Cooling())
		require.True(t, s.CooldownUntil.After(time.Now()))
		require.Equal(t, 0, s.CoolingModels)
	})
}

func TestInFlight(t *testing.T) {
	e := newEnv(t, envConfig{})
	require.Equal(t, InFlight{}, e.gw.InFlight())
	gate := make(chan struct{})
	step := providertest.OpenAIChatStream("gpt-4o-mini", []string{"a", "b"}, providertest.Usage{}, false)
	step.Events[len(step.Events)-1].Wait = gate
	e.oa.Enqueue(step)

	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/chat/completions", strings.NewReader(chatBody("openai:gpt-4o-mini", `"stream":true`)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, err = bufio.NewReader(resp.Body).ReadString('\n') // the stream is committed
	require.NoError(t, err)
	require.Equal(t, InFlight{Requests: 1, Streams: 1}, e.gw.InFlight())

	// A JSON request in flight at the same time is a request, not a stream.
	e.oa.Enqueue(providertest.Step{Hang: true})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r, err := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+"/v1/chat/completions", strings.NewReader(chatBody("openai:gpt-4o-mini")))
		if err != nil {
			return
		}
		r.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(r); err == nil {
			resp.Body.Close()
		}
	}()
	require.Eventually(t, func() bool { return e.gw.InFlight() == InFlight{Requests: 2, Streams: 1} }, 5*time.Second, time.Millisecond)
	cancel()
	<-done

	close(gate)
	_, err = io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return e.gw.InFlight() == InFlight{} }, 5*time.Second, time.Millisecond)
}
