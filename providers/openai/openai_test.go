package openai_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/openai"
	"github.com/llmgate/gateway/providers/providertest"
)

const secret = "sk-test-SECRET-9f8e7d"

func newProvider(t *testing.T, cfg openai.Config) *openai.Provider {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	p, err := openai.New(cfg)
	require.NoError(t, err)
	t.Cleanup(p.CloseIdleConnections)
	return p
}

func chatRequest(stream bool, header http.Header) *providers.Request {
	body := `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	if stream {
		body = `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}`
	}
	return &providers.Request{Surface: providers.SurfaceChatCompletions, Model: "m", Body: []byte(body), Stream: stream, Header: header}
}

// send performs one Do against s and returns the recorded upstream request.
func send(t *testing.T, s *providertest.Server, p providers.Provider, req *providers.Request, key providers.Key) (*providers.Response, providertest.Recorded) {
	t.Helper()
	before := s.Count()
	resp, err := p.Do(context.Background(), req, key)
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	recs := s.Requests()
	require.Len(t, recs, before+1)
	return resp, recs[before]
}

func TestURLJoin(t *testing.T) {
	tests := []struct {
		name    string
		base    string
		query   url.Values
		surface providers.Surface
		want    string
	}{
		{"openai with slash", "https://api.openai.com/v1/", nil, providers.SurfaceChatCompletions, "https://api.openai.com/v1/chat/completions"},
		{"openai without slash", "https://api.openai.com/v1", nil, providers.SurfaceResponses, "https://api.openai.com/v1/responses"},
		{"deepseek root", "https://api.deepseek.com", nil, providers.SurfaceChatCompletions, "https://api.deepseek.com/chat/completions"},
		{"deepseek root with slash", "https://api.deepseek.com/", nil, providers.SurfaceChatCompletions, "https://api.deepseek.com/chat/completions"},
		{"groq", "https://api.groq.com/openai/v1", nil, providers.SurfaceEmbeddings, "https://api.groq.com/openai/v1/embeddings"},
		{"gemini", "https://generativelanguage.googleapis.com/v1beta/openai/", nil, providers.SurfaceChatCompletions, "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions"},
		{"ollama", "http://localhost:11434/v1", nil, providers.SurfaceChatCompletions, "http://localhost:11434/v1/chat/completions"},
		{"lm studio", "http://127.0.0.1:1234/v1/", nil, providers.SurfaceEmbeddings, "http://127.0.0.1:1234/v1/embeddings"},
		{
			"azure deployment", "https://res.openai.azure.com/openai/deployments/gpt-4o",
			url.Values{"api-version": {"2024-10-21"}}, providers.SurfaceChatCompletions,
			"https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
		},
		{
			"query in base merged", "https://example.com/v1?tenant=a&api-version=old",
			url.Values{"api-version": {"new"}}, providers.SurfaceChatCompletions,
			"https://example.com/v1/chat/completions?api-version=new&tenant=a",
		},
		{"query in base kept", "https://example.com/v1/?tenant=a", nil, providers.SurfaceResponses, "https://example.com/v1/responses?tenant=a"},
		{"escaped path", "https://example.com/a%2Fb/v1", nil, providers.SurfaceChatCompletions, "https://example.com/a%2Fb/v1/chat/completions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProvider(t, openai.Config{BaseURL: tt.base, Query: tt.query})
			require.Equal(t, tt.want, p.URL(tt.surface))
			require.Empty(t, p.URL(providers.SurfaceMessages))
		})
	}
}

func TestRequestReachesSubPathWithQuery(t *testing.T) {
	tests := []struct {
		name      string
		suffix    string // appended to the server's root
		query     url.Values
		auth      string
		wantPath  string
		wantQuery string
		wantAuth  [2]string // header name, value
	}{
		{"v1 root", "/v1", nil, "", "/v1/chat/completions", "", [2]string{"Authorization", "Bearer " + secret}},
		{"root without v1", "", nil, "", "/chat/completions", "", [2]string{"Authorization", "Bearer " + secret}},
		{
			"azure", "/openai/deployments/gpt-4o/", url.Values{"api-version": {"2024-10-21"}}, "api-key",
			"/openai/deployments/gpt-4o/chat/completions", "api-version=2024-10-21", [2]string{"Api-Key", secret},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := providertest.Start(t, providers.FormatOpenAI)
			s.Enqueue(providertest.OpenAIChat("m", "ok", providertest.Usage{}))
			root := strings.TrimSuffix(s.URL, "/v1/")
			p := newProvider(t, openai.Config{BaseURL: root + tt.suffix, Query: tt.query, AuthHeader: tt.auth})
			resp, rec := send(t, s, p, chatRequest(false, nil), providers.Key{ID: "k", Secret: secret})
			require.Equal(t, 200, resp.StatusCode)
			require.Equal(t, tt.wantPath, rec.Path)
			require.Equal(t, tt.wantQuery, rec.RawQuery)
			require.Equal(t, tt.wantAuth[1], rec.Header.Get(tt.wantAuth[0]))
			if tt.wantAuth[0] != "Authorization" {
				require.Empty(t, rec.Header.Values("Authorization"))
			}
		})
	}
}

func TestAuth(t *testing.T) {
	tests := []struct {
		name       string
		authHeader string
		header     http.Header
		key        providers.Key
		want       map[string]string // header -> value ("" = absent)
	}{
		{"bearer default", "", nil, providers.Key{ID: "k", Secret: secret}, map[string]string{"Authorization": "Bearer " + secret}},
		{"explicit authorization is bearer", "authorization", nil, providers.Key{ID: "k", Secret: secret}, map[string]string{"Authorization": "Bearer " + secret}},
		{"azure api-key", "api-key", nil, providers.Key{ID: "k", Secret: secret}, map[string]string{"Api-Key": secret, "Authorization": ""}},
		{"zero key sends nothing", "", nil, providers.Key{}, map[string]string{"Authorization": ""}},
		{"zero key with api-key", "api-key", nil, providers.Key{ID: "k"}, map[string]string{"Api-Key": "", "Authorization": ""}},
		{
			"keyless custom auth header kept", "", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, providers.Key{},
			map[string]string{"Authorization": "Basic dXNlcjpwYXNz"},
		},
		{
			"key overrides configured auth header", "", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, providers.Key{ID: "k", Secret: secret},
			map[string]string{"Authorization": "Bearer " + secret},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := providertest.Start(t, providers.FormatOpenAI)
			p := newProvider(t, openai.Config{BaseURL: s.URL, AuthHeader: tt.authHeader, Header: tt.header})
			_, rec := send(t, s, p, chatRequest(false, nil), tt.key)
			for name, want := range tt.want {
				if want == "" {
					require.Empty(t, rec.Header.Values(name), name)
				} else {
					require.Equal(t, []string{want}, rec.Header.Values(name), name)
				}
			}
		})
	}
}

func TestHeaderForwarding(t *testing.T) {
	client := http.Header{
		"Authorization":       {"Bearer client-token"},
		"X-Api-Key":           {"client-x-api-key"},
		"Api-Key":             {"client-api-key"},
		"Cookie":              {"session=1"},
		"Openai-Organization": {"org-client"},
		"Openai-Project":      {"proj-client"},
		"Openai-Beta":         {"assistants=v2"},
		"Http-Referer":        {"https://client.example"},
		"X-Title":             {"Client App"},
		"X-Other":             {"nope"},
		"Anthropic-Version":   {"2023-06-01"},
		"Content-Type":        {"text/plain"},
		"User-Agent":          {"client-agent"},
	}
	tests := []struct {
		name   string
		config http.Header
		keyID  string
		stream bool
		want   map[string][]string // nil value = absent
	}{
		{
			name:  "server key",
			keyID: "key-1",
			want: map[string][]string{
				"Openai-Beta": {"assistants=v2"}, "Http-Referer": {"https://client.example"}, "X-Title": {"Client App"},
				"Openai-Organization": nil, "Openai-Project": nil,
				"Authorization": {"Bearer " + secret}, "X-Api-Key": nil, "Api-Key": nil, "Cookie": nil, "X-Other": nil,
				"Anthropic-Version": nil, "Content-Type": {"application/json"}, "Accept": {"application/json"},
				"User-Agent": {"llmgate"},
			},
		},
		{
			name:   "client key",
			keyID:  "client",
			stream: true,
			want: map[string][]string{
				"Openai-Organization": {"org-client"}, "Openai-Project": {"proj-client"}, "Openai-Beta": {"assistants=v2"},
				"Authorization": {"Bearer " + secret}, "Cookie": nil, "X-Api-Key": nil,
				"Accept": {"text/event-stream"},
			},
		},
		{
			name:   "config wins over client attribution",
			config: http.Header{"http-referer": {"https://operator.example"}, "X-Title": {"Operator"}, "Openai-Organization": {"org-operator"}, "X-Extra": {"a", "b"}},
			keyID:  "key-1",
			want: map[string][]string{
				"Http-Referer": {"https://operator.example"}, "X-Title": {"Operator"}, "Openai-Organization": {"org-operator"},
				"X-Extra": {"a", "b"}, "Openai-Beta": {"assistants=v2"},
			},
		},
		{
			name:   "client key replaces the operator's organization",
			config: http.Header{"Openai-Organization": {"org-operator"}, "Openai-Project": {"proj-operator"}},
			keyID:  "client",
			want:   map[string][]string{"Openai-Organization": {"org-client"}, "Openai-Project": {"proj-client"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := providertest.Start(t, providers.FormatOpenAI)
			p := newProvider(t, openai.Config{BaseURL: s.URL, Header: tt.config})
			req := chatRequest(tt.stream, client.Clone())
			key := providers.Key{ID: tt.keyID, Secret: secret}
			if tt.keyID == "client" {
				key.Source = providers.KeyClient
			}
			_, rec := send(t, s, p, req, key)
			for name, want := range tt.want {
				require.Equal(t, want, rec.Header.Values(name), name)
			}
			require.Equal(t, client, req.Header, "req.Header was modified")
		})
	}
	t.Run("client key without org drops the operator's", func(t *testing.T) {
		s := providertest.Start(t, providers.FormatOpenAI)
		p := newProvider(t, openai.Config{BaseURL: s.URL, Header: http.Header{"Openai-Organization": {"org-operator"}}})
		_, rec := send(t, s, p, chatRequest(false, nil), providers.Key{ID: "client", Secret: secret, Source: providers.KeyClient})
		require.Empty(t, rec.Header.Values("Openai-Organization"))
	})
	t.Run("invalid client header values are dropped", func(t *testing.T) {
		s := providertest.Start(t, providers.FormatOpenAI)
		p := newProvider(t, openai.Config{BaseURL: s.URL})
		_, rec := send(t, s, p, chatRequest(false, http.Header{"X-Title": {"bad\r\nInjected: 1"}, "Openai-Beta": {"ok"}}), providers.Key{})
		require.Empty(t, rec.Header.Values("X-Title"))
		require.Empty(t, rec.Header.Values("Injected"))
		require.Equal(t, "ok", rec.Header.Get("Openai-Beta"))
	})
	t.Run("extra headers and query", func(t *testing.T) {
		s := providertest.Start(t, providers.FormatOpenAI)
		p := newProvider(t, openai.Config{BaseURL: s.URL + "?api-version=old&tenant=a",
			Header: http.Header{"X-Config": {"config"}, "Openai-Organization": {"org-operator"}}})
		req := chatRequest(false, http.Header{"X-Title": {"Client App"}})
		req.ExtraHeader = http.Header{"X-Config": {"model"}, "X-Title": {"Operator"}, "X-New": {"n"},
			"Authorization": {"Bearer extra"}, "User-Agent": {"extra"}}
		req.ExtraQuery = url.Values{"api-version": {"new"}, "deployment": {"d1"}}
		_, rec := send(t, s, p, req, providers.Key{ID: "k", Secret: secret})
		require.Equal(t, []string{"model"}, rec.Header.Values("X-Config"), "replaces the configured header")
		require.Equal(t, []string{"Operator"}, rec.Header.Values("X-Title"), "replaces the client's")
		require.Equal(t, []string{"n"}, rec.Header.Values("X-New"))
		require.Equal(t, []string{"org-operator"}, rec.Header.Values("Openai-Organization"))
		require.Equal(t, []string{"Bearer " + secret}, rec.Header.Values("Authorization"), "the key wins")
		require.Equal(t, []string{"llmgate"}, rec.Header.Values("User-Agent"), "managed headers are kept")
		require.Equal(t, "api-version=new&deployment=d1&tenant=a", rec.RawQuery)
		require.Equal(t, "/v1/chat/completions", rec.Path)

		_, rec = send(t, s, p, chatRequest(false, nil), providers.Key{ID: "k", Secret: secret})
		require.Equal(t, "api-version=old&tenant=a", rec.RawQuery, "extras are per request")
		require.Equal(t, []string{"config"}, rec.Header.Values("X-Config"))
	})
	t.Run("trace headers", func(t *testing.T) {
		s := providertest.Start(t, providers.FormatOpenAI)
		p := newProvider(t, openai.Config{BaseURL: s.URL})
		const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		req := chatRequest(false, http.Header{"Traceparent": {"00-11111111111111111111111111111111-2222222222222222-01"}})
		req.TraceHeader = http.Header{"Traceparent": {tp}, "Tracestate": {"vendor=1"}, "Bad": {"x\r\ny"},
			"Authorization": {"Bearer trace"}, "Content-Type": {"text/plain"}}
		req.ExtraHeader = http.Header{"Tracestate": {"operator=1"}}
		_, rec := send(t, s, p, req, providers.Key{ID: "k", Secret: secret})
		require.Equal(t, []string{tp}, rec.Header.Values("Traceparent"), "the tracer's, not the client's")
		require.Equal(t, []string{"operator=1"}, rec.Header.Values("Tracestate"), "the operator's extra header wins")
		require.Empty(t, rec.Header.Values("Bad"))
		require.Equal(t, []string{"Bearer " + secret}, rec.Header.Values("Authorization"), "the key wins")
		require.Equal(t, []string{"application/json"}, rec.Header.Values("Content-Type"))

		_, rec = send(t, s, p, chatRequest(false, http.Header{"Traceparent": {tp}}), providers.Key{ID: "k", Secret: secret})
		require.Empty(t, rec.Header.Values("Traceparent"), "a client's traceparent is not forwarded")
	})
	t.Run("custom user agent", func(t *testing.T) {
		s := providertest.Start(t, providers.FormatOpenAI)
		p := newProvider(t, openai.Config{BaseURL: s.URL, UserAgent: "my-app/1.0"})
		_, rec := send(t, s, p, chatRequest(false, nil), providers.Key{})
		require.Equal(t, "my-app/1.0", rec.Header.Get("User-Agent"))
	})
}

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  openai.Config
		want []string // substrings, each must appear
	}{
		{"empty", openai.Config{}, []string{"openai: name is required", "openai: base URL is required"}},
		{"bad name", openai.Config{Name: "my provider", BaseURL: "https://x"}, []string{`name "my provider"`}},
		{"bad scheme", openai.Config{Name: "x", BaseURL: "ftp://example.com/v1"}, []string{"scheme must be http or https"}},
		{"no host", openai.Config{Name: "x", BaseURL: "https:///v1"}, []string{"host is required"}},
		{"relative", openai.Config{Name: "x", BaseURL: "api.openai.com/v1"}, []string{"scheme must be http or https", "host is required"}},
		{"credentials", openai.Config{Name: "x", BaseURL: "https://user:hunter2@example.com/v1"}, []string{"credentials are not allowed"}},
		{"fragment", openai.Config{Name: "x", BaseURL: "https://example.com/v1#frag"}, []string{"fragment is not allowed"}},
		{"unparsable", openai.Config{Name: "x", BaseURL: "https://exa mple.com/"}, []string{"base URL is invalid"}},
		{"empty surfaces", openai.Config{Name: "x", BaseURL: "https://x", Surfaces: []providers.Surface{}}, []string{"surfaces must not be empty"}},
		{
			"wrong surfaces", openai.Config{Name: "x", BaseURL: "https://x", Surfaces: []providers.Surface{providers.SurfaceMessages, "bogus", providers.SurfaceResponses, providers.SurfaceResponses}},
			[]string{`surface "messages" is not an OpenAI-format surface`, `surface "bogus" is not`, `surface "responses" is listed twice`},
		},
		{
			"headers", openai.Config{Name: "x", BaseURL: "https://x", Header: http.Header{"Content-Type": {"x"}, "bad name": {"x"}, "X-Ok": {"a\nb"}, "Host": {"h"}}},
			[]string{`header "Content-Type" is managed`, `header name "bad name"`, `header "X-Ok" has a value with control characters`, `header "Host" is managed`},
		},
		{"auth header", openai.Config{Name: "x", BaseURL: "https://x", AuthHeader: "api key"}, []string{`auth header "api key" is not a valid header name`}},
		{"reserved auth header", openai.Config{Name: "x", BaseURL: "https://x", AuthHeader: "content-type"}, []string{`auth header "Content-Type" is managed`}},
		{"query", openai.Config{Name: "x", BaseURL: "https://x", Query: url.Values{"": {"v"}}}, []string{"query parameter names must not be empty"}},
		{"user agent", openai.Config{Name: "x", BaseURL: "https://x", UserAgent: "a\r\nb"}, []string{"user agent has control characters"}},
		{
			"everything at once",
			openai.Config{BaseURL: "ftp://u:p@h/#f", Surfaces: []providers.Surface{providers.SurfaceMessages}, AuthHeader: "a b", UserAgent: "\x00"},
			[]string{"name is required", "scheme must be http or https", "credentials are not allowed", "fragment is not allowed", `surface "messages"`, `auth header "a b"`, "user agent"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := openai.New(tt.cfg)
			require.Error(t, err)
			require.Nil(t, p)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				require.True(t, strings.HasPrefix(line, "openai: "), "line %q lacks the prefix", line)
			}
			require.NotContains(t, err.Error(), "hunter2")
		})
	}
	t.Run("valid", func(t *testing.T) {
		p, err := openai.New(openai.Config{Name: "groq", BaseURL: "https://api.groq.com/openai/v1"})
		require.NoError(t, err)
		require.Equal(t, "groq", p.Name())
		require.Equal(t, []providers.Surface{providers.SurfaceChatCompletions, providers.SurfaceResponses, providers.SurfaceEmbeddings}, p.Surfaces())
		surfaces := p.Surfaces()
		surfaces[0] = "mutated"
		require.Equal(t, providers.SurfaceChatCompletions, p.Surfaces()[0])
	})
	t.Run("config is copied", func(t *testing.T) {
		cfg := openai.Config{Name: "x", BaseURL: "https://x", Surfaces: []providers.Surface{providers.SurfaceChatCompletions}, Query: url.Values{"v": {"1"}}}
		p, err := openai.New(cfg)
		require.NoError(t, err)
		cfg.Surfaces[0] = providers.SurfaceEmbeddings
		cfg.Query["v"][0] = "2"
		require.Equal(t, []providers.Surface{providers.SurfaceChatCompletions}, p.Surfaces())
		require.Equal(t, "https://x/chat/completions?v=1", p.URL(providers.SurfaceChatCompletions))
	})
}

// rtFunc is a RoundTripper that is not an *http.Transport.
type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestNotSentClassification(t *testing.T) {
	key := providers.Key{ID: "key-1", Secret: secret}
	dnsTransport := func() *http.Transport {
		return &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: "upstream.invalid", IsNotFound: true}}
		}}
	}
	tests := []struct {
		name        string
		setup       func(t *testing.T) (openai.Config, context.Context)
		req         *providers.Request
		wantNotSent bool
	}{
		{
			name: "connection refused",
			setup: func(t *testing.T) (openai.Config, context.Context) {
				return openai.Config{BaseURL: providertest.DeadURL(t)}, context.Background()
			},
			wantNotSent: true,
		},
		{
			name: "dns failure",
			setup: func(t *testing.T) (openai.Config, context.Context) {
				tr := dnsTransport()
				t.Cleanup(tr.CloseIdleConnections)
				return openai.Config{BaseURL: "https://upstream.invalid/v1", Client: &http.Client{Transport: tr}}, context.Background()
			},
			wantNotSent: true,
		},
		{
			name: "tls handshake failure",
			setup: func(t *testing.T) (openai.Config, context.Context) {
				srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					t.Error("the upstream received a request")
				}))
				srv.Config.ErrorLog = log.New(io.Discard, "", 0)
				srv.StartTLS()
				t.Cleanup(srv.Close)
				return openai.Config{BaseURL: srv.URL + "/v1"}, context.Background() // default client does not trust the test CA
			},
			wantNotSent: true,
		},
		{
			name: "tls version mismatch",
			setup: func(t *testing.T) (openai.Config, context.Context) {
				srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
				srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13}
				srv.Config.ErrorLog = log.New(io.Discard, "", 0)
				srv.StartTLS()
				t.Cleanup(srv.Close)
				tr := &http.Transport{TLSClientConfig: &tls.Config{MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true}}
				t.Cleanup(tr.CloseIdleConnections)
				return openai.Config{BaseURL: srv.URL + "/v1", Client: &http.Client{Transport: tr}}, context.Background()
			},
			wantNotSent: true,
		},
		{
			name: "context cancelled before Do",
			setup: func(t *testing.T) (openai.Config, context.Context) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return openai.Config{BaseURL: providertest.Start(t, providers.FormatOpenAI).URL}, ctx
			},
			wantNotSent: true,
		},
		{
			name: "context deadline while waiting for headers",
			setup: func(t *testing.T) (openai.Config, context.Context) {
				s := providertest.Start(t, providers.FormatOpenAI)
				s.Enqueue(providertest.Step{Hang: true})
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				t.Cleanup(cancel)
				return openai.Config{BaseURL: s.URL}, ctx
			},
			wantNotSent: false,
		},
		{
			name: "response header timeout",
			setup: func(t *testing.T) (openai.Config, context.Context) {
				s := providertest.Start(t, providers.FormatOpenAI)
				s.Enqueue(providertest.Step{Hang: true})
				tr := &http.Transport{ResponseHeaderTimeout: 50 * time.Millisecond}
				t.Cleanup(tr.CloseIdleConnections)
				return openai.Config{BaseURL: s.URL, Client: &http.Client{Transport: tr}}, context.Background()
			},
			wantNotSent: false,
		},
		{
			name: "connection dropped before the answer",
			setup: func(t *testing.T) (openai.Config, context.Context) {
				s := providertest.Start(t, providers.FormatOpenAI)
				s.Enqueue(providertest.Step{HeaderDelay: time.Hour})
				go func() {
					for s.Count() == 0 {
						time.Sleep(time.Millisecond)
					}
					s.Close()
				}()
				return openai.Config{BaseURL: s.URL}, context.Background()
			},
			wantNotSent: false,
		},
		{
			name: "custom transport plain error",
			setup: func(t *testing.T) (openai.Config, context.Context) {
				rt := rtFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("boom") })
				return openai.Config{BaseURL: "https://x/v1", Client: &http.Client{Transport: rt}}, context.Background()
			},
			wantNotSent: false,
		},
		{
			name: "custom transport read error",
			setup: func(t *testing.T) (openai.Config, context.Context) {
				rt := rtFunc(func(*http.Request) (*http.Response, error) {
					return nil, &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
				})
				return openai.Config{BaseURL: "https://x/v1", Client: &http.Client{Transport: rt}}, context.Background()
			},
			wantNotSent: false,
		},
		{
			name: "custom transport context error",
			setup: func(t *testing.T) (openai.Config, context.Context) {
				rt := rtFunc(func(*http.Request) (*http.Response, error) { return nil, context.DeadlineExceeded })
				return openai.Config{BaseURL: "https://x/v1", Client: &http.Client{Transport: rt}}, context.Background()
			},
			wantNotSent: false,
		},
		{
			name: "custom transport dns error",
			setup: func(t *testing.T) (openai.Config, context.Context) {
				rt := rtFunc(func(*http.Request) (*http.Response, error) {
					return nil, &net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}
				})
				return openai.Config{BaseURL: "https://x/v1", Client: &http.Client{Transport: rt}}, context.Background()
			},
			wantNotSent: true,
		},
		{
			name: "custom transport dial error",
			setup: func(t *testing.T) (openai.Config, context.Context) {
				rt := rtFunc(func(*http.Request) (*http.Response, error) {
					return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
				})
				return openai.Config{BaseURL: "https://x/v1", Client: &http.Client{Transport: rt}}, context.Background()
			},
			wantNotSent: true,
		},
		{
			name: "wrapped transport connection refused",
			setup: func(t *testing.T) (openai.Config, context.Context) {
				tr := &http.Transport{}
				t.Cleanup(tr.CloseIdleConnections)
				rt := rtFunc(func(r *http.Request) (*http.Response, error) { return tr.RoundTrip(r) })
				return openai.Config{BaseURL: providertest.DeadURL(t), Client: &http.Client{Transport: rt}}, context.Background()
			},
			wantNotSent: true,
		},
		{
			name: "wrapped transport tls failure",
			setup: func(t *testing.T) (openai.Config, context.Context) {
				srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					t.Error("the upstream received a request")
				}))
				srv.Config.ErrorLog = log.New(io.Discard, "", 0)
				srv.StartTLS()
				t.Cleanup(srv.Close)
				tr := &http.Transport{}
				t.Cleanup(tr.CloseIdleConnections)
				rt := rtFunc(func(r *http.Request) (*http.Response, error) { return tr.RoundTrip(r) })
				return openai.Config{BaseURL: srv.URL + "/v1", Client: &http.Client{Transport: rt}}, context.Background()
			},
			wantNotSent: true,
		},
		{
			name: "wrapped transport header timeout",
			setup: func(t *testing.T) (openai.Config, context.Context) {
				s := providertest.Start(t, providers.FormatOpenAI)
				s.Enqueue(providertest.Step{Hang: true})
				tr := &http.Transport{ResponseHeaderTimeout: 50 * time.Millisecond}
				t.Cleanup(tr.CloseIdleConnections)
				rt := rtFunc(func(r *http.Request) (*http.Response, error) { return tr.RoundTrip(r) })
				return openai.Config{BaseURL: s.URL, Client: &http.Client{Transport: rt}}, context.Background()
			},
			wantNotSent: false,
		},
		{
			name: "unserved surface",
			setup: func(t *testing.T) (openai.Config, context.Context) {
				return openai.Config{BaseURL: "https://x/v1"}, context.Background()
			},
			req:         &providers.Request{Surface: providers.SurfaceMessages, Body: []byte(`{}`)},
			wantNotSent: true,
		},
		{
			name: "nil request",
			setup: func(t *testing.T) (openai.Config, context.Context) {
				return openai.Config{BaseURL: "https://x/v1"}, context.Background()
			},
			req:         nil,
			wantNotSent: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, ctx := tt.setup(t)
			cfg.Query = url.Values{"sig": {"query-secret-123"}}
			p := newProvider(t, cfg)
			req := tt.req
			if req == nil && tt.name != "nil request" {
				req = chatRequest(false, nil)
			}
			resp, err := p.Do(ctx, req, key)
			require.Error(t, err)
			require.Nil(t, resp)
			require.Equal(t, tt.wantNotSent, errors.Is(err, providers.ErrNotSent), "error: %v", err)
			require.True(t, strings.HasPrefix(err.Error(), "openai: "), err.Error())
			require.NotContains(t, err.Error(), secret)
			require.NotContains(t, err.Error(), "query-secret-123")
		})
	}
}

func TestInvalidSecretNotSent(t *testing.T) {
	s := providertest.Start(t, providers.FormatOpenAI)
	p := newProvider(t, openai.Config{BaseURL: s.URL})
	bad := providers.Secret("sk-bad\r\nX-Injected: " + secret)
	resp, err := p.Do(context.Background(), chatRequest(false, nil), providers.Key{ID: "key-7", Secret: bad})
	require.Nil(t, resp)
	require.ErrorIs(t, err, providers.ErrNotSent)
	require.Contains(t, err.Error(), "key-7")
	require.NotContains(t, err.Error(), secret)
	require.Zero(t, s.Count())
}

func TestRequestBodyIsReplayable(t *testing.T) {
	var seen *http.Request
	rt := rtFunc(func(r *http.Request) (*http.Response, error) {
		seen = r
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("{}")), Request: r}, nil
	})
	p := newProvider(t, openai.Config{BaseURL: "https://x/v1", Client: &http.Client{Transport: rt}})
	req := chatRequest(false, nil)
	resp, err := p.Do(context.Background(), req, providers.Key{})
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.MethodPost, seen.Method)
	require.EqualValues(t, len(req.Body), seen.ContentLength)
	require.NotNil(t, seen.GetBody)
	for range 2 {
		b, err := seen.GetBody()
		require.NoError(t, err)
		got, err := io.ReadAll(b)
		require.NoError(t, err)
		require.Equal(t, req.Body, got)
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, "https://elsewhere.example/v1/chat/completions", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	p := newProvider(t, openai.Config{BaseURL: srv.URL + "/v1", AuthHeader: "api-key"})
	resp, err := p.Do(context.Background(), chatRequest(false, nil), providers.Key{ID: "k", Secret: secret})
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode)
	require.EqualValues(t, 1, hits.Load())
}

func TestStreamResponsePassesThrough(t *testing.T) {
	s := providertest.Start(t, providers.FormatOpenAI)
	step := providertest.OpenAIChatStream("m", []string{"a", "b"}, providertest.Usage{Input: 1, Output: 2}, true)
	s.Enqueue(step)
	p := newProvider(t, openai.Config{BaseURL: s.URL})
	resp, err := p.Do(context.Background(), chatRequest(true, nil), providers.Key{ID: "k", Secret: secret})
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "text/event-stream; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Equal(t, providertest.RequestID, resp.Header.Get("X-Request-Id"))
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, step.StreamBytes(), body)
	require.Equal(t, "text/event-stream", s.Requests()[0].Header.Get("Accept"))
}
