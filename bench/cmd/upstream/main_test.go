package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestIsStream(t *testing.T) {
	for body, want := range map[string]bool{
		`{"model":"m","stream":true}`:                           true,
		`{"model":"m", "stream" : true }`:                       true,
		`{"model":"m","stream":false}`:                          false,
		`{"model":"m"}`:                                         false,
		`{"stream_options":{"include_usage":true}}`:             false,
		`{"stream":false,"stream_options":{"include_usage":1}}`: false,
		`{"messages":[{"content":"say \"stream\":true"}]}`:      false,
	} {
		require.Equal(t, want, isStream([]byte(body)), body)
	}
}

func startServer(t *testing.T) *httptest.Server {
	t.Helper()
	s := &server{def: build(params{events: 3, delay: time.Millisecond, size: 100}), cache: map[string]*profile{}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, srv *httptest.Server, path, body string) (*http.Response, []byte) {
	t.Helper()
	resp, err := srv.Client().Post(srv.URL+path, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// events splits an SSE body into its events.
func events(body []byte) [][]byte {
	return bytes.Split(bytes.TrimSuffix(body, []byte("\n\n")), []byte("\n\n"))
}

func TestJSON(t *testing.T) {
	srv := startServer(t)
	t.Run("chat completions", func(t *testing.T) {
		resp, body := post(t, srv, "/v1/chat/completions", `{"model":"m"}`)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var v struct {
			Choices []struct {
				Message      struct{ Content string }
				FinishReason string `json:"finish_reason"`
			}
			Usage struct {
				TotalTokens int `json:"total_tokens"`
			}
		}
		require.NoError(t, json.Unmarshal(body, &v))
		require.Len(t, v.Choices, 1)
		require.Len(t, v.Choices[0].Message.Content, 100)
		require.Equal(t, "stop", v.Choices[0].FinishReason)
		require.NotZero(t, v.Usage.TotalTokens)
	})
	t.Run("messages", func(t *testing.T) {
		resp, body := post(t, srv, "/v1/messages", `{"model":"m","max_tokens":9}`)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var v struct {
			Type    string
			Content []struct{ Type, Text string }
			Stop    string `json:"stop_reason"`
			Usage   struct {
				OutputTokens int `json:"output_tokens"`
			}
		}
		require.NoError(t, json.Unmarshal(body, &v))
		require.Equal(t, "message", v.Type)
		require.Len(t, v.Content, 1)
		require.Len(t, v.Content[0].Text, 100)
		require.Equal(t, "end_turn", v.Stop)
		require.NotZero(t, v.Usage.OutputTokens)
	})
}

func TestChatStream(t *testing.T) {
	srv := startServer(t)
	for _, tc := range []struct {
		name   string
		query  string
		chunks int
	}{{"flags", "", 3}, {"query", "?events=7&delay=0s", 7}} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, srv, "/prefix/v1/chat/completions"+tc.query,
				`{"model":"m","stream":true,"stream_options":{"include_usage":true}}`)
			require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream"))
			evs := events(body)
			require.Len(t, evs, tc.chunks+4, string(body))
			for i, ev := range evs {
				data, ok := bytes.CutPrefix(ev, []byte("data: "))
				require.True(t, ok, "event %d is not a data event: %q", i, ev)
				if i == len(evs)-1 {
					require.Equal(t, "[DONE]", string(data))
					continue
				}
				require.True(t, json.Valid(data), "event %d is not JSON: %s", i, data)
			}
			require.Contains(t, string(evs[len(evs)-2]), `"choices":[],"usage":{"prompt_tokens"`)
		})
	}
}

func TestMessagesStream(t *testing.T) {
	srv := startServer(t)
	resp, body := post(t, srv, "/v1/messages?events=5", `{"model":"m","max_tokens":9,"stream":true}`)
	require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream"))
	var names []string
	for _, ev := range events(body) {
		name, data, ok := strings.Cut(string(ev), "\n")
		require.True(t, ok, string(ev))
		names = append(names, strings.TrimPrefix(name, "event: "))
		require.True(t, json.Valid([]byte(strings.TrimPrefix(data, "data: "))), data)
	}
	want := []string{"message_start", "content_block_start", "ping"}
	for range 5 {
		want = append(want, "content_block_delta")
	}
	want = append(want, "content_block_stop", "message_delta", "message_stop")
	require.Equal(t, want, names)
}

func TestErrors(t *testing.T) {
	srv := startServer(t)
	for _, tc := range []struct {
		name, method, path string
		status             int
		anthropic          bool
	}{
		{"bad query", http.MethodPost, "/v1/chat/completions?events=x", http.StatusBadRequest, false},
		{"bad query, anthropic", http.MethodPost, "/v1/messages?events=0", http.StatusBadRequest, true},
		{"unknown query parameter", http.MethodPost, "/v1/chat/completions?evnts=3", http.StatusBadRequest, false},
		{"unknown path", http.MethodPost, "/v1/embeddings", http.StatusNotFound, false},
		{"wrong method", http.MethodGet, "/v1/messages", http.StatusMethodNotAllowed, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(`{}`))
			require.NoError(t, err)
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, tc.status, resp.StatusCode)
			var e map[string]any
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
			if tc.anthropic {
				require.Equal(t, "error", e["type"])
			} else {
				require.Contains(t, e, "error")
			}
		})
	}
}

// discard is a ResponseWriter that flushes nowhere, to measure the
// handler's own cost.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }

// WriteString is there as in net/http's ResponseWriter.
func (d *discard) WriteString(s string) (int, error) { return len(s), nil }
func (d *discard) WriteHeader(int)                   {}
func (d *discard) Flush()                            {}

// BenchmarkServe measures the upstream's CPU per response (no pause
// between chunks): go test -run XXX -bench Serve -benchmem ./bench/cmd/upstream
func BenchmarkServe(b *testing.B) {
	s := &server{def: build(params{events: 20, size: 600}), cache: map[string]*profile{}}
	for _, bc := range []struct{ name, path, body string }{
		{"chat", "/v1/chat/completions", `{"model":"m"}`},
		{"chat stream", "/v1/chat/completions", `{"model":"m","stream":true}`},
		{"messages", "/v1/messages", `{"model":"m","max_tokens":9}`},
		{"messages stream", "/v1/messages", `{"model":"m","max_tokens":9,"stream":true}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, bc.path, strings.NewReader(bc.body))
				s.ServeHTTP(&discard{h: http.Header{}}, r)
			}
		})
	}
}
