package gateway

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/metrics"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

// keyShares sends n chat requests and counts the upstream requests per
// OpenAI key.
func keyShares(t *testing.T, e *testEnv, n int) map[string]int {
	t.Helper()
	start := e.oa.Count()
	for range n {
		resp, body := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	}
	shares := map[string]int{}
	for _, r := range e.oa.Requests()[start:] {
		shares[r.Header.Get("Authorization")]++
	}
	return shares
}

var threeKeys = []ProviderKey{{Value: "sk-a"}, {Value: "sk-b"}, {Value: "sk-c", Weight: 2}}

func TestKeySelectionBuiltins(t *testing.T) {
	t.Run("ordered: the first key takes all", func(t *testing.T) {
		e := newEnv(t, envConfig{openAIKeys: threeKeys})
		require.Equal(t, map[string]int{"Bearer sk-a": 30}, keyShares(t, e, 30))
	})
	t.Run("round_robin: three keys share within 5%", func(t *testing.T) {
		e := newEnv(t, envConfig{openAIKeys: threeKeys, opts: []Option{WithKeySelection("round_robin")}})
		shares := keyShares(t, e, 300)
		require.Len(t, shares, 3)
		for k, n := range shares {
			require.InDelta(t, 100, n, 5, k)
		}
	})
	t.Run("weighted: shares follow the weights", func(t *testing.T) {
		e := newEnv(t, envConfig{openAIKeys: threeKeys, opts: []Option{WithKeySelection("weighted")}})
		shares := keyShares(t, e, 800)
		// Weights 1:1:2. The standard deviation of a share of 800 draws
		// is at most 1.8%: 7 points is about four of them.
		require.InDelta(t, 200, shares["Bearer sk-a"], 56)
		require.InDelta(t, 200, shares["Bearer sk-b"], 56)
		require.InDelta(t, 400, shares["Bearer sk-c"], 56)
	})
	t.Run("per-provider override", func(t *testing.T) {
		e := newEnv(t, envConfig{noKeys: true, opts: []Option{
			WithKeySelection("ordered"),
			WithProvider(ProviderConfig{ID: "groq", BaseURL: "http://127.0.0.1:1/", Keys: threeKeys, KeySelection: []string{"round_robin"}}),
		}})
		up := e.gw.routing.Load().upstreams["groq"]
		require.Equal(t, keysRoundRobin, up.keySel.policy)
		require.Equal(t, keysOrdered, e.gw.routing.Load().upstreams["openai"].keySel.policy)
	})
}

func TestKeySelectionLeastInFlight(t *testing.T) {
	e := newEnv(t, envConfig{openAIKeys: threeKeys[:2], opts: []Option{WithKeySelection("least_in_flight")}})
	gate := make(chan struct{})
	st := providertest.OpenAIChat("gpt-4o", "slow", providertest.Usage{})
	st.Check = func(providertest.Recorded) error { <-gate; return nil }
	e.oa.Enqueue(st)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
	}()
	require.Eventually(t, func() bool { return e.oa.Count() == 1 }, 5*time.Second, time.Millisecond)
	busy := e.oa.Requests()[0].Header.Get("Authorization")
	// While the first request holds its key, the others go to the other.
	for range 4 {
		resp, body := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		rs := e.oa.Requests()
		require.NotEqual(t, busy, rs[len(rs)-1].Header.Get("Authorization"))
	}
	close(gate)
	wg.Wait()
}

func TestKeySelectionLeastLatency(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	e := newEnv(t, envConfig{openAIKeys: threeKeys[:2], opts: []Option{WithClock(clock.now), WithKeySelection("least_latency")}})
	rec := e.gw.Metrics()
	rec.Key("openai", "key-1").Observe(900*time.Millisecond, metrics.Outcome{Status: 200})
	rec.Key("openai", "key-2").Observe(90*time.Millisecond, metrics.Outcome{Status: 200})
	clock.advance(2 * time.Second)
	require.Equal(t, map[string]int{"Bearer sk-b": 10}, keyShares(t, e, 10))
}

func TestKeySelectionCEL(t *testing.T) {
	for _, tc := range []struct {
		name  string
		exprs []string
		want  map[string]int
	}{
		{"filter", []string{"ai.keys.filter(k, k.id != 'key-1')"}, map[string]int{"Bearer sk-b": 6}},
		{"sort by weight", []string{"ai.keys.sortByDesc(k, k.weight)"}, map[string]int{"Bearer sk-c": 6}},
		{"falls through", []string{"ai.keys.filter(k, k.id == 'nope')", "ai.keys.only(['key-2'])"}, map[string]int{"Bearer sk-b": 6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envConfig{openAIKeys: threeKeys, opts: []Option{WithKeySelection(tc.exprs...)}})
			require.Equal(t, tc.want, keyShares(t, e, 6))
		})
	}
	t.Run("keys left out are not tried", func(t *testing.T) {
		e := newEnv(t, envConfig{openAIKeys: threeKeys, opts: []Option{WithKeySelection("ai.keys.only(['key-2'])")}})
		e.oa.Enqueue(providertest.Error(providers.FormatOpenAI, 500, "boom"))
		resp, body := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(body))
		require.Equal(t, 1, e.oa.Count())
	})
	t.Run("no key selected skips the provider", func(t *testing.T) {
		e := newEnv(t, envConfig{openAIKeys: threeKeys, opts: []Option{WithKeySelection("ai.keys.filter(k, k.weight > 5)")}})
		resp, body := e.post(t, "/v1/chat/completions", `{"model":"gpt-4o","models":["claude-sonnet-4-5"],"messages":[{"role":"user","content":"Hi"}]}`)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		ev := e.events.last(t)
		require.Equal(t, AttemptSkippedKeySelection, ev.Attempts[0].Error)
		require.Equal(t, "anthropic:claude-sonnet-4-5", ev.ServedBy)
	})
	t.Run("an error fails the request", func(t *testing.T) {
		e := newEnv(t, envConfig{openAIKeys: threeKeys, opts: []Option{WithKeySelection("ai.keys.filter(k, int(request.header('x-n')) > 0)")}})
		resp, body := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"), "X-N", "many")
		require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, string(body))
		require.Equal(t, "model_selection_failed", decodeOpenAIError(t, body).Error.Code)
		require.Zero(t, e.oa.Count())
	})
}

func TestMetricsSurviveReload(t *testing.T) {
	opts := []Option{WithProvider(ProviderConfig{ID: "openai", Keys: []ProviderKey{{Value: "sk-a"}}})}
	gw, err := New(opts...)
	require.NoError(t, err)
	defer gw.Close()
	rec := gw.Metrics()
	require.NotNil(t, rec)
	rec.Key("openai", "key-1").Observe(time.Second, metrics.Outcome{Status: 200})
	require.NoError(t, gw.Reload(append(opts, WithKeySelection("round_robin"))...))
	require.Same(t, rec, gw.Metrics(), "a reload keeps the history")
	require.Same(t, rec.Key("openai", "key-1"), gw.routing.Load().upstreams["openai"].keys[0].series)

	own, err := metrics.NewRecorder(metrics.Options{})
	require.NoError(t, err)
	require.NoError(t, gw.Reload(append(opts, WithMetrics(own))...))
	require.Same(t, own, gw.Metrics())
	_, err = New(WithMetrics(nil))
	require.ErrorContains(t, err, "recorder is nil")
}
