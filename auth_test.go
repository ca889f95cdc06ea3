package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/providers"
)

// credentialRecorder is an upstream of either format that records the
// credential of every request and answers 500, so that failover visits
// every candidate of a plan.
type credentialRecorder struct {
	mu   sync.Mutex
	seen map[string][]string // provider → credentials received ("" for none)
}

func (r *credentialRecorder) server(t *testing.T, provider string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		cred := strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
		if k := req.Header.Get("X-Api-Key"); k != "" {
			cred = k
		}
		if k := req.Header.Get("X-Goog-Api-Key"); k != "" {
			cred = k
		}
		r.mu.Lock()
		r.seen[provider] = append(r.seen[provider], cred)
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"error":{"message":"recorded","type":"server_error"}}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestPassThroughScopedScan sends every kind of client credential to a
// plan that visits every keyless catalog provider and two custom ones, and
// proves that under the default scoped mode a credential reaches only the
// providers that can own it.
func TestPassThroughScopedScan(t *testing.T) {
	rec := &credentialRecorder{seen: map[string][]string{}}
	cat, err := New()
	require.NoError(t, err)
	var opts []Option
	var names []string
	for _, cp := range cat.Catalog().Providers() {
		srv := rec.server(t, cp.ID)
		opts = append(opts, WithProvider(ProviderConfig{ID: cp.ID, BaseURL: srv.URL + "/v1/"}))
		names = append(names, cp.ID+":scan-model")
	}
	cat.Close()
	for _, custom := range []struct {
		id   string
		pass bool
	}{{"local-llm", false}, {"byok-proxy", true}} {
		srv := rec.server(t, custom.id)
		opts = append(opts, WithProvider(ProviderConfig{ID: custom.id, BaseURL: srv.URL + "/v1/", PassThrough: custom.pass}))
		names = append(names, custom.id+":scan-model")
	}
	opts = append(opts, WithMaxModels(len(names)), WithMaxAttempts(len(names)))
	gw, err := New(opts...)
	require.NoError(t, err)
	t.Cleanup(func() { gw.Close() })
	e := &testEnv{gw: gw, srv: newServer(t, gw)}

	owners := map[string][]string{ // credential → the catalog providers that may receive it
		"sk-proj-abc123":       {"openai", "deepseek"},
		"sk-abc123":            {"openai", "deepseek"},
		"sk-ant-api03-abc":     {"anthropic"},
		"sk-or-v1-abc":         {"openrouter"},
		"gsk_abc123":           {"groq"},
		"AIzaSyAbc123":         {"google"},
		"host-session-token-1": nil,
		"eyJhbGciOiJIUzI1NiJ9": nil,
	}
	body := `{"model":"` + names[0] + `","models":["` + strings.Join(names[1:], `","`) + `"],"messages":[{"role":"user","content":"Hi"}]}`
	for cred := range owners {
		for _, header := range []string{"Authorization", "X-Api-Key"} {
			value := cred
			if header == "Authorization" {
				value = "Bearer " + cred
			}
			resp, b := e.post(t, "/v1/chat/completions", body, header, value)
			require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(b))
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for provider, creds := range rec.seen {
		for _, cred := range creds {
			switch provider {
			case "local-llm":
				require.Empty(t, cred, "a custom provider without PassThrough never gets a client credential")
			case "byok-proxy":
				require.NotEmpty(t, cred, "an opted-in custom provider gets the client's credential")
			default:
				require.NotEmpty(t, cred, "%s was called without a credential", provider)
				require.Contains(t, owners[cred], provider, "credential %q reached %s, which cannot own it", cred, provider)
			}
		}
	}
	for cred, ps := range owners {
		for _, p := range ps {
			require.Contains(t, rec.seen[p], cred, "%s should have been tried with its own key", p)
		}
	}
	require.Len(t, rec.seen["local-llm"], 2*len(owners), "a keyless custom provider is still tried, without a credential")
}

func TestPassThroughModes(t *testing.T) {
	for _, tc := range []struct {
		mode       PassThroughMode
		wantOpenAI string // the credential OpenAI receives for an Anthropic key
		wantCode   int
	}{
		{mode: PassThroughScoped, wantOpenAI: "", wantCode: http.StatusServiceUnavailable},
		{mode: PassThroughAny, wantOpenAI: "Bearer sk-ant-client", wantCode: http.StatusOK},
		{mode: PassThroughOff, wantOpenAI: "", wantCode: http.StatusOK},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			e := newEnv(t, envConfig{noKeys: true, opts: []Option{WithPassThrough(tc.mode)}})
			resp, body := e.post(t, "/v1/chat/completions", chatBody("openai:gpt-4o"), "Authorization", "Bearer sk-ant-client")
			require.Equal(t, tc.wantCode, resp.StatusCode, string(body))
			if tc.mode == PassThroughScoped {
				require.Zero(t, e.oa.Count(), "skipped, not sent")
				ev := e.events.last(t)
				require.Equal(t, AttemptSkippedCredential, ev.Attempts[0].Error)
				require.Contains(t, ev.Attempts[0].Reason, "not a openai key")
				return
			}
			require.Equal(t, tc.wantOpenAI, e.oa.Requests()[0].Header.Get("Authorization"))
		})
	}
	m, err := ParsePassThroughMode("ANY")
	require.NoError(t, err)
	require.Equal(t, PassThroughAny, m)
	_, err = ParsePassThroughMode("sometimes")
	require.Error(t, err)
}

// headerProvider is a hand-written providers.Provider that records what the
// gateway hands it.
type headerProvider struct {
	mu     sync.Mutex
	header []http.Header
	keys   []providers.Key
}

func (p *headerProvider) Name() string { return "recorder" }
func (p *headerProvider) Surfaces() []providers.Surface {
	return []providers.Surface{providers.SurfaceChatCompletions, providers.SurfaceMessages}
}
func (p *headerProvider) Do(_ context.Context, req *providers.Request, key providers.Key) (*providers.Response, error) {
	p.mu.Lock()
	p.header = append(p.header, req.Header.Clone())
	p.keys = append(p.keys, key)
	p.mu.Unlock()
	body := fmt.Sprintf(`{"id":"x","object":"chat.completion","created":1,"model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}`, req.Model)
	return &providers.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body))}, nil
}

func TestClientHeadersAllowList(t *testing.T) {
	p := &headerProvider{}
	gw, err := New(WithProvider(ProviderConfig{ID: "recorder", Provider: p, Models: []catalogModel{{ID: "m"}}, Keys: []ProviderKey{{Value: "sk-operator"}}}),
		WithForwardHeaders("X-Tenant"))
	require.NoError(t, err)
	defer gw.Close()
	e := &testEnv{gw: gw, srv: newServer(t, gw)}
	resp, body := e.post(t, "/v1/chat/completions", chatBody("recorder:m"),
		"Authorization", "Bearer host-session-token", "Cookie", "session=1", "X-Internal-Secret", "s3cret",
		"X-Forwarded-For", "10.0.0.1", "OpenAI-Organization", "org-1", "OpenAI-Beta", "assistants=v2",
		"Idempotency-Key", "idem-1", "User-Agent", "my-app/1", "X-Tenant", "t1", "Anthropic-Version", "2023-06-01")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	got := p.header[0]
	var names []string
	for k := range got {
		names = append(names, k)
	}
	slices.Sort(names)
	require.Equal(t, []string{"Idempotency-Key", "Openai-Beta", "Openai-Organization", "User-Agent", "X-Tenant"}, names,
		"only the OpenAI allow-list and the operator's additions leave the gateway")
	require.Equal(t, providers.KeyConfigured, p.keys[0].Source)
	require.Equal(t, providers.Secret("sk-operator"), p.keys[0].Secret)

	_, err = New(WithForwardHeaders("Authorization"))
	require.ErrorContains(t, err, "never forwarded")
	_, err = New(WithForwardHeaders("bad header"))
	require.ErrorContains(t, err, "not a valid header name")
}

func TestKeySourceOfPassThrough(t *testing.T) {
	p := &headerProvider{}
	gw, err := New(WithProvider(ProviderConfig{ID: "recorder", Provider: p, Models: []catalogModel{{ID: "m"}}, PassThrough: true}))
	require.NoError(t, err)
	defer gw.Close()
	e := &testEnv{gw: gw, srv: newServer(t, gw)}
	resp, _ := e.post(t, "/v1/chat/completions", chatBody("recorder:m"), "Authorization", "Bearer user-key")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, providers.Key{ID: clientKeyID, Secret: "user-key", Source: providers.KeyClient}, p.keys[0])
}
