package anthropic_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/anthropic"
	"github.com/llmgate/gateway/providers/providertest"
)

const secret = "sk-ant-test-SECRET-4c3b2a"

func newProvider(t *testing.T, cfg anthropic.Config) *anthropic.Provider {
	t.Helper()
	p, err := anthropic.New(cfg)
	require.NoError(t, err)
	t.Cleanup(p.CloseIdleConnections)
	return p
}

func messagesRequest(stream bool, header http.Header) *providers.Request {
	body := `{"model":"claude-x","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`
	if stream {
		body = `{"model":"claude-x","max_tokens":16,"messages":[{"role":"user","content":"hi"}],"stream":true}`
	}
	return &providers.Request{Surface: providers.SurfaceMessages, Model: "claude-x", Body: []byte(body), Stream: stream, Header: header}
}

// send performs one Do against s and returns the recorded upstream request.
func send(t *testing.T, s *providertest.Server, p providers.Provider, req *providers.Request, key providers.Key) providertest.Recorded {
	t.Helper()
	before := s.Count()
	resp, err := p.Do(context.Background(), req, key)
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	recs := s.Requests()
	require.Len(t, recs, before+1)
	return recs[before]
}

func TestDefaults(t *testing.T) {
	p := newProvider(t, anthropic.Config{})
	require.Equal(t, "anthropic", p.Name())
	require.Equal(t, "https://api.anthropic.com/v1/messages", p.URL())
	require.Equal(t, []providers.Surface{providers.SurfaceMessages}, p.Surfaces())
}

func TestURLJoin(t *testing.T) {
	tests := []struct {
		name  string
		base  string
		query url.Values
		want  string
	}{
		{"with slash", "https://api.anthropic.com/v1/", nil, "https://api.anthropic.com/v1/messages"},
		{"without slash", "https://api.anthropic.com/v1", nil, "https://api.anthropic.com/v1/messages"},
		{"proxy root", "http://localhost:8080", nil, "http://localhost:8080/messages"},
		{"query", "https://gw.example/anthropic/v1", url.Values{"tenant": {"a"}}, "https://gw.example/anthropic/v1/messages?tenant=a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, newProvider(t, anthropic.Config{BaseURL: tt.base, Query: tt.query}).URL())
		})
	}
}

func TestVersion(t *testing.T) {
	tests := []struct {
		name    string
		version string
		client  http.Header
		want    string
	}{
		{"default", "", nil, "2023-06-01"},
		{"configured", "2024-01-01", nil, "2024-01-01"},
		{"client wins over default", "", http.Header{"Anthropic-Version": {"2023-01-01"}}, "2023-01-01"},
		{"client wins over configured", "2024-01-01", http.Header{"Anthropic-Version": {"2023-01-01"}}, "2023-01-01"},
		{"empty client value ignored", "", http.Header{"Anthropic-Version": {""}}, "2023-06-01"},
		{"invalid client value ignored", "", http.Header{"Anthropic-Version": {"bad\nvalue"}}, "2023-06-01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := providertest.Start(t, providers.FormatAnthropic)
			p := newProvider(t, anthropic.Config{BaseURL: s.URL, Version: tt.version})
			rec := send(t, s, p, messagesRequest(false, tt.client), providers.Key{ID: "k", Secret: secret})
			require.Equal(t, []string{tt.want}, rec.Header.Values("Anthropic-Version"))
		})
	}
}

func TestBetaPassthrough(t *testing.T) {
	tests := []struct {
		name   string
		config http.Header
		client http.Header
		want   []string
	}{
		{"none", nil, nil, nil},
		{"client values", nil, http.Header{"Anthropic-Beta": {"prompt-caching-2024-07-31", "token-efficient-tools-2025-02-19,output-128k-2025-02-19"}},
			[]string{"prompt-caching-2024-07-31", "token-efficient-tools-2025-02-19,output-128k-2025-02-19"}},
		{"configured only", http.Header{"anthropic-beta": {"files-api-2025-04-14"}}, nil, []string{"files-api-2025-04-14"}},
		{"merged and deduplicated", http.Header{"Anthropic-Beta": {"files-api-2025-04-14"}}, http.Header{"Anthropic-Beta": {"files-api-2025-04-14", "context-1m-2025-08-07"}},
			[]string{"files-api-2025-04-14", "context-1m-2025-08-07"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := providertest.Start(t, providers.FormatAnthropic)
			p := newProvider(t, anthropic.Config{BaseURL: s.URL, Header: tt.config})
			var client http.Header
			if tt.client != nil {
				client = tt.client.Clone()
			}
			rec := send(t, s, p, messagesRequest(false, client), providers.Key{})
			require.Equal(t, tt.want, rec.Header.Values("Anthropic-Beta"))
			require.Equal(t, tt.client, client, "req.Header was modified")
		})
	}
}

func TestExtraHeaderAndQuery(t *testing.T) {
	s := providertest.Start(t, providers.FormatAnthropic)
	p := newProvider(t, anthropic.Config{BaseURL: s.URL, Query: url.Values{"tenant": {"a"}},
		Header: http.Header{"Anthropic-Beta": {"files-api-2025-04-14"}, "X-Config": {"config"}}})
	req := messagesRequest(false, http.Header{"Anthropic-Beta": {"prompt-caching-2024-07-31"}, "Anthropic-Version": {"2023-01-01"}})
	req.ExtraHeader = http.Header{"Anthropic-Beta": {"context-1m-2025-08-07", "files-api-2025-04-14"},
		"Anthropic-Version": {"2024-10-22"}, "X-Config": {"model"}, "Content-Type": {"text/plain"}}
	req.ExtraQuery = url.Values{"tenant": {"b"}, "region": {"eu"}}
	rec := send(t, s, p, req, providers.Key{ID: "k", Secret: secret})
	require.Equal(t, []string{"files-api-2025-04-14", "prompt-caching-2024-07-31", "context-1m-2025-08-07"}, rec.Header.Values("Anthropic-Beta"))
	require.Equal(t, []string{"2024-10-22"}, rec.Header.Values("Anthropic-Version"), "the policy's version wins")
	require.Equal(t, []string{"model"}, rec.Header.Values("X-Config"))
	require.Equal(t, []string{"application/json"}, rec.Header.Values("Content-Type"))
	require.Equal(t, []string{secret}, rec.Header.Values("X-Api-Key"))
	require.Equal(t, "region=eu&tenant=b", rec.RawQuery)
	require.Equal(t, "/v1/messages", rec.Path)
}

func TestTraceHeader(t *testing.T) {
	s := providertest.Start(t, providers.FormatAnthropic)
	p := newProvider(t, anthropic.Config{BaseURL: s.URL})
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	req := messagesRequest(false, http.Header{"Traceparent": {"00-11111111111111111111111111111111-2222222222222222-01"}})
	req.TraceHeader = http.Header{"Traceparent": {tp}, "Tracestate": {"vendor=1"}, "X-Api-Key": {"trace"},
		"Anthropic-Beta": {"from-trace"}, "Accept": {"text/plain"}}
	rec := send(t, s, p, req, providers.Key{ID: "k", Secret: secret})
	require.Equal(t, []string{tp}, rec.Header.Values("Traceparent"), "the tracer's, not the client's")
	require.Equal(t, []string{"vendor=1"}, rec.Header.Values("Tracestate"))
	require.Equal(t, []string{secret}, rec.Header.Values("X-Api-Key"), "the key wins")
	require.Empty(t, rec.Header.Values("Anthropic-Beta"))
	require.Equal(t, []string{"application/json"}, rec.Header.Values("Accept"))

	rec = send(t, s, p, messagesRequest(false, http.Header{"Traceparent": {tp}}), providers.Key{ID: "k", Secret: secret})
	require.Empty(t, rec.Header.Values("Traceparent"), "a client's traceparent is not forwarded")
}

func TestAuth(t *testing.T) {
	tests := []struct {
		name       string
		authHeader string
		config     http.Header
		key        providers.Key
		want       map[string]string // "" = absent
	}{
		{"x-api-key default", "", nil, providers.Key{ID: "k", Secret: secret}, map[string]string{"X-Api-Key": secret, "Authorization": ""}},
		{"bearer", "Authorization", nil, providers.Key{ID: "k", Secret: secret}, map[string]string{"Authorization": "Bearer " + secret, "X-Api-Key": ""}},
		{"bearer lowercase", "authorization", nil, providers.Key{ID: "k", Secret: secret}, map[string]string{"Authorization": "Bearer " + secret}},
		{"custom header", "x-goog-api-key", nil, providers.Key{ID: "k", Secret: secret}, map[string]string{"X-Goog-Api-Key": secret, "X-Api-Key": ""}},
		{"zero key", "", nil, providers.Key{}, map[string]string{"X-Api-Key": "", "Authorization": ""}},
		{"zero key keeps configured auth", "", http.Header{"Authorization": {"Basic abc"}}, providers.Key{}, map[string]string{"Authorization": "Basic abc", "X-Api-Key": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := providertest.Start(t, providers.FormatAnthropic)
			p := newProvider(t, anthropic.Config{BaseURL: s.URL, AuthHeader: tt.authHeader, Header: tt.config})
			rec := send(t, s, p, messagesRequest(false, nil), tt.key)
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

func TestClientHeadersNotForwarded(t *testing.T) {
	client := http.Header{
		"Authorization":       {"Bearer client"},
		"X-Api-Key":           {"client-key"},
		"Cookie":              {"a=b"},
		"Openai-Organization": {"org"},
		"X-Other":             {"x"},
		"Anthropic-Version":   {"2023-06-01"},
		"User-Agent":          {"client-agent"},
	}
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "json", true: "stream"}[stream], func(t *testing.T) {
			s := providertest.Start(t, providers.FormatAnthropic)
			p := newProvider(t, anthropic.Config{BaseURL: s.URL, UserAgent: "gw/1"})
			rec := send(t, s, p, messagesRequest(stream, client.Clone()), providers.Key{ID: "client", Secret: secret, Source: providers.KeyClient})
			require.Equal(t, []string{secret}, rec.Header.Values("X-Api-Key"))
			for _, name := range []string{"Authorization", "Cookie", "Openai-Organization", "X-Other"} {
				require.Empty(t, rec.Header.Values(name), name)
			}
			require.Equal(t, "gw/1", rec.Header.Get("User-Agent"))
			require.Equal(t, "application/json", rec.Header.Get("Content-Type"))
			want := "application/json"
			if stream {
				want = "text/event-stream"
			}
			require.Equal(t, want, rec.Header.Get("Accept"))
			require.Equal(t, "/v1/messages", rec.Path)
		})
	}
}

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  anthropic.Config
		want []string
	}{
		{"bad name", anthropic.Config{Name: "a b"}, []string{`name "a b"`}},
		{"bad scheme", anthropic.Config{BaseURL: "ws://x"}, []string{"scheme must be http or https"}},
		{"credentials", anthropic.Config{BaseURL: "https://u:topsecret@x"}, []string{"credentials are not allowed"}},
		{"version", anthropic.Config{Version: "2023\n"}, []string{"version has control characters"}},
		{"version header", anthropic.Config{Header: http.Header{"anthropic-version": {"x"}}}, []string{`header "Anthropic-Version" cannot be set: use Version`}},
		{"reserved header", anthropic.Config{Header: http.Header{"Accept": {"x"}}}, []string{`header "Accept" is managed`}},
		{"auth header", anthropic.Config{AuthHeader: "anthropic-beta"}, []string{`auth header "Anthropic-Beta" is managed`}},
		{
			"all at once",
			anthropic.Config{Name: "a\tb", BaseURL: "ftp://x#y", Version: "\x01", AuthHeader: "a b", UserAgent: "\n", Query: url.Values{"": nil}},
			[]string{"name", "scheme", "fragment", "version", "auth header", "user agent", "query parameter names"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := anthropic.New(tt.cfg)
			require.Nil(t, p)
			require.Error(t, err)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				require.True(t, strings.HasPrefix(line, "anthropic: "), line)
			}
			require.NotContains(t, err.Error(), "topsecret")
		})
	}
}

func TestErrors(t *testing.T) {
	key := providers.Key{ID: "key-3", Secret: secret}
	tests := []struct {
		name        string
		baseURL     func(t *testing.T) string
		ctx         func(t *testing.T) context.Context
		req         *providers.Request
		key         providers.Key
		wantNotSent bool
	}{
		{name: "connection refused", baseURL: func(t *testing.T) string { return providertest.DeadURL(t) }, wantNotSent: true},
		{name: "wrong surface", req: &providers.Request{Surface: providers.SurfaceChatCompletions, Body: []byte(`{}`)}, wantNotSent: true},
		{name: "invalid secret", key: providers.Key{ID: "key-3", Secret: "bad\n" + secret}, wantNotSent: true},
		{
			name: "cancelled before",
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx
			},
			wantNotSent: true,
		},
		{
			name: "deadline while waiting",
			baseURL: func(t *testing.T) string {
				s := providertest.Start(t, providers.FormatAnthropic)
				s.Enqueue(providertest.Step{Hang: true})
				return s.URL
			},
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			},
			wantNotSent: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := providertest.DeadURL(t)
			if tt.baseURL != nil {
				base = tt.baseURL(t)
			}
			ctx := context.Background()
			if tt.ctx != nil {
				ctx = tt.ctx(t)
			}
			req := tt.req
			if req == nil {
				req = messagesRequest(false, nil)
			}
			k := key
			if tt.key.ID != "" {
				k = tt.key
			}
			p := newProvider(t, anthropic.Config{BaseURL: base, Query: url.Values{"sig": {"query-secret-77"}}})
			resp, err := p.Do(ctx, req, k)
			require.Nil(t, resp)
			require.Error(t, err)
			require.Equal(t, tt.wantNotSent, errors.Is(err, providers.ErrNotSent), "error: %v", err)
			require.True(t, strings.HasPrefix(err.Error(), "anthropic: "), err.Error())
			require.NotContains(t, err.Error(), secret)
			require.NotContains(t, err.Error(), "query-secret-77")
		})
	}
}

func TestStatusesAreResponses(t *testing.T) {
	s := providertest.Start(t, providers.FormatAnthropic)
	step := providertest.Error(providers.FormatAnthropic, 529, "Overloaded")
	s.Enqueue(step)
	p := newProvider(t, anthropic.Config{BaseURL: s.URL})
	resp, err := p.Do(context.Background(), messagesRequest(false, nil), providers.Key{ID: "k", Secret: secret})
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 529, resp.StatusCode)
	require.Equal(t, providertest.RequestID, resp.Header.Get("Request-Id"))
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, step.Body, body)
}
