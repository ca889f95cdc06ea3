package providertest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/providers"
)

func post(t *testing.T, s *Server, ctx context.Context, path, body string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	return s.Client().Do(req)
}

func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, 5*time.Second, 5*time.Millisecond, msg)
}

func TestEnqueueFIFOAndRecording(t *testing.T) {
	s := Start(t, providers.FormatOpenAI)
	s.Enqueue(Step{Status: 201, Body: []byte(`{"n":1}`)}, Step{Status: 202, Body: []byte(`{"n":2}`)})
	require.Equal(t, 2, s.Pending())

	start := time.Now()
	wantStatus := []int{201, 202, 200}
	for i, want := range wantStatus {
		req, err := http.NewRequest(http.MethodPost, s.URL+"chat/completions?api-version=1", strings.NewReader(`{"model":"m","i":`+string(rune('0'+i))+`}`))
		require.NoError(t, err)
		req.Header.Set("X-Test", "yes")
		resp, err := s.Client().Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, want, resp.StatusCode, "request %d: %s", i, body)
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	}
	require.Equal(t, 0, s.Pending())
	require.Equal(t, 3, s.Count())
	recs := s.Requests()
	require.Len(t, recs, 3)
	for i, r := range recs {
		require.Equal(t, http.MethodPost, r.Method)
		require.Equal(t, "/v1/chat/completions", r.Path)
		require.Equal(t, "api-version=1", r.RawQuery)
		require.Equal(t, "yes", r.Header.Get("X-Test"))
		require.Equal(t, `{"model":"m","i":`+string(rune('0'+i))+`}`, string(r.Body))
		require.False(t, r.Time.Before(start))
		if i > 0 {
			require.False(t, r.Time.Before(recs[i-1].Time))
		}
	}
	// Requests returns copies.
	recs[0].Body[0] = 'X'
	recs[0].Header.Set("X-Test", "changed")
	require.Equal(t, byte('{'), s.Requests()[0].Body[0])
	require.Equal(t, "yes", s.Requests()[0].Header.Get("X-Test"))
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name       string
		check      func(Recorded) error
		wantStatus int
		wantBody   string
	}{
		{name: "passes", check: func(r Recorded) error { return nil }, wantStatus: 200, wantBody: `{"ok":true}`},
		{
			name: "fails",
			check: func(r Recorded) error {
				if r.Header.Get("Authorization") == "" {
					return errors.New("no authorization header")
				}
				return nil
			},
			wantStatus: 599,
			wantBody:   "no authorization header",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Start(t, providers.FormatAnthropic)
			s.Enqueue(Step{Body: []byte(`{"ok":true}`), Check: tt.check})
			resp, err := post(t, s, context.Background(), "messages", `{}`)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tt.wantStatus, resp.StatusCode)
			require.Equal(t, tt.wantBody, string(body))
		})
	}
}

func TestDropAfter(t *testing.T) {
	step := AnthropicStream("m", []string{"a", "b", "c"}, Usage{Input: 1, Output: 3})
	n := len(step.Events)
	tests := []struct {
		name      string
		dropAfter int
		sent      int // events that arrive
		wantErr   bool
	}{
		{name: "no drop", dropAfter: 0, sent: n},
		{name: "right after headers", dropAfter: -1, sent: 0, wantErr: true},
		{name: "after one", dropAfter: 1, sent: 1, wantErr: true},
		{name: "after three", dropAfter: 3, sent: 3, wantErr: true},
		{name: "after all", dropAfter: n, sent: n, wantErr: true},
		{name: "beyond all", dropAfter: n + 5, sent: n, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Start(t, providers.FormatAnthropic)
			st := step
			st.DropAfter = tt.dropAfter
			s.Enqueue(st)
			resp, err := post(t, s, context.Background(), "messages", `{}`)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, 200, resp.StatusCode)
			require.Equal(t, "text/event-stream; charset=utf-8", resp.Header.Get("Content-Type"))
			data, err := io.ReadAll(resp.Body)
			if tt.wantErr {
				require.ErrorIs(t, err, io.ErrUnexpectedEOF)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, string(Step{Events: step.Events[:tt.sent]}.StreamBytes()), string(data))
		})
	}
}

func TestHangReturnsOnClientCancel(t *testing.T) {
	s := Start(t, providers.FormatOpenAI)
	s.Enqueue(Step{Hang: true})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		resp, err := post(t, s, ctx, "chat/completions", `{"model":"m"}`)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	eventually(t, func() bool { return s.Count() == 1 }, "request not received")
	require.EqualValues(t, 1, s.active.Load())
	select {
	case err := <-errc:
		t.Fatalf("a hanging step answered: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)
	eventually(t, func() bool { return s.active.Load() == 0 }, "the hanging handler did not return after the client went away")
}

func TestCloseEndsHangingHandlers(t *testing.T) {
	s := NewServer(providers.FormatOpenAI)
	s.Enqueue(Step{Hang: true}, Step{Events: []Event{{Data: "1"}, {Data: "2", Wait: make(chan struct{})}}})
	errc := make(chan error, 2)
	for range 2 {
		go func() {
			resp, err := post(t, s, context.Background(), "chat/completions", `{"model":"m"}`)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			errc <- err
		}()
	}
	eventually(t, func() bool { return s.Count() == 2 }, "requests not received")
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on a hanging handler")
	}
	require.Error(t, <-errc)
	require.Error(t, <-errc)
	s.Close() // idempotent
}

func TestHeaderDelay(t *testing.T) {
	t.Run("waits", func(t *testing.T) {
		s := Start(t, providers.FormatOpenAI)
		s.Enqueue(Step{HeaderDelay: 100 * time.Millisecond, Body: []byte(`{}`)})
		start := time.Now()
		resp, err := post(t, s, context.Background(), "chat/completions", `{}`)
		require.NoError(t, err)
		resp.Body.Close()
		require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
	})
	t.Run("aborts when the client goes away", func(t *testing.T) {
		s := Start(t, providers.FormatOpenAI)
		s.Enqueue(Step{HeaderDelay: time.Hour, Body: []byte(`{}`)})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := post(t, s, ctx, "chat/completions", `{}`)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		eventually(t, func() bool { return s.active.Load() == 0 }, "the delayed handler did not return")
	})
}

func TestEventGateAndDelay(t *testing.T) {
	s := Start(t, providers.FormatOpenAI)
	gate := make(chan struct{})
	step := Step{Events: []Event{{Data: "first"}, {Data: "second", Wait: gate}, {Data: "third", Delay: 20 * time.Millisecond}}}
	s.Enqueue(step)
	resp, err := post(t, s, context.Background(), "chat/completions", `{}`)
	require.NoError(t, err)
	defer resp.Body.Close()
	first := make([]byte, len("data: first\n\n"))
	_, err = io.ReadFull(resp.Body, first)
	require.NoError(t, err)
	require.Equal(t, "data: first\n\n", string(first))
	close(gate)
	rest, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "data: second\n\ndata: third\n\n", string(rest))
}

func TestEventEncoding(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{name: "unnamed", ev: Event{Data: `{"a":1}`}, want: "data: {\"a\":1}\n\n"},
		{name: "named", ev: Event{Name: "ping", Data: `{"type":"ping"}`}, want: "event: ping\ndata: {\"type\":\"ping\"}\n\n"},
		{name: "multi-line", ev: Event{Data: "a\nb"}, want: "data: a\ndata: b\n\n"},
		{name: "empty", ev: Event{}, want: "data: \n\n"},
		{name: "raw", ev: Event{Name: "ignored", Data: "ignored", Raw: ": comment\r\ndata: x\r\n\r\n"}, want: ": comment\r\ndata: x\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, string(tt.ev.Bytes()))
			s := Start(t, providers.FormatOpenAI)
			s.Enqueue(Step{Events: []Event{tt.ev}})
			resp, err := post(t, s, context.Background(), "chat/completions", `{}`)
			require.NoError(t, err)
			defer resp.Body.Close()
			data, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tt.want, string(data))
		})
	}
}

func TestAutoReplyErrors(t *testing.T) {
	tests := []struct {
		name       string
		format     providers.Format
		method     string
		path       string
		body       string
		wantStatus int
		wantInBody string
	}{
		{"openai invalid json", providers.FormatOpenAI, "POST", "/v1/chat/completions", `{`, 400, `"type":"invalid_request_error"`},
		{"openai missing model", providers.FormatOpenAI, "POST", "/v1/responses", `{}`, 400, `"error":{`},
		{"openai wrong method", providers.FormatOpenAI, "GET", "/v1/chat/completions", ``, 405, `"error":{`},
		{"openai no v1", providers.FormatOpenAI, "POST", "/chat/completions", `{"model":"m"}`, 404, `Invalid URL (POST /chat/completions)`},
		{"openai messages path", providers.FormatOpenAI, "POST", "/v1/messages", `{"model":"m"}`, 404, `"type":"invalid_request_error"`},
		{"anthropic invalid json", providers.FormatAnthropic, "POST", "/v1/messages", `nope`, 400, `"type":"invalid_request_error"`},
		{"anthropic unknown", providers.FormatAnthropic, "POST", "/v1/complete", `{"model":"m"}`, 404, `"type":"not_found_error"`},
		{"anthropic wrong method", providers.FormatAnthropic, "PUT", "/v1/messages", `{"model":"m"}`, 405, `"type":"error"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Start(t, tt.format)
			req, err := http.NewRequest(tt.method, strings.TrimSuffix(s.URL, "/v1/")+tt.path, strings.NewReader(tt.body))
			require.NoError(t, err)
			resp, err := s.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tt.wantStatus, resp.StatusCode)
			require.Contains(t, string(body), tt.wantInBody)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		})
	}
}

func TestOpenAIChatStreamWireFormat(t *testing.T) {
	step := OpenAIChatStream("m", []string{"Hi"}, Usage{Input: 2, Output: 1}, true)
	want := `data: {"id":"chatcmpl-fake-1","object":"chat.completion.chunk","created":1700000000,"model":"m","system_fingerprint":"fp_fake","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-fake-1","object":"chat.completion.chunk","created":1700000000,"model":"m","system_fingerprint":"fp_fake","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-fake-1","object":"chat.completion.chunk","created":1700000000,"model":"m","system_fingerprint":"fp_fake","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}

data: {"id":"chatcmpl-fake-1","object":"chat.completion.chunk","created":1700000000,"model":"m","system_fingerprint":"fp_fake","choices":[],"usage":{"prompt_tokens":2,"completion_tokens":1,"total_tokens":3,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}

data: [DONE]

`
	require.Equal(t, want, string(step.StreamBytes()))
	noUsage := OpenAIChatStream("m", []string{"Hi"}, Usage{}, false).StreamBytes()
	require.NotContains(t, string(noUsage), `"usage"`)
	require.True(t, bytes.HasSuffix(noUsage, []byte("data: [DONE]\n\n")))
}

func TestAnthropicStreamWireFormat(t *testing.T) {
	step := AnthropicStream("claude", []string{"Hi"}, Usage{Input: 5, Output: 2, CacheRead: 1})
	want := `event: message_start
data: {"type":"message_start","message":{"id":"msg_fake_1","type":"message","role":"assistant","model":"claude","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"cache_creation_input_tokens":0,"cache_read_input_tokens":1,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type":"ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":5,"cache_creation_input_tokens":0,"cache_read_input_tokens":1,"output_tokens":2}}

event: message_stop
data: {"type":"message_stop"}

`
	require.Equal(t, want, string(step.StreamBytes()))
}

func TestErrorShapes(t *testing.T) {
	tests := []struct {
		name   string
		format providers.Format
		status int
		want   string
	}{
		{"openai 400", providers.FormatOpenAI, 400, `{"error":{"message":"m","type":"invalid_request_error","param":null,"code":null}}`},
		{"openai 401", providers.FormatOpenAI, 401, `{"error":{"message":"m","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`},
		{"openai 429", providers.FormatOpenAI, 429, `{"error":{"message":"m","type":"requests","param":null,"code":"rate_limit_exceeded"}}`},
		{"openai 503", providers.FormatOpenAI, 503, `{"error":{"message":"m","type":"server_error","param":null,"code":null}}`},
		{"anthropic 429", providers.FormatAnthropic, 429, `{"type":"error","error":{"type":"rate_limit_error","message":"m"},"request_id":"req_fake_1"}`},
		{"anthropic 529", providers.FormatAnthropic, 529, `{"type":"error","error":{"type":"overloaded_error","message":"m"},"request_id":"req_fake_1"}`},
		{"anthropic 418", providers.FormatAnthropic, 418, `{"type":"error","error":{"type":"invalid_request_error","message":"m"},"request_id":"req_fake_1"}`},
		{"anthropic 503", providers.FormatAnthropic, 503, `{"type":"error","error":{"type":"api_error","message":"m"},"request_id":"req_fake_1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			step := Error(tt.format, tt.status, "m")
			require.Equal(t, tt.status, step.Status)
			require.Equal(t, tt.want, string(step.Body))
		})
	}
	t.Run("stream error events", func(t *testing.T) {
		require.Equal(t, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
			string(StreamErrorEvent(providers.FormatAnthropic, 529, "Overloaded").Bytes()))
		require.Equal(t, "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n",
			string(StreamErrorEvent(providers.FormatOpenAI, 500, "boom").Bytes()))
	})
	t.Run("rate limited", func(t *testing.T) {
		step := RateLimited(providers.FormatOpenAI, "")
		require.Empty(t, step.Header.Get("Retry-After"))
		step = RateLimited(providers.FormatAnthropic, "Wed, 21 Oct 2015 07:28:00 GMT")
		require.Equal(t, "Wed, 21 Oct 2015 07:28:00 GMT", step.Header.Get("Retry-After"))
		require.Equal(t, 429, step.Status)
	})
}

func TestDeadURL(t *testing.T) {
	u := DeadURL(t)
	require.True(t, strings.HasPrefix(u, "http://127.0.0.1:"))
	require.True(t, strings.HasSuffix(u, "/v1/"))
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	_, err := (&http.Client{Transport: tr}).Post(u+"chat/completions", "application/json", strings.NewReader(`{}`))
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
}

func TestNewServerPanicsOnUnknownFormat(t *testing.T) {
	require.Panics(t, func() { NewServer("gemini") })
}

func TestStepServeHTTP(t *testing.T) {
	check := func(r Recorded) error {
		if !bytes.Contains(r.Body, []byte(`"ok"`)) {
			return errors.New("no ok")
		}
		return nil
	}
	gate := make(chan struct{})
	var running atomic.Int64
	step := Step{Check: check, Events: []Event{{Data: "first", Wait: gate}, {Raw: "data: raw\n\n"}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		running.Add(1)
		defer running.Add(-1)
		step.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	do := func(ctx context.Context, body string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader(body))
		require.NoError(t, err)
		return srv.Client().Do(req)
	}

	t.Run("check fails", func(t *testing.T) {
		resp, err := do(context.Background(), `{}`)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, 599, resp.StatusCode)
	})
	t.Run("client goes away while held back", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		// The header arrives before the held-back first event.
		resp, err := do(ctx, `"ok"`)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		cancel()
		resp.Body.Close()
		eventually(t, func() bool { return running.Load() == 0 }, "the handler did not return")
	})
	t.Run("plays the events", func(t *testing.T) {
		resp, err := do(context.Background(), `"ok"`)
		require.NoError(t, err)
		defer resp.Body.Close()
		close(gate)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, "data: first\n\ndata: raw\n\n", string(body))
	})
}
