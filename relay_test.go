package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/internal/sse"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

// TestRedirectFailsOver: a 3xx from an upstream is never followed and never
// relayed as an answer; the attempt fails over, for JSON, streams and
// translated requests alike.
func TestRedirectFailsOver(t *testing.T) {
	redirect := func(f providers.Format, body string) providertest.Step {
		return providertest.Step{Status: http.StatusFound, Header: http.Header{"Location": {"http://elsewhere.example/"},
			"Content-Type": {"application/json"}}, Body: []byte(body)}
	}
	for _, tc := range []struct {
		name, path, body string
		upstream         providers.Format
	}{
		{"json", "/v1/chat/completions", chatBody("gpt-4o"), providers.FormatOpenAI},
		{"stream", "/v1/chat/completions", chatBody("gpt-4o", `"stream":true`), providers.FormatOpenAI},
		{"translated", "/v1/chat/completions", chatBody("claude-sonnet-4-5"), providers.FormatAnthropic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envConfig{anthropicKeys: []ProviderKey{{Value: "sk-an-1"}, {Value: "sk-an-2"}}})
			up := e.oa
			if tc.upstream == providers.FormatAnthropic {
				up = e.an
			}
			up.Enqueue(redirect(tc.upstream, `{"id":"evil","choices":[{"message":{"content":"from the redirect"}}]}`))
			resp, body := e.post(t, tc.path, tc.body)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			require.NotContains(t, string(body), "from the redirect")
			require.Equal(t, 2, up.Count())
			ev := e.events.last(t)
			require.Equal(t, http.StatusFound, ev.Attempts[0].Status)
			require.Equal(t, AttemptStatus, ev.Attempts[0].Error)
			require.Contains(t, ev.Attempts[0].Reason, "redirect")
		})
	}
}

// TestRelayedErrorsAreRedacted: whatever an upstream echoes back (a
// relayed error body, its request-id header, an in-stream error) passes the
// same redactor as the logs, including keys added by Reload.
func TestRelayedErrorsAreRedacted(t *testing.T) {
	const k1, k2 = "sk-oa-SECRET-FIRST-0001", "sk-oa-SECRET-RELOADED-0002"
	e := newEnv(t, envConfig{openAIKeys: []ProviderKey{{Value: k1}}, opts: []Option{WithFailFastStatuses(400)}})
	echo := func(key string) providertest.Step {
		s := providertest.Error(providers.FormatOpenAI, 400, "Invalid request for key "+key)
		s.Header = http.Header{"X-Request-Id": {"req-" + key}, "Content-Type": {"application/json"}}
		return s
	}
	e.oa.Enqueue(echo(k1))
	resp, body := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.NotContains(t, string(body), k1)
	require.Contains(t, string(body), "[redacted]")
	require.Equal(t, "req-[redacted]", resp.Header.Get("Llmgate-Upstream-X-Request-Id"))

	// A key that arrives with a reload is redacted too.
	require.NoError(t, e.gw.Reload(
		WithProvider(ProviderConfig{ID: "openai", BaseURL: e.oa.URL, Keys: []ProviderKey{{Value: k2}}}),
		WithFailFastStatuses(400), WithEventSink(e.events)))
	e.oa.Enqueue(echo(k2))
	resp, body = e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.NotContains(t, string(body), k2)
	require.NotContains(t, resp.Header.Get("Llmgate-Upstream-X-Request-Id"), k2)

	// A pass-through client key echoed in a committed stream's error event.
	e2 := newEnv(t, envConfig{noKeys: true})
	step := providertest.OpenAIChatStream("gpt-4o", []string{"a", "b"}, providertest.Usage{}, false)
	step.Events = append(step.Events[:2], providertest.Event{Data: `{"error":{"message":"key sk-client-SECRET-77 was revoked","type":"server_error"}}`})
	e2.oa.Enqueue(step)
	resp, body = e2.post(t, "/v1/chat/completions", chatBody("gpt-4o", `"stream":true`), "Authorization", "Bearer sk-client-SECRET-77")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotContains(t, string(body), "sk-client-SECRET-77")
	require.Contains(t, string(body), "[redacted]")
}

func TestRetryAfterOnFirstAllRateLimited(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.oa.Enqueue(providertest.RateLimited(providers.FormatOpenAI, "20"), providertest.RateLimited(providers.FormatOpenAI, "7"))
	resp, body := e.post(t, "/v1/chat/completions", chatBody("openai:gpt-4o"))
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(body))
	require.Equal(t, "2", resp.Header.Get(HeaderAttempts))
	require.Equal(t, "7", resp.Header.Get("Retry-After"), "the soonest key is back in 7s, said on the first failure")
}

func TestRateLimitCoolsOneModel(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.oa.Enqueue(providertest.RateLimited(providers.FormatOpenAI, "30"))
	resp, _ := e.post(t, "/v1/chat/completions", chatBody("openai:gpt-4o"))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	// Another model still gets key 1.
	n := e.oa.Count()
	resp, _ = e.post(t, "/v1/chat/completions", chatBody("openai:gpt-4o-mini"))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "1", resp.Header.Get(HeaderAttempts))
	require.Equal(t, "Bearer sk-oa-1", e.oa.Requests()[n].Header.Get("Authorization"))
	// The rate-limited model skips it.
	resp, _ = e.post(t, "/v1/chat/completions", chatBody("openai:gpt-4o"))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	ev := e.events.last(t)
	require.Equal(t, AttemptSkippedCooldown, ev.Attempts[0].Error)
	require.Equal(t, "key-1", ev.Attempts[0].KeyID)

	// An account-wide limit cools the whole key.
	quota := providertest.Error(providers.FormatOpenAI, 429, "You exceeded your current quota, please check your plan and billing details.")
	e.oa.Enqueue(quota)
	resp, _ = e.post(t, "/v1/chat/completions", chatBody("openai:gpt-4.1"))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = e.post(t, "/v1/chat/completions", chatBody("openai:gpt-4.1-mini"))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	ev = e.events.last(t)
	require.Equal(t, AttemptSkippedCooldown, ev.Attempts[0].Error, "key 1 is benched for every model")
	require.Equal(t, "key-1", ev.Attempts[0].KeyID)
}

func TestCooldownMapIsBounded(t *testing.T) {
	var c cooldown
	now := time.Now().UnixNano()
	for i := 0; i < 10*maxModelCooldowns; i++ {
		c.coolModel(fmt.Sprintf("m-%d", i), now+int64(time.Minute), now)
	}
	require.LessOrEqual(t, len(c.models), maxModelCooldowns)
	require.Positive(t, c.remaining("never-seen", now), "a full map benches the whole key")
}

// rawStream sends a request on a raw connection, for clients that read
// their response slowly or not at all.
func rawStream(t *testing.T, e *testEnv, path, body string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
	require.NoError(t, err)
	return conn, bufio.NewReaderSize(conn, 4096)
}

// bigStream is a stream of n chunks of size bytes each.
func bigStream(n, size int) providertest.Step {
	deltas := make([]string, n)
	for i := range deltas {
		deltas[i] = strings.Repeat("x", size)
	}
	return providertest.OpenAIChatStream("gpt-4o", deltas, providertest.Usage{Input: 1, Output: n}, false)
}

// TestSlowReaderIsNotBlamedOnTheUpstream: time spent blocked writing to a
// slow client is not upstream idleness.
func TestSlowReaderIsNotBlamedOnTheUpstream(t *testing.T) {
	e := newEnv(t, envConfig{opts: []Option{WithStreamIdleTimeout(300 * time.Millisecond)}})
	e.oa.Enqueue(bigStream(1000, 8<<10)) // 8 MB: more than the socket buffers hold
	conn, rd := rawStream(t, e, "/v1/chat/completions", chatBody("gpt-4o", `"stream":true`))
	resp, err := http.ReadResponse(rd, nil)
	require.NoError(t, err)
	buf := make([]byte, 64<<10)
	_, err = io.ReadFull(resp.Body, buf)
	require.NoError(t, err)
	time.Sleep(time.Second) // the gateway is blocked writing for longer than the idle timeout
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
	rest, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(strings.TrimSpace(string(rest)), "data: [DONE]"), "a clean end")
	ev := e.events.last(t)
	require.Nil(t, ev.Err)
	require.Equal(t, AttemptOK, ev.Attempts[0].Error)
}

// TestStalledReaderIsCut: a client that stops reading a stream is cut at the
// write timeout, the upstream is canceled, and the event says why.
func TestStalledReaderIsCut(t *testing.T) {
	canceled := make(chan struct{})
	chunk := `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"` + strings.Repeat("x", 4096) + `"},"finish_reason":null}]}` + "\n\n"
	up := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(canceled)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for r.Context().Err() == nil { // an endless stream
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	events := &eventLog{ch: make(chan *Event, 1)}
	gw, err := New(WithProvider(ProviderConfig{ID: "openai", BaseURL: up.URL + "/v1/", Keys: []ProviderKey{{Value: "sk-1"}}}),
		WithClientTimeouts(time.Second, 300*time.Millisecond), WithEventSink(events))
	require.NoError(t, err)
	defer gw.Close()
	e := &testEnv{gw: gw, srv: newServer(t, gw)}
	_, rd := rawStream(t, e, "/v1/chat/completions", chatBody("gpt-4o", `"stream":true`))
	resp, err := http.ReadResponse(rd, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	// Read nothing more.
	ev := events.last(t)
	require.Equal(t, KindRequestTimeout, KindOf(ev.Err))
	require.Contains(t, ev.Attempts[0].Reason, "client stopped reading")
	select {
	case <-canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request was not canceled")
	}
}

// TestStreamErrorNeverEndsCleanly: a committed stream whose upstream is cut
// ends with an error event, not with a terminal event.
func TestStreamErrorNeverEndsCleanly(t *testing.T) {
	e := newEnv(t, envConfig{})
	step := providertest.OpenAIChatStream("gpt-4o", []string{"a", "b", "c"}, providertest.Usage{}, false)
	step.DropAfter = 3
	e.oa.Enqueue(step)
	resp, body := e.post(t, "/v1/chat/completions", chatBody("gpt-4o", `"stream":true`))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	rd := sse.NewReader(strings.NewReader(string(body)), 0)
	var last sse.Event
	for {
		ev, err := rd.Next()
		if err != nil {
			break
		}
		last = ev
	}
	require.Contains(t, string(last.Data), `"code":"stream_failed"`)
	require.NotContains(t, string(body), "[DONE]")
}
