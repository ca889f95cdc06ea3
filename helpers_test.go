package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	anthropicsdk "github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	openaisdk "github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

// testEnv is a gateway in front of a fake OpenAI and a fake Anthropic
// upstream, served over real HTTP.
type testEnv struct {
	gw     *Gateway
	srv    *httptest.Server
	oa     *providertest.Server
	an     *providertest.Server
	events *eventLog
}

type eventLog struct {
	mu  sync.Mutex
	evs []*Event
	ch  chan *Event
}

func (l *eventLog) HandleEvent(_ context.Context, e *Event) {
	l.mu.Lock()
	l.evs = append(l.evs, e)
	l.mu.Unlock()
	select {
	case l.ch <- e:
	default:
	}
}

// last waits for and returns the newest event.
func (l *eventLog) last(t *testing.T) *Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		n := len(l.evs)
		var e *Event
		if n > 0 {
			e = l.evs[n-1]
		}
		l.mu.Unlock()
		if e != nil {
			return e
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no event emitted")
	return nil
}

// find waits for the event of request id.
func (l *eventLog) find(t *testing.T, id string) *Event {
	t.Helper()
	return waitFor(t, &l.mu, &l.evs, func(e *Event) bool { return e.RequestID == id }, "no event for request "+id)
}

// waitFor waits up to 5 seconds for an item of *items (guarded by mu)
// that match accepts, and fails the test with msg if none comes.
func waitFor[T any](t *testing.T, mu *sync.Mutex, items *[]T, match func(T) bool, msg string) T {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		for _, it := range *items {
			if match(it) {
				mu.Unlock()
				return it
			}
		}
		mu.Unlock()
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal(msg)
	var zero T
	return zero
}

type envConfig struct {
	openAIKeys    []ProviderKey
	anthropicKeys []ProviderKey
	noKeys        bool
	opts          []Option
}

// newEnv starts the fakes and a gateway configured with providers "openai"
// (keys sk-oa-1, sk-oa-2) and "anthropic" (key sk-an-1) pointing at them.
func newEnv(t *testing.T, ec envConfig) *testEnv {
	t.Helper()
	e := &testEnv{oa: providertest.Start(t, providers.FormatOpenAI), an: providertest.Start(t, providers.FormatAnthropic),
		events: &eventLog{ch: make(chan *Event, 64)}}
	oaKeys, anKeys := ec.openAIKeys, ec.anthropicKeys
	if oaKeys == nil && !ec.noKeys {
		oaKeys = []ProviderKey{{Value: "sk-oa-1"}, {Value: "sk-oa-2"}}
	}
	if anKeys == nil && !ec.noKeys {
		anKeys = []ProviderKey{{Value: "sk-an-1"}}
	}
	opts := []Option{
		WithProvider(ProviderConfig{ID: "openai", BaseURL: e.oa.URL, Keys: oaKeys}),
		WithProvider(ProviderConfig{ID: "anthropic", BaseURL: e.an.URL, Keys: anKeys}),
		WithEventSink(e.events),
		WithKeyCooldowns(time.Minute, 10*time.Second, time.Minute),
	}
	gw, err := New(append(opts, ec.opts...)...)
	require.NoError(t, err)
	e.gw = gw
	e.srv = httptest.NewServer(gw)
	t.Cleanup(func() {
		e.srv.Close()
		_ = gw.Close()
	})
	return e
}

func (e *testEnv) openai(opts ...ooption.RequestOption) *openaisdk.Client {
	base := []ooption.RequestOption{ooption.WithBaseURL(e.srv.URL + "/v1/"), ooption.WithAPIKey("client-key"), ooption.WithMaxRetries(0)}
	c := openaisdk.NewClient(append(base, opts...)...)
	return &c
}

func (e *testEnv) anthropic(opts ...aoption.RequestOption) *anthropicsdk.Client {
	base := []aoption.RequestOption{aoption.WithBaseURL(e.srv.URL), aoption.WithAPIKey("client-key"), aoption.WithMaxRetries(0)}
	c := anthropicsdk.NewClient(append(base, opts...)...)
	return &c
}

// post sends a raw request to the gateway and returns the response with its
// body read.
func (e *testEnv) post(t *testing.T, path, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if e.events != nil {
		// Events are emitted when the handler returns, which can be just
		// after the client has the whole response: wait, so that
		// events.last is this request's event.
		e.events.find(t, resp.Header.Get(HeaderRequestID))
	}
	return resp, b
}

// openAIError decodes an OpenAI-shaped error body.
type openAIErrorBody struct {
	Error struct {
		Message   string            `json:"message"`
		Type      string            `json:"type"`
		Param     *string           `json:"param"`
		Code      string            `json:"code"`
		RequestID string            `json:"request_id"`
		Attempts  []json.RawMessage `json:"attempts"`
	} `json:"error"`
}

func decodeOpenAIError(t *testing.T, b []byte) openAIErrorBody {
	t.Helper()
	var v openAIErrorBody
	require.NoError(t, json.Unmarshal(b, &v), string(b))
	require.NotEmpty(t, v.Error.Code, string(b))
	return v
}

type anthropicErrorBody struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		Code    string `json:"code"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

func decodeAnthropicError(t *testing.T, b []byte) anthropicErrorBody {
	t.Helper()
	var v anthropicErrorBody
	require.NoError(t, json.Unmarshal(b, &v), string(b))
	require.Equal(t, "error", v.Type, string(b))
	return v
}

// upstreamModel returns the "model" of a recorded upstream request body.
func upstreamModel(t *testing.T, r providertest.Recorded) string {
	t.Helper()
	var v struct {
		Model string `json:"model"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &v))
	return v.Model
}

func chatBody(model string, extra ...string) string {
	s := `{"model":"` + model + `","messages":[{"role":"user","content":"Hi"}]`
	for _, x := range extra {
		s += "," + x
	}
	return s + "}"
}

func messagesBody(model string, extra ...string) string {
	s := `{"model":"` + model + `","max_tokens":64,"messages":[{"role":"user","content":"Hi"}]`
	for _, x := range extra {
		s += "," + x
	}
	return s + "}"
}

type catalogModel = catalog.Model

func newServer(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}
