package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

func TestContentTypeMustBeJSON(t *testing.T) {
	e := newEnv(t, envConfig{})
	for _, tc := range []struct {
		ct   string
		want int
	}{
		{"application/json", 200},
		{"application/json; charset=utf-8", 200},
		{"Application/JSON", 200},
		{"application/vnd.llm+json", 200},
		{"text/plain", 415},
		{"text/plain;charset=UTF-8", 415},
		{"application/x-www-form-urlencoded", 415},
		{"multipart/form-data; boundary=x", 415},
		{"", 415},
		{"application/jsonp", 415},
	} {
		t.Run(tc.ct, func(t *testing.T) {
			n := e.oa.Count()
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/chat/completions", strings.NewReader(chatBody("gpt-4o")))
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, tc.want, resp.StatusCode, string(b))
			if tc.want == 415 {
				require.Equal(t, "unsupported_media_type", decodeOpenAIError(t, b).Error.Code)
				require.Equal(t, n, e.oa.Count(), "nothing sent upstream")
			}
		})
	}
}

func TestRequestFieldChecks(t *testing.T) {
	e := newEnv(t, envConfig{})
	for _, tc := range []struct {
		name, path, body string
		param            string
	}{
		{"case-variant model", "/v1/chat/completions", `{"model":"openai:gpt-4o-mini","MODEL":"gpt-4o","messages":[]}`, "model"},
		{"case-variant stream", "/v1/chat/completions", `{"model":"gpt-4o","Stream":true,"messages":[]}`, "stream"},
		{"escaped case-variant", "/v1/chat/completions", `{"model":"gpt-4o","Max_Tok\u0065ns":5,"messages":[]}`, "max_tokens"},
		{"case-variant messages", "/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[],"Messages":[]}`, "messages"},
		{"no messages", "/v1/chat/completions", `{"model":"gpt-4o"}`, "messages"},
		{"null messages", "/v1/chat/completions", `{"model":"gpt-4o","messages":null}`, "messages"},
		{"messages not array", "/v1/chat/completions", `{"model":"gpt-4o","messages":"hi"}`, "messages"},
		{"no max_tokens", "/v1/messages", `{"model":"claude-sonnet-4-5","messages":[]}`, "max_tokens"},
		{"max_tokens string", "/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":"5","messages":[]}`, "max_tokens"},
		{"no input", "/v1/embeddings", `{"model":"text-embedding-3-small"}`, "input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.post(t, tc.path, tc.body)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(body))
			if tc.path == "/v1/messages" {
				v := decodeAnthropicError(t, body)
				require.Equal(t, "invalid_request", v.Error.Code)
				require.Contains(t, v.Error.Message, tc.param)
			} else {
				v := decodeOpenAIError(t, body)
				require.Equal(t, "invalid_request", v.Error.Code)
				require.Equal(t, tc.param, *v.Error.Param)
			}
		})
	}
	require.Zero(t, e.oa.Count()+e.an.Count(), "no request reached an upstream")
	// Other keys in other cases are the client's business.
	resp, body := e.post(t, "/v1/chat/completions", `{"model":"gpt-4o","messages":[],"Metadata":{}}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
}

func TestModelListCap(t *testing.T) {
	e := newEnv(t, envConfig{})
	names := make([]string, 5000)
	for i := range names {
		names[i] = fmt.Sprintf(`"openai:m-%d"`, i)
	}
	resp, body := e.post(t, "/v1/chat/completions", `{"models":[`+strings.Join(names, ",")+`],"messages":[]}`)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	v := decodeOpenAIError(t, body)
	require.Contains(t, v.Error.Message, "at most 16")
	require.Equal(t, "models", *v.Error.Param)
	require.Zero(t, e.oa.Count())
	require.Less(t, len(body), 1024)
}

func TestAttemptCap(t *testing.T) {
	e := newEnv(t, envConfig{opts: []Option{WithMaxAttempts(3)}})
	for i := 0; i < 10; i++ {
		e.oa.Enqueue(providertest.Error(providers.FormatOpenAI, 500, "down"))
	}
	resp, body := e.post(t, "/v1/chat/completions", `{"models":["openai:a","openai:b","openai:c","openai:d"],"messages":[]}`)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, 3, e.oa.Count(), "two keys of a, then one of b, then the cap")
	require.Equal(t, "3", resp.Header.Get(HeaderAttempts))
	ev := e.events.last(t)
	require.Equal(t, AttemptSkippedLimit, ev.Attempts[len(ev.Attempts)-1].Error)
	require.Contains(t, string(body), "attempt_limit")
}

func TestErrorBodyAttemptsAreCapped(t *testing.T) {
	keys := make([]ProviderKey, 40)
	for i := range keys {
		keys[i] = ProviderKey{Value: providers.Secret(fmt.Sprintf("sk-key-%02d", i))}
	}
	e := newEnv(t, envConfig{openAIKeys: keys, opts: []Option{WithMaxAttempts(40)}})
	for i := 0; i < 40; i++ {
		e.oa.Enqueue(providertest.Error(providers.FormatOpenAI, 500, "down"))
	}
	resp, body := e.post(t, "/v1/chat/completions", chatBody("openai:gpt-4o"))
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	var v struct {
		Error struct {
			Attempts []json.RawMessage `json:"attempts"`
			Omitted  int               `json:"attempts_omitted"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(body, &v))
	require.Len(t, v.Error.Attempts, maxErrorAttempts)
	require.Equal(t, 40-maxErrorAttempts, v.Error.Omitted)
	require.Len(t, e.events.last(t).Attempts, 40, "the event has them all")
}

func TestErrorDetail(t *testing.T) {
	for _, detail := range []bool{false, true} {
		t.Run(fmt.Sprint(detail), func(t *testing.T) {
			e := newEnv(t, envConfig{opts: []Option{WithErrorDetail(detail)}})
			e.oa.Enqueue(providertest.Error(providers.FormatOpenAI, 500, "upstream reason one"), providertest.Error(providers.FormatOpenAI, 503, "upstream reason two"))
			e.an.Enqueue(providertest.Error(providers.FormatAnthropic, 500, "upstream reason three"))
			resp, body := e.post(t, "/v1/chat/completions", `{"models":["openai:gpt-4o","anthropic:claude-sonnet-4-5"],"messages":[]}`)
			require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
			for _, s := range []string{"upstream reason", "key-1", "key_id", "reason"} {
				if detail {
					require.Contains(t, string(body), s)
				} else {
					require.NotContains(t, string(body), s)
				}
			}
			ev := e.events.last(t)
			require.Equal(t, "key-1", ev.Attempts[0].KeyID, "the event always has the detail")
			require.Equal(t, "upstream reason one", ev.Attempts[0].Reason)
			evJSON, err := json.Marshal(ev)
			require.NoError(t, err)
			require.Contains(t, string(evJSON), `"error":{"code":"all_providers_failed","status":503`)
			require.Contains(t, string(evJSON), `"reason":"upstream reason three"`)
		})
	}
}

func TestInvalidUTF8IsNeverEchoedRaw(t *testing.T) {
	e := newEnv(t, envConfig{})
	for _, body := range []string{
		"{\"model\":\"gpt-\xff-4o\",\"messages\":[]}",
		"{\"model\":\"nope\xfe:gpt-4o\",\"messages\":[]}",
	} {
		resp, b := e.post(t, "/v1/chat/completions", body)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(b))
		require.Equal(t, "invalid_json", decodeOpenAIError(t, b).Error.Code)
		require.True(t, json.Valid(b), "%q", b)
		resp, b = e.post(t, "/v1/messages", body)
		require.True(t, json.Valid(b), "%q", b)
		require.NotEqual(t, http.StatusOK, resp.StatusCode)
	}
}

// TestHalfClosedClient: a client that half-closes its connection after
// sending the body never gets a success status for a request that was
// canceled before a byte was written.
func TestHalfClosedClient(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.oa.Enqueue(providertest.Step{Hang: true})
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	body := chatBody("gpt-4o")
	_, err = fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	require.NoError(t, err)
	require.NoError(t, conn.(*net.TCPConn).CloseWrite())
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		require.Equal(t, 499, resp.StatusCode, string(b))
		require.Equal(t, "client_closed_request", decodeOpenAIError(t, b).Error.Code)
	}
	ev := e.events.last(t)
	require.Equal(t, KindCanceled, KindOf(ev.Err))
	require.Equal(t, 499, ev.Status)
}

// TestSlowBodyTimesOut: a client that trickles its body (slowloris) is cut
// at the body read timeout with 408, and its handler returns.
func TestSlowBodyTimesOut(t *testing.T) {
	e := newEnv(t, envConfig{opts: []Option{WithClientTimeouts(300*time.Millisecond, time.Second)}})
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
	require.NoError(t, err)
	var stop atomic.Bool
	go func() {
		for !stop.Load() {
			time.Sleep(50 * time.Millisecond)
			if _, err := io.WriteString(conn, " "); err != nil {
				return
			}
		}
	}()
	defer stop.Store(true)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	start := time.Now()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusRequestTimeout, resp.StatusCode, string(b))
	require.Equal(t, "request_timeout", decodeOpenAIError(t, b).Error.Code)
	require.Less(t, time.Since(start), 4*time.Second)
	require.Zero(t, e.oa.Count())
}

func TestWithClockTimesEverything(t *testing.T) {
	var ticks atomic.Int64
	base := time.Unix(1_900_000_000, 0)
	clock := func() time.Time { return base.Add(time.Duration(ticks.Add(1)) * time.Second) }
	e := newEnv(t, envConfig{opts: []Option{WithClock(clock)}})
	e.oa.Enqueue(providertest.Error(providers.FormatOpenAI, 500, "x"))
	resp, _ := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	ev := e.events.last(t)
	require.True(t, ev.Time.After(base) && ev.Time.Before(base.Add(time.Hour)), "arrival from the clock: %v", ev.Time)
	for _, d := range []time.Duration{ev.Latency, ev.TimeToFirstByte, ev.Attempts[0].TTFB, ev.Attempts[0].Duration, ev.Attempts[1].Duration} {
		require.Zero(t, d%time.Second, "every duration comes from the one clock: %v", d)
		require.Positive(t, d)
	}
}
