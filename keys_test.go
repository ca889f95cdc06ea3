package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	anthropicsdk "github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	openaisdk "github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/keys"
)

// keyEnv is a gateway with gateway API keys in a memory store.
type keyEnv struct {
	*testEnv
	store *keys.MemoryStore
}

func newKeyEnv(t *testing.T, o KeyStoreOptions, opts ...Option) *keyEnv {
	t.Helper()
	store := keys.NewMemoryStore()
	if o.Endpoint == "" {
		o.Endpoint = "gw"
	}
	e := newEnv(t, envConfig{opts: append([]Option{WithKeyStore(store, o)}, opts...)})
	return &keyEnv{testEnv: e, store: store}
}

// key creates a gateway key of endpoint with edit applied, and returns it
// with its token.
func (e *keyEnv) key(t *testing.T, endpoint string, edit func(*keys.Key)) (keys.Key, string) {
	t.Helper()
	k, token, err := keys.NewKey(endpoint)
	require.NoError(t, err)
	if edit != nil {
		edit(&k)
	}
	k, err = e.store.Create(context.Background(), k)
	require.NoError(t, err)
	return k, token
}

func TestGatewayKeysWithSDKs(t *testing.T) {
	e := newKeyEnv(t, KeyStoreOptions{})
	k, token := e.key(t, "gw", nil)

	oc := openaisdk.NewClient(ooption.WithBaseURL(e.srv.URL+"/v1/"), ooption.WithAPIKey(token), ooption.WithMaxRetries(0))
	_, err := oc.Chat.Completions.New(context.Background(), openaisdk.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: []openaisdk.ChatCompletionMessageParamUnion{openaisdk.UserMessage("Hi")}})
	require.NoError(t, err)
	ev := e.events.last(t)
	require.NotNil(t, ev.Principal)
	require.Equal(t, k.ID, ev.Principal.KeyID)

	ac := anthropicsdk.NewClient(aoption.WithBaseURL(e.srv.URL), aoption.WithAPIKey(token), aoption.WithMaxRetries(0))
	_, err = ac.Messages.New(context.Background(), anthropicsdk.MessageNewParams{Model: "claude-haiku-4-5", MaxTokens: 16,
		Messages: []anthropicsdk.MessageParam{anthropicsdk.NewUserMessage(anthropicsdk.NewTextBlock("Hi"))}})
	require.NoError(t, err)

	for _, r := range append(e.oa.Requests(), e.an.Requests()...) {
		require.NotContains(t, r.Header.Get("Authorization")+r.Header.Get("X-Api-Key"), token, "the gateway key never goes upstream")
		require.NotContains(t, string(r.Body), token)
	}
	require.Equal(t, "Bearer sk-oa-1", e.oa.Requests()[0].Header.Get("Authorization"), "the configured key does")

	// A bad token through the SDK is a 401 the SDK reports as such.
	bad := openaisdk.NewClient(ooption.WithBaseURL(e.srv.URL+"/v1/"), ooption.WithAPIKey("lg-"+strings.Repeat("A", 43)), ooption.WithMaxRetries(0))
	_, err = bad.Chat.Completions.New(context.Background(), openaisdk.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: []openaisdk.ChatCompletionMessageParamUnion{openaisdk.UserMessage("Hi")}})
	var apiErr *openaisdk.Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)

	// Close flushes last-used times.
	require.NoError(t, e.gw.Close())
	got, err := e.store.Get(context.Background(), k.ID)
	require.NoError(t, err)
	require.False(t, got.LastUsed.IsZero())
}

func TestGatewayKeysErrors(t *testing.T) {
	e := newKeyEnv(t, KeyStoreOptions{Cache: keys.CacheOptions{TTL: -1, NegativeTTL: -1}})
	_, good := e.key(t, "gw", nil)
	_, other := e.key(t, "another-gateway", nil)
	_, expired := e.key(t, "gw", func(k *keys.Key) { k.ExpiresAt = time.Now().Add(-time.Minute) })
	deleted, deletedToken := e.key(t, "gw", nil)
	require.NoError(t, e.store.Delete(context.Background(), deleted.ID))
	_, onlyAnthropic := e.key(t, "gw", func(k *keys.Key) { k.AllowedProviders = []string{"anthropic"} })
	_, onlyMini := e.key(t, "gw", func(k *keys.Key) { k.AllowedModels = []string{"openai:gpt-4o-mini"} })

	for _, tc := range []struct {
		name, path, body string
		header           []string
		status           int
		code             string
	}{
		{"no key", "/v1/chat/completions", chatBody("gpt-4o"), nil, 401, "invalid_api_key"},
		{"no key, Anthropic dialect", "/v1/messages", messagesBody("claude-haiku-4-5"), nil, 401, "invalid_api_key"},
		{"a provider key is not a gateway key", "/v1/chat/completions", chatBody("gpt-4o"), []string{"Authorization", "Bearer sk-proj-abc"}, 401, "invalid_api_key"},
		{"unknown token", "/v1/chat/completions", chatBody("gpt-4o"), []string{"Authorization", "Bearer lg-" + strings.Repeat("B", 43)}, 401, "invalid_api_key"},
		{"deleted", "/v1/chat/completions", chatBody("gpt-4o"), []string{"Authorization", "Bearer " + deletedToken}, 401, "invalid_api_key"},
		{"expired", "/v1/messages", messagesBody("claude-haiku-4-5"), []string{"X-Api-Key", expired}, 401, "invalid_api_key"},
		{"other endpoint", "/v1/chat/completions", chatBody("gpt-4o"), []string{"Authorization", "Bearer " + other}, 403, "key_endpoint_mismatch"},
		{"provider not allowed", "/v1/chat/completions", chatBody("gpt-4o"), []string{"Authorization", "Bearer " + onlyAnthropic}, 403, "provider_not_allowed"},
		{"model not allowed", "/v1/chat/completions", chatBody("gpt-4o"), []string{"Authorization", "Bearer " + onlyMini}, 403, "model_not_allowed"},
		{"allowed", "/v1/chat/completions", chatBody("gpt-4o-mini"), []string{"Authorization", "Bearer " + onlyMini}, 200, ""},
		{"good", "/v1/messages", messagesBody("claude-haiku-4-5"), []string{"X-Api-Key", good}, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := e.oa.Count() + e.an.Count()
			resp, body := e.post(t, tc.path, tc.body, tc.header...)
			require.Equal(t, tc.status, resp.StatusCode, string(body))
			if tc.code == "" {
				return
			}
			if strings.HasPrefix(tc.path, "/v1/messages") {
				require.Equal(t, tc.code, decodeAnthropicError(t, body).Error.Code)
			} else {
				require.Equal(t, tc.code, decodeOpenAIError(t, body).Error.Code)
			}
			require.Equal(t, n, e.oa.Count()+e.an.Count(), "nothing sent upstream")
			for i := 1; i < len(tc.header); i += 2 {
				require.NotContains(t, string(body), strings.TrimPrefix(tc.header[i], "Bearer "), "no token in errors")
			}
		})
	}
	t.Run("models outside the allow-list are rejected, the rest served", func(t *testing.T) {
		resp, body := e.post(t, "/v1/chat/completions", `{"model":"gpt-4o","models":["gpt-4o-mini"],"messages":[{"role":"user","content":"Hi"}]}`,
			"Authorization", "Bearer "+onlyMini)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		require.Equal(t, "openai:gpt-4o-mini", resp.Header.Get(HeaderModel))
		require.Contains(t, resp.Header.Get(HeaderRejectedModels), "openai:gpt-4o")
	})
}

// failingStore is a key store whose lookups fail.
type failingStore struct{ *keys.MemoryStore }

func (failingStore) Lookup(context.Context, [32]byte) (keys.Key, []keys.AttachedKey, error) {
	return keys.Key{}, nil, errors.Join(keys.ErrUnavailable, errors.New("connection refused"))
}

func TestGatewayKeysStoreOutage(t *testing.T) {
	e := newEnv(t, envConfig{opts: []Option{WithKeyStore(failingStore{keys.NewMemoryStore()}, KeyStoreOptions{Endpoint: "gw"})}})
	resp, body := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"), "Authorization", "Bearer lg-"+strings.Repeat("C", 43))
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(body))
	require.Equal(t, "auth_unavailable", decodeOpenAIError(t, body).Error.Code)
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
	require.Empty(t, resp.Header.Get("X-Should-Retry"), "retryable")
}

func TestGatewayKeysOptional(t *testing.T) {
	e := newKeyEnv(t, KeyStoreOptions{Optional: true})
	resp, body := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Nil(t, e.events.last(t).Principal)
	resp, body = e.post(t, "/v1/chat/completions", chatBody("gpt-4o"), "Authorization", "Bearer lg-"+strings.Repeat("D", 43))
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a token that looks like a gateway key is always checked: %s", body)
}

func TestAttachedProviderKeys(t *testing.T) {
	sealer, err := keys.NewSealer(keys.KEK{ID: "kek-1", Key: [32]byte{1, 2, 3}})
	require.NoError(t, err)
	e := newKeyEnv(t, KeyStoreOptions{Sealer: sealer})
	k, token := e.key(t, "gw", nil)
	const attachedSecret = "sk-attached-team-key-123456"
	for _, secret := range []string{"sk-older-team-key-000000", attachedSecret} {
		a, err := sealer.NewAttached(k.ID, "openai", secret)
		require.NoError(t, err)
		_, err = e.store.Attach(context.Background(), a)
		require.NoError(t, err)
		time.Sleep(2 * time.Millisecond) // distinct creation times: newest first
	}
	resp, body := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"), "Authorization", "Bearer "+token)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "Bearer "+attachedSecret, e.oa.Requests()[0].Header.Get("Authorization"), "the newest attached key replaces the configured ones")
	ev := e.events.last(t)
	evJSON, err := json.Marshal(ev)
	require.NoError(t, err)
	require.NotContains(t, string(evJSON), attachedSecret)
	require.NotContains(t, string(evJSON), token)
	require.True(t, strings.HasPrefix(ev.Attempts[0].KeyID, "pk_"))

	// Without the sealer the provider is skipped, saying why.
	e2 := newEnv(t, envConfig{opts: []Option{WithKeyStore(e.store, KeyStoreOptions{Endpoint: "gw"})}})
	resp, body = e2.post(t, "/v1/chat/completions", chatBody("gpt-4o"), "Authorization", "Bearer "+token)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(body))
	require.Contains(t, e2.events.last(t).Attempts[0].Reason, "no key-encryption key")
}

func TestAuthenticator(t *testing.T) {
	auth := AuthenticatorFunc(func(r *http.Request) (Principal, error) {
		switch r.Header.Get("X-User") {
		case "alice":
			return Principal{Subject: "alice", Account: "team-a"}, nil
		case "":
			return Principal{}, &Error{Kind: KindUnauthorized, Message: "log in first"}
		}
		return Principal{}, errors.New("identity provider down")
	})
	e := newEnv(t, envConfig{opts: []Option{WithAuthenticator(auth)}})
	resp, body := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"), "X-User", "alice", "Authorization", "Bearer host-session-token-12345")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, &Principal{Subject: "alice", Account: "team-a"}, e.events.last(t).Principal)
	require.Equal(t, "Bearer sk-oa-1", e.oa.Requests()[0].Header.Get("Authorization"))
	resp, body = e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, string(body))
	resp, body = e.post(t, "/v1/chat/completions", chatBody("gpt-4o"), "X-User", "bob")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(body))
	require.NotContains(t, string(body), "identity provider down", "the cause stays in the event")

	_, err := New(WithAuthenticator(auth), WithKeyStore(keys.NewMemoryStore(), KeyStoreOptions{Endpoint: "x"}))
	require.ErrorContains(t, err, "exclusive")
	_, err = New(WithKeyStore(keys.NewMemoryStore(), KeyStoreOptions{}))
	require.ErrorContains(t, err, "endpoint name is required")
}

func TestGatewayKeysRevocationAndReload(t *testing.T) {
	e := newKeyEnv(t, KeyStoreOptions{})
	k, token := e.key(t, "gw", nil)
	post := func() int {
		resp, _ := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"), "Authorization", "Bearer "+token)
		return resp.StatusCode
	}
	require.Equal(t, http.StatusOK, post())
	// The memory store watches: a deletion reaches the cache at once.
	require.NoError(t, e.store.Delete(context.Background(), k.ID))
	require.Eventually(t, func() bool { return post() == http.StatusUnauthorized }, 5*time.Second, 5*time.Millisecond)

	k2, token2 := e.key(t, "gw", nil)
	_ = k2
	token = token2
	require.Equal(t, http.StatusOK, post())
	before := e.gw.routing.Load().auth
	base := []Option{
		WithProvider(ProviderConfig{ID: "openai", BaseURL: e.oa.URL, Keys: []ProviderKey{{Value: "sk-oa-1"}}}),
		WithEventSink(e.events),
	}
	require.NoError(t, e.gw.Reload(append(base, WithKeyStore(e.store, KeyStoreOptions{Endpoint: "gw"}))...))
	require.Same(t, before, e.gw.routing.Load().auth, "same store and options: same cache")
	require.NoError(t, e.gw.Reload(base...))
	require.Nil(t, e.gw.routing.Load().auth)
	select {
	case <-before.done:
	default:
		t.Fatal("the replaced cache's watch still runs")
	}
	resp, body := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
	require.Equal(t, http.StatusOK, resp.StatusCode, "no key store: no key required: %s", body)
}

// BenchmarkAuthenticate measures authentication with a gateway key on a
// cache hit.
func BenchmarkAuthenticate(b *testing.B) {
	store := keys.NewMemoryStore()
	k, token, err := keys.NewKey("gw")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := store.Create(context.Background(), k); err != nil {
		b.Fatal(err)
	}
	gw, err := New(WithKeyStore(store, KeyStoreOptions{Endpoint: "gw"}))
	if err != nil {
		b.Fatal(err)
	}
	defer gw.Close()
	r, _ := http.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	c := call{g: gw, rt: gw.routing.Load(), r: r, format: "openai"}
	c.cfg = c.rt.cfg
	b.ReportAllocs()
	for b.Loop() {
		c.principal = principal{}
		if e := c.authenticate(); e != nil {
			b.Fatal(e)
		}
	}
}

func TestGatewayKeysModelList(t *testing.T) {
	e := newKeyEnv(t, KeyStoreOptions{})
	_, token := e.key(t, "gw", nil)
	get := func(h ...string) int {
		req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/models", nil)
		require.NoError(t, err)
		for i := 0; i+1 < len(h); i += 2 {
			req.Header.Set(h[i], h[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, get())
	require.Equal(t, http.StatusOK, get("Authorization", "Bearer "+token))
}
