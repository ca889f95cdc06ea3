package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/keys"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

func jraw(s string) json.RawMessage { return json.RawMessage(s) }

func TestApplyPolicy(t *testing.T) {
	chat, msgs := providers.SurfaceChatCompletions, providers.SurfaceMessages
	pol := func(rp RequestPolicy) *policy { return compilePolicy(&rp, nil, false) }
	for _, tc := range []struct {
		name    string
		surface providers.Surface
		pol     *policy
		allow   *allowList
		in      string
		keep    string
		want    string
		removed []string
		maxOut  int64
	}{
		{name: "deny", surface: chat, pol: pol(RequestPolicy{Deny: []string{"logit_bias", "seed"}}),
			in:   `{"model":"m","logit_bias":{"1":2},"messages":[],"seed":7}`,
			want: `{"model":"m","messages":[]}`, removed: []string{"logit_bias", "seed"}},
		{name: "deny every copy and case variant", surface: chat, pol: pol(RequestPolicy{Deny: []string{"seed"}}),
			in:   `{"seed":1,"model":"m","SEED":2,"\u0073eed":3,"ſeed":4, "x":1}`,
			want: `{"model":"m", "x":1}`, removed: []string{"seed", "SEED", `"\u017feed"`}},
		{name: "deny the last member", surface: chat, pol: pol(RequestPolicy{Deny: []string{"user"}}),
			in: `{"model":"m" , "user":"u" }`, want: `{"model":"m"  }`, removed: []string{"user"}},
		{name: "set replaces", surface: chat, pol: pol(RequestPolicy{Set: map[string]json.RawMessage{"temperature": jraw(" 0.2 ")}}),
			in: `{"model":"m","temperature":1.5,"messages":[]}`, want: `{"model":"m","temperature":0.2,"messages":[]}`},
		{name: "set replaces the first copy and removes the others", surface: chat,
			pol:  pol(RequestPolicy{Set: map[string]json.RawMessage{"temperature": jraw("0")}}),
			in:   `{"Temperature":2,"model":"m","temperature":1}`,
			want: `{"temperature":0,"model":"m"}`},
		{name: "set adds", surface: chat, pol: pol(RequestPolicy{Set: map[string]json.RawMessage{"top_p": jraw("0.9"), "metadata": jraw(`{ "a" : [1, 2] }`)}}),
			in: `{"model":"m"}`, want: `{"metadata":{"a":[1,2]},"top_p":0.9,"model":"m"}`},
		{name: "set into an emptied object", surface: chat,
			pol: pol(RequestPolicy{Set: map[string]json.RawMessage{"a": jraw("1")}, Deny: []string{"b"}}),
			in:  `{ "b":2 }`, want: `{"a":1 }`, removed: []string{"b"}},
		{name: "set into an empty object", surface: chat, pol: pol(RequestPolicy{Set: map[string]json.RawMessage{"a": jraw("1")}}),
			in: `{}`, want: `{"a":1}`},
		{name: "allow-list", surface: chat, allow: newAllowLists(map[providers.Surface][]string{chat: {"temperature", "Max_Tokens"}})[chat],
			in:      `{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true},"temperature":1,"top_p":1,"max_tokens":9,"user":"u"}`,
			want:    `{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true},"temperature":1,"max_tokens":9}`,
			removed: []string{"top_p", "user"}},
		{name: "empty allow-list keeps what the gateway needs", surface: providers.SurfaceEmbeddings, allow: &allowList{},
			in: `{"model":"e","input":"x","dimensions":8}`, want: `{"model":"e","input":"x"}`, removed: []string{"dimensions"}},
		{name: "set passes the allow-list", surface: chat, allow: &allowList{names: []string{"x"}},
			pol: pol(RequestPolicy{Set: map[string]json.RawMessage{"temperature": jraw("0")}}),
			in:  `{"model":"m","temperature":1,"top_k":3}`, want: `{"model":"m","temperature":0}`, removed: []string{"top_k"}},
		{name: "messages keeps max_tokens", surface: msgs, pol: pol(RequestPolicy{Deny: []string{"max_tokens", "top_k"}}),
			in: `{"model":"c","max_tokens":64,"top_k":5}`, want: `{"model":"c","max_tokens":64}`, removed: []string{"top_k"}},
		{name: "a removed maximum is reported", surface: chat, pol: pol(RequestPolicy{Deny: []string{"max_tokens", "max_completion_tokens"}}),
			in: `{"model":"m","max_tokens":300,"max_completion_tokens":200}`, want: `{"model":"m"}`,
			removed: []string{"max_tokens", "max_completion_tokens"}, maxOut: 200},
		{name: "the bounding field is kept", surface: chat, pol: pol(RequestPolicy{Deny: []string{"max_tokens", "max_completion_tokens"}}),
			keep: "max_completion_tokens",
			in:   `{"model":"m","max_tokens":300,"max_completion_tokens":200}`, want: `{"model":"m","max_completion_tokens":200}`,
			removed: []string{"max_tokens"}, maxOut: 300},
		{name: "odd names are quoted", surface: chat, allow: &allowList{},
			in:      `{"model":"m","a\r\nSet-Cookie: x":1,"b,c":2,"é":3}`,
			want:    `{"model":"m"}`,
			removed: []string{`"a\r\nSet-Cookie: x"`, `"b,c"`, `"\u00e9"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, removed, maxOut := applyPolicy([]byte(tc.in), tc.surface, tc.pol, tc.allow, tc.keep)
			require.Equal(t, tc.want, string(out))
			require.True(t, json.Valid(out))
			require.Equal(t, tc.removed, removed)
			require.Equal(t, tc.maxOut, maxOut)
		})
	}
	t.Run("unchanged bodies are not copied", func(t *testing.T) {
		in := []byte(`{"model":"m","temperature":1}`)
		out, removed, _ := applyPolicy(in, chat, pol(RequestPolicy{Deny: []string{"seed"}, Headers: map[string]string{"X": "1"}}), nil, "")
		require.Same(t, &in[0], &out[0])
		require.Nil(t, removed)
	})
	t.Run("removed names are bounded", func(t *testing.T) {
		var b strings.Builder
		b.WriteString(`{"model":"m"`)
		for i := range 100 {
			b.WriteString(`,"k` + strconv.Itoa(i) + `":1`)
		}
		b.WriteString("}")
		out, removed, _ := applyPolicy([]byte(b.String()), chat, nil, &allowList{}, "")
		require.Equal(t, `{"model":"m"}`, string(out))
		require.Len(t, removed, maxRemovedReported+1)
		require.Equal(t, "…", removed[maxRemovedReported])
	})
}

func TestCompilePolicy(t *testing.T) {
	prov := RequestPolicy{
		Headers: map[string]string{"x-team": "a", "X-Both": "prov"}, QueryParams: map[string]string{"p": "1", "both": "prov"},
		Set:  map[string]json.RawMessage{"temperature": jraw("0.2"), "top_p": jraw("1"), "user": jraw(`"u"`)},
		Deny: []string{"seed", "logit_bias"}, MaxOutputTokens: 500,
	}
	model := RequestPolicy{
		Headers: map[string]string{"X-Both": "model"}, QueryParams: map[string]string{"both": "model"},
		Set:  map[string]json.RawMessage{"TEMPERATURE": jraw("0"), "seed": jraw("1")},
		Deny: []string{"user", "n_probs"}, MaxOutputTokens: 900,
	}
	p := compilePolicy(&prov, &model, false)
	require.Equal(t, http.Header{"X-Team": {"a"}, "X-Both": {"model"}}, p.header)
	require.Equal(t, url.Values{"both": {"model"}}, p.query, "the provider's query is in its transport")
	var set []string
	for _, s := range p.set {
		set = append(set, string(s.member))
	}
	require.Equal(t, []string{`"TEMPERATURE":0`, `"seed":1`, `"top_p":1`}, set, "the model's set wins; what it denies is not set")
	require.Equal(t, []string{"logit_bias", "user", "n_probs"}, p.deny, "what the model sets is not denied")
	require.Equal(t, "temperature", p.set[0].name, "names are matched in lower case")
	require.Equal(t, 900, p.maxOut)
	require.Equal(t, int64(len(`"TEMPERATURE":0`)+len(`"seed":1`)+len(`"top_p":1`)+3), p.setBytes)

	custom := compilePolicy(&prov, &model, true)
	require.Equal(t, url.Values{"p": {"1"}, "both": {"model"}}, custom.query)
	require.Nil(t, compilePolicy(&RequestPolicy{}, nil, false))
	require.Equal(t, 500, compilePolicy(&prov, &RequestPolicy{}, false).maxOut)
}

// policyEnv is a testEnv whose providers carry request policies.
func newPolicyEnv(t *testing.T, oa, an ProviderConfig, opts ...Option) *testEnv {
	t.Helper()
	e := &testEnv{oa: providertest.Start(t, providers.FormatOpenAI), an: providertest.Start(t, providers.FormatAnthropic),
		events: &eventLog{ch: make(chan *Event, 64)}}
	oa.ID, oa.BaseURL, oa.Keys = "openai", e.oa.URL, []ProviderKey{{Value: "sk-oa-1"}}
	an.ID, an.BaseURL, an.Keys = "anthropic", e.an.URL, []ProviderKey{{Value: "sk-an-1"}}
	gw, err := New(append([]Option{WithProvider(oa), WithProvider(an), WithEventSink(e.events)}, opts...)...)
	require.NoError(t, err)
	e.gw = gw
	e.srv = httptest.NewServer(gw)
	t.Cleanup(func() {
		e.srv.Close()
		_ = gw.Close()
	})
	return e
}

// lastUpstream returns the newest request either fake received.
func (e *testEnv) lastUpstream(t *testing.T) providertest.Recorded {
	t.Helper()
	var last providertest.Recorded
	for _, r := range append(e.oa.Requests(), e.an.Requests()...) {
		if last.Time.Before(r.Time) {
			last = r
		}
	}
	require.NotEmpty(t, last.Body, "no upstream request")
	return last
}

func TestRequestPolicy(t *testing.T) {
	oa := ProviderConfig{
		Headers:     map[string]string{"X-Config": "config"},
		QueryParams: map[string]string{"tenant": "t1"},
		Policy: RequestPolicy{
			Headers: map[string]string{"X-Team": "platform", "X-Config": "policy"}, QueryParams: map[string]string{"api-version": "2024"},
			Set: map[string]json.RawMessage{"temperature": jraw("0.2")}, Deny: []string{"logit_bias"},
		},
		ModelPolicies: map[string]RequestPolicy{
			"gpt-4o": {Headers: map[string]string{"X-Team": "research"}, QueryParams: map[string]string{"api-version": "2025"},
				Set: map[string]json.RawMessage{"temperature": jraw("0")}, Deny: []string{"seed", "max_tokens"}, MaxOutputTokens: 100},
		},
	}
	an := ProviderConfig{ModelPolicies: map[string]RequestPolicy{
		"claude-haiku-4-5": {Headers: map[string]string{"Anthropic-Beta": "context-1m-2025-08-07"},
			Set: map[string]json.RawMessage{"temperature": jraw("0.5")}, Deny: []string{"top_p"}, MaxOutputTokens: 256},
	}}
	e := newPolicyEnv(t, oa, an, WithParamAllowList(providers.SurfaceResponses, "temperature"))

	for _, tc := range []struct {
		name, path, body string
		header           []string
		wantBody         map[string]any // nil value: absent
		wantHeader       map[string]string
		wantQuery        string
		removed          string
		maxOutHeader     string
	}{
		{name: "provider policy", path: "/v1/chat/completions",
			body:       chatBody("gpt-4o-mini", `"temperature":1.5`, `"logit_bias":{"50256":-100}`, `"seed":7`, `"max_tokens":300`),
			wantBody:   map[string]any{"temperature": 0.2, "logit_bias": nil, "seed": 7.0, "max_tokens": 300.0, "model": "gpt-4o-mini"},
			wantHeader: map[string]string{"X-Team": "platform", "X-Config": "policy", "Authorization": "Bearer sk-oa-1"},
			wantQuery:  "api-version=2024&tenant=t1", removed: "logit_bias"},
		{name: "model policy", path: "/v1/chat/completions",
			body: chatBody("gpt-4o", `"temperature":1.5`, `"logit_bias":{"50256":-100}`, `"seed":7`, `"max_tokens":300`),
			wantBody: map[string]any{"temperature": 0.0, "logit_bias": nil, "seed": nil, "max_tokens": nil,
				"max_completion_tokens": 100.0},
			wantHeader: map[string]string{"X-Team": "research", "X-Config": "policy"},
			wantQuery:  "api-version=2025&tenant=t1", removed: "logit_bias, seed, max_tokens", maxOutHeader: "100; reason=policy"},
		{name: "a removed maximum still bounds the answer", path: "/v1/chat/completions",
			body:     chatBody("gpt-4o", `"max_tokens":40`),
			wantBody: map[string]any{"max_tokens": nil, "max_completion_tokens": 40.0}, removed: "max_tokens",
			wantHeader: map[string]string{"X-Team": "research"}, wantQuery: "api-version=2025&tenant=t1"},
		{name: "clamp adds the field", path: "/v1/chat/completions", body: chatBody("gpt-4o"),
			wantBody: map[string]any{"max_completion_tokens": 100.0, "temperature": 0.0}, maxOutHeader: "100; reason=policy",
			wantQuery: "api-version=2025&tenant=t1"},
		{name: "stream", path: "/v1/chat/completions", body: chatBody("gpt-4o", `"stream":true`, `"seed":1`),
			wantBody:  map[string]any{"stream": true, "stream_options": map[string]any{"include_usage": true}, "seed": nil},
			wantQuery: "api-version=2025&tenant=t1", removed: "seed", maxOutHeader: "100; reason=policy"},
		{name: "allow-list", path: "/v1/responses",
			body:     `{"model":"gpt-4o-mini","input":"hi","temperature":1,"top_p":0.5,"store":false,"max_output_tokens":50}`,
			wantBody: map[string]any{"input": "hi", "temperature": 0.2, "top_p": nil, "store": nil, "max_output_tokens": 50.0},
			removed:  "top_p, store", wantQuery: "api-version=2024&tenant=t1"},
		{name: "translated", path: "/v1/chat/completions",
			body:     chatBody("anthropic:claude-haiku-4-5", `"temperature":0.9`, `"top_p":0.5`, `"seed":1`),
			wantBody: map[string]any{"temperature": 0.5, "top_p": nil, "seed": nil, "max_tokens": 256.0, "model": "claude-haiku-4-5"},
			removed:  "seed, top_p", maxOutHeader: "256; reason=policy",
			wantHeader: map[string]string{"Anthropic-Beta": "context-1m-2025-08-07", "X-Team": "", "X-Api-Key": "sk-an-1"}},
		{name: "native anthropic", path: "/v1/messages",
			body:       messagesBody("claude-haiku-4-5", `"top_p":0.5`, `"top_k":3`),
			header:     []string{"Anthropic-Beta", "prompt-caching-2024-07-31"},
			wantBody:   map[string]any{"temperature": 0.5, "top_p": nil, "top_k": 3.0, "max_tokens": 64.0},
			wantHeader: map[string]string{"Anthropic-Beta": "prompt-caching-2024-07-31,context-1m-2025-08-07"},
			removed:    "top_p"},
		{name: "no policy", path: "/v1/messages", body: messagesBody("claude-sonnet-4-5", `"top_p":0.5`),
			wantBody: map[string]any{"top_p": 0.5, "temperature": nil}, wantHeader: map[string]string{"Anthropic-Beta": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.post(t, tc.path, tc.body, tc.header...)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			require.Equal(t, tc.removed, resp.Header.Get(HeaderRemovedParams))
			require.Equal(t, tc.maxOutHeader, resp.Header.Get(HeaderMaxOutputTokens))
			ev := e.events.find(t, resp.Header.Get(HeaderRequestID))
			require.Equal(t, tc.removed, strings.Join(ev.RemovedParams, ", "))

			up := e.lastUpstream(t)
			var sent map[string]any
			require.NoError(t, json.Unmarshal(up.Body, &sent), string(up.Body))
			for k, want := range tc.wantBody {
				got, ok := sent[k]
				if want == nil {
					require.False(t, ok, "%s sent: %s", k, up.Body)
					continue
				}
				require.Equal(t, want, got, "%s: %s", k, up.Body)
			}
			for k, want := range tc.wantHeader {
				require.Equal(t, want, strings.Join(up.Header.Values(k), ","), k)
			}
			require.Equal(t, tc.wantQuery, up.RawQuery)
		})
	}
}

func TestRequestPolicyClampAndTokenLimits(t *testing.T) {
	for _, tc := range []struct {
		name       string
		limit      int
		body       string
		wantSent   float64
		wantHeader string
	}{
		{"clamp below the limit", 200, chatBody("gpt-4o"), 100, "100; reason=policy"},
		{"limit below the clamp", 80, chatBody("gpt-4o"), 80, "80; reason=limit"},
		{"client below both", 200, chatBody("gpt-4o", `"max_completion_tokens":30`), 30, ""},
		{"no clamp for other models", 200, chatBody("gpt-4o-mini"), 200, "200; reason=limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newPolicyEnv(t, ProviderConfig{ModelPolicies: map[string]RequestPolicy{"gpt-4o": {MaxOutputTokens: 100}}}, ProviderConfig{},
				WithTokenLimits(0, tc.limit))
			resp, body := e.post(t, "/v1/chat/completions", tc.body)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			require.Equal(t, tc.wantHeader, resp.Header.Get(HeaderMaxOutputTokens))
			var sent map[string]any
			require.NoError(t, json.Unmarshal(e.lastUpstream(t).Body, &sent))
			require.Equal(t, tc.wantSent, sent["max_completion_tokens"])
		})
	}
}

// TestRequestPolicyClampSizesCreditHolds: a model's clamp bounds the
// worst case the hold covers, so a short balance pays for the clamped
// answer in full where it must lower an unclamped one.
func TestRequestPolicyClampSizesCreditHolds(t *testing.T) {
	ledger := credits.NewMemory(credits.MemoryOptions{})
	store := keys.NewMemoryStore()
	oa := providertest.Start(t, providers.FormatOpenAI)
	twin := pricedChat
	twin.ID = "priced-chat-twin"
	gw, err := New(
		WithProvider(ProviderConfig{ID: "openai", BaseURL: oa.URL, Keys: []ProviderKey{{Value: "sk-oa-1"}},
			Models:        []catalog.Model{pricedChat, twin},
			ModelPolicies: map[string]RequestPolicy{"priced-chat": {MaxOutputTokens: 100, Set: map[string]json.RawMessage{"temperature": jraw("0")}}}}),
		WithKeyStore(store, KeyStoreOptions{Endpoint: "gw"}),
		WithMetering(ledger, MeteringOptions{Credits: true}),
	)
	require.NoError(t, err)
	srv := httptest.NewServer(gw)
	t.Cleanup(func() {
		srv.Close()
		_ = gw.Close()
	})
	k, token, err := keys.NewKey("gw")
	require.NoError(t, err)
	k.Account = "acme"
	_, err = store.Create(context.Background(), k)
	require.NoError(t, err)
	_, err = ledger.Purchase(context.Background(), credits.Purchase{ID: "p", Account: "acme", Amount: 5 * credits.Dollar})
	require.NoError(t, err)
	// Leave 2000 µ$: the prompt's bound (~100 tokens at $2/M) and 100
	// output tokens at $8/M fit; 1000 output tokens (the catalog's
	// maximum) do not.
	_, err = ledger.Reserve(context.Background(), credits.Reservation{ID: "other", Account: "acme",
		Min: 5*credits.Dollar - 2000, Max: 5*credits.Dollar - 2000, TTL: time.Hour})
	require.NoError(t, err)

	post := func(model string) (*http.Response, map[string]any) {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(chatBody(model)))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		reqs := oa.Requests()
		var sent map[string]any
		require.NoError(t, json.Unmarshal(reqs[len(reqs)-1].Body, &sent))
		return resp, sent
	}
	resp, sent := post("priced-chat")
	require.Equal(t, "100; reason=policy", resp.Header.Get(HeaderMaxOutputTokens), "the hold covered the clamped worst case")
	require.Equal(t, 100.0, sent["max_completion_tokens"])
	require.Equal(t, 0.0, sent["temperature"])

	resp, sent = post("priced-chat-twin")
	h := resp.Header.Get(HeaderMaxOutputTokens)
	require.True(t, strings.HasSuffix(h, "; reason=credits"), h)
	n, err := strconv.Atoi(strings.TrimSuffix(h, "; reason=credits"))
	require.NoError(t, err)
	require.Less(t, n, 1000)
	require.EqualValues(t, n, sent["max_completion_tokens"])
}

func TestRequestPolicyMaxOutFor(t *testing.T) {
	gw, err := New(WithProvider(ProviderConfig{ID: "openai", Keys: []ProviderKey{{Value: "k"}},
		Policy:        RequestPolicy{MaxOutputTokens: 1_000_000},
		ModelPolicies: map[string]RequestPolicy{"gpt-4o": {MaxOutputTokens: 300}}}),
		WithMetering(credits.NewMemory(credits.MemoryOptions{}), MeteringOptions{Credits: true}))
	require.NoError(t, err)
	defer gw.Close()
	rt := gw.routing.Load()
	up := rt.upstreams["openai"]
	cand := func(id string) candidate {
		m, ok := up.cat.Model(id)
		require.True(t, ok)
		return candidate{up: up, model: m, upstreamModel: m.ID}
	}
	for _, tc := range []struct {
		name         string
		model        string
		client, cap_ int64
		want         int64
	}{
		{"model clamp", "gpt-4o", 0, 0, 300},
		{"client below", "gpt-4o", 200, 0, 200},
		{"cap below", "gpt-4o", 0, 100, 100},
		{"provider clamp above the catalog", "gpt-4o-mini", 0, 0, int64(cand("gpt-4o-mini").model.MaxOutputTokens)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &call{rt: rt, cfg: rt.cfg, parsed: parsedBody{maxOut: tc.client}, outCap: tc.cap_}
			cd := cand(tc.model)
			require.Equal(t, tc.want, c.maxOutFor(&cd))
		})
	}
	require.Positive(t, cand("gpt-4o-mini").model.MaxOutputTokens)
	unknown := candidate{up: up, upstreamModel: "brand-new"}
	require.Equal(t, 1_000_000, unknown.maxOutputTokens(), "unknown models get the provider's policy")
}

// recordingProvider is a custom transport that records its requests.
type recordingProvider struct {
	mu   sync.Mutex
	reqs []providers.Request
}

func (p *recordingProvider) Name() string { return "rec" }
func (p *recordingProvider) Surfaces() []providers.Surface {
	return []providers.Surface{providers.SurfaceChatCompletions}
}
func (p *recordingProvider) Do(_ context.Context, req *providers.Request, _ providers.Key) (*providers.Response, error) {
	p.mu.Lock()
	p.reqs = append(p.reqs, *req)
	p.mu.Unlock()
	step := providertest.OpenAIChat(req.Model, "ok", providertest.Usage{Input: 1, Output: 1})
	return &providers.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(string(step.Body)))}, nil
}

func TestRequestPolicyCustomProvider(t *testing.T) {
	rec := &recordingProvider{}
	gw, err := New(WithProvider(ProviderConfig{ID: "mine", Provider: rec, Models: []catalog.Model{{ID: "m1"}, {ID: "m2"}},
		Policy: RequestPolicy{Headers: map[string]string{"x-a": "prov", "X-B": "prov"}, QueryParams: map[string]string{"q": "prov", "r": "prov"}},
		ModelPolicies: map[string]RequestPolicy{"m2": {Headers: map[string]string{"X-B": "model"}, QueryParams: map[string]string{"r": "model"},
			Deny: []string{"user"}}},
	}))
	require.NoError(t, err)
	defer gw.Close()
	e := &testEnv{gw: gw, srv: newServer(t, gw)}
	for _, model := range []string{"mine:m1", "mine:m2"} {
		resp, body := e.post(t, "/v1/chat/completions", chatBody(model, `"user":"u"`))
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	}
	require.Len(t, rec.reqs, 2)
	require.Equal(t, http.Header{"X-A": {"prov"}, "X-B": {"prov"}}, rec.reqs[0].ExtraHeader)
	require.Equal(t, url.Values{"q": {"prov"}, "r": {"prov"}}, rec.reqs[0].ExtraQuery)
	require.Contains(t, string(rec.reqs[0].Body), `"user":"u"`)
	require.Equal(t, http.Header{"X-A": {"prov"}, "X-B": {"model"}}, rec.reqs[1].ExtraHeader)
	require.Equal(t, url.Values{"q": {"prov"}, "r": {"model"}}, rec.reqs[1].ExtraQuery)
	require.NotContains(t, string(rec.reqs[1].Body), `"user":"u"`)
}

func TestRequestPolicyValidation(t *testing.T) {
	withPolicy := func(p RequestPolicy, models map[string]RequestPolicy) Option {
		return WithProvider(ProviderConfig{ID: "openai", Policy: p, ModelPolicies: models})
	}
	for _, tc := range []struct {
		name  string
		opt   Option
		field string
		want  string
	}{
		{"header name", withPolicy(RequestPolicy{Headers: map[string]string{"Bad Name": "v"}}, nil), `Policy.Headers["Bad Name"]`, "not a valid header name"},
		{"managed header", withPolicy(RequestPolicy{Headers: map[string]string{"content-type": "text/plain"}}, nil), `Policy.Headers["content-type"]`, "managed by the provider"},
		{"header value", withPolicy(RequestPolicy{Headers: map[string]string{"X-A": "a\r\nb"}}, nil), `Policy.Headers["X-A"]`, "control characters"},
		{"query name", withPolicy(RequestPolicy{QueryParams: map[string]string{"": "v"}}, nil), `Policy.QueryParams[""]`, "must not be empty"},
		{"set model", withPolicy(RequestPolicy{Set: map[string]json.RawMessage{"Model": jraw(`"x"`)}}, nil), `Policy.Set["Model"]`, "routes on it"},
		{"set stream", withPolicy(RequestPolicy{Set: map[string]json.RawMessage{"stream": jraw("true")}}, nil), `Policy.Set["stream"]`, "cannot be set"},
		{"set max", withPolicy(RequestPolicy{Set: map[string]json.RawMessage{"max_tokens": jraw("5")}}, nil), `Policy.Set["max_tokens"]`, "MaxOutputTokens"},
		{"set empty name", withPolicy(RequestPolicy{Set: map[string]json.RawMessage{"": jraw("5")}}, nil), `Policy.Set[""]`, "must not be empty"},
		{"set invalid JSON", withPolicy(RequestPolicy{Set: map[string]json.RawMessage{"temperature": jraw("0.2,")}}, nil), `Policy.Set["temperature"]`, "not valid JSON"},
		{"set nothing", withPolicy(RequestPolicy{Set: map[string]json.RawMessage{"temperature": nil}}, nil), `Policy.Set["temperature"]`, "not valid JSON"},
		{"set twice", withPolicy(RequestPolicy{Set: map[string]json.RawMessage{"top_p": jraw("1"), "Top_P": jraw("1")}}, nil), `Policy.Set["top_p"]`, "differ only in case"},
		{"deny messages", withPolicy(RequestPolicy{Deny: []string{"seed", "Messages"}}, nil), "Policy.Deny[1]", "gateway needs it"},
		{"deny empty", withPolicy(RequestPolicy{Deny: []string{""}}, nil), "Policy.Deny[0]", "must not be empty"},
		{"deny and set", withPolicy(RequestPolicy{Deny: []string{"seed"}, Set: map[string]json.RawMessage{"seed": jraw("1")}}, nil), "Policy.Deny[0]", "both denied and set"},
		{"negative clamp", withPolicy(RequestPolicy{MaxOutputTokens: -1}, nil), "Policy.MaxOutputTokens", "negative"},
		{"model clamp", withPolicy(RequestPolicy{}, map[string]RequestPolicy{"gpt-4o": {MaxOutputTokens: -5}}), `ModelPolicies["gpt-4o"].MaxOutputTokens`, "negative"},
		{"model set", withPolicy(RequestPolicy{}, map[string]RequestPolicy{"gpt-4o": {Set: map[string]json.RawMessage{"input": jraw("1")}}}), `ModelPolicies["gpt-4o"].Set["input"]`, "cannot be set"},
		{"unknown model", withPolicy(RequestPolicy{}, map[string]RequestPolicy{"gpt-nope": {MaxOutputTokens: 5}}), `ModelPolicies["gpt-nope"]`, "unknown model"},
		{"empty model", withPolicy(RequestPolicy{}, map[string]RequestPolicy{" ": {MaxOutputTokens: 5}}), `ModelPolicies[" "]`, "model ID is empty"},
		{"same model twice", withPolicy(RequestPolicy{}, map[string]RequestPolicy{"gpt-4o": {}, "GPT-4O": {}}), `ModelPolicies["gpt-4o"]`, "configures too"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw, err := New(tc.opt)
			require.Nil(t, gw)
			require.ErrorContains(t, err, tc.want)
			oes := OptionErrors(err)
			require.Len(t, oes, 1, "%v", err)
			require.Equal(t, "WithProvider", oes[0].Option)
			require.Equal(t, "openai", oes[0].Provider)
			require.Equal(t, tc.field, oes[0].Field)
		})
	}
	t.Run("allow-list", func(t *testing.T) {
		_, err := New(WithParamAllowList("chat_completions", "a"), WithParamAllowList(providers.SurfaceMessages, "a", ""))
		oes := OptionErrors(err)
		require.Len(t, oes, 2, "%v", err)
		require.Equal(t, OptionError{Option: "WithParamAllowList", Field: "chat_completions", Err: oes[0].Err}, *oes[0])
		require.ErrorContains(t, oes[0], "unknown API surface")
		require.Equal(t, "messages[1]", oes[1].Field)
	})
	t.Run("disabled providers are not checked", func(t *testing.T) {
		gw, err := New(WithProvider(ProviderConfig{ID: "groq", Disabled: true, Policy: RequestPolicy{MaxOutputTokens: -1}}))
		require.NoError(t, err)
		require.NoError(t, gw.Close())
	})
	t.Run("valid", func(t *testing.T) {
		gw, err := New(withPolicy(RequestPolicy{Headers: map[string]string{"OpenAI-Beta": "x"}, Set: map[string]json.RawMessage{"temperature": jraw("0")}},
			map[string]RequestPolicy{"gpt-4o-2024-08-06": {Deny: []string{"seed"}}}), WithParamAllowList(providers.SurfaceEmbeddings))
		require.NoError(t, err)
		require.NoError(t, gw.Close())
	})
}

func TestRequestPolicyOptionCopiesItsArgument(t *testing.T) {
	set := map[string]json.RawMessage{"temperature": jraw("0.5")}
	deny := []string{"seed"}
	models := map[string]RequestPolicy{"gpt-4o": {Set: set, Deny: deny}}
	opt := WithProvider(ProviderConfig{ID: "openai", Policy: RequestPolicy{Set: set, Deny: deny}, ModelPolicies: models})
	set["temperature"][0] = '1'
	deny[0] = "user"
	models["gpt-4o"] = RequestPolicy{}
	gw, err := New(opt)
	require.NoError(t, err)
	defer gw.Close()
	up := gw.routing.Load().upstreams["openai"]
	require.Equal(t, `"temperature":0.5`, string(up.policy.set[0].member))
	require.Equal(t, []string{"seed"}, up.policy.deny)
	require.Len(t, up.modelPolicies, 1)
}
