package translate

import (
	"bytes"
	"go/build"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/providers"
)

const (
	oai = providers.FormatOpenAI
	ant = providers.FormatAnthropic
)

func feed(t *testing.T, s *Stream, events ...string) []byte {
	t.Helper()
	var out []byte
	for _, e := range events {
		var err error
		out, err = s.Event(out, nil, []byte(e))
		require.NoError(t, err, e)
	}
	return out
}

func TestStreamHasContentIsTheCommitPoint(t *testing.T) {
	t.Run("anthropic to openai", func(t *testing.T) {
		s := NewStream(ant, oai, StreamOptions{})
		out := feed(t, s, `{"type":"message_start","message":{"id":"m","model":"x","usage":{"input_tokens":1}}}`, `{"type":"ping"}`,
			`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
		require.NotEmpty(t, out, "the role chunk")
		require.False(t, s.HasContent())
		feed(t, s, `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}`)
		require.True(t, s.HasContent())
	})
	t.Run("openai to anthropic", func(t *testing.T) {
		s := NewStream(oai, ant, StreamOptions{})
		out := feed(t, s, `{"id":"c","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`)
		require.Contains(t, string(out), "message_start")
		require.False(t, s.HasContent())
		feed(t, s, `{"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"Hi"}}]}`)
		require.True(t, s.HasContent())
	})
	t.Run("a stop without content commits", func(t *testing.T) {
		s := NewStream(oai, ant, StreamOptions{})
		feed(t, s, `{"id":"c","choices":[{"index":0,"delta":{"role":"assistant"}}]}`, `{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`)
		require.False(t, s.HasContent())
		feed(t, s, `[DONE]`)
		require.True(t, s.HasContent())
		require.True(t, s.Done())
	})
}

func TestStreamPing(t *testing.T) {
	require.Equal(t, "event: ping\ndata: {\"type\":\"ping\"}\n\n", string(NewStream(oai, ant, StreamOptions{}).Ping(nil)))
	require.Equal(t, ": ping\n\n", string(NewStream(ant, oai, StreamOptions{}).Ping(nil)))
}

func TestStreamErrorEventEndsTheStream(t *testing.T) {
	for _, tt := range []struct {
		from, to providers.Format
		want     string
		events   []string
	}{
		{ant, oai, `data: {"error":{"message":"boom \"x\"","type":"server_error","param":null,"code":"upstream_error"}}` + "\n\n",
			[]string{`{"type":"message_start","message":{"id":"m"}}`, `{"type":"message_stop"}`}},
		{oai, ant, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"boom \\\"x\\\"\",\"code\":\"upstream_error\"}}\n\n",
			[]string{`{"id":"c","choices":[{"index":0,"delta":{"content":"x"}}]}`, `[DONE]`}},
	} {
		s := NewStream(tt.from, tt.to, StreamOptions{})
		status := 502
		if tt.to == ant {
			status = 503
		}
		out := s.ErrorEvent([]byte("prefix"), status, `boom "x"`, "upstream_error")
		require.Equal(t, "prefix"+tt.want, string(out))
		require.Empty(t, feed(t, s, tt.events...), "events after an error are ignored")
		require.Empty(t, s.Finish(nil, true))
		require.Empty(t, s.ErrorEvent(nil, 500, "again", ""))
		require.NotEmpty(t, s.Ping(nil))
	}
}

func TestStreamFinishIncompleteAppendsNothing(t *testing.T) {
	s := NewStream(oai, ant, StreamOptions{})
	feed(t, s, `{"id":"c","choices":[{"index":0,"delta":{"content":"x"}}]}`, `{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`)
	require.False(t, s.Done())
	require.Empty(t, s.Finish(nil, false))
	out := s.Finish(nil, true)
	require.Contains(t, string(out), "message_stop")
	require.Empty(t, s.Finish(nil, true), "owed events are written once")

	a := NewStream(ant, oai, StreamOptions{IncludeUsage: true})
	feed(t, a, `{"type":"message_start","message":{"id":"m"}}`, `{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":3}}`)
	require.Empty(t, a.Finish(nil, false))
	out = a.Finish(nil, true)
	require.Contains(t, string(out), `"finish_reason":"length"`)
	require.Contains(t, string(out), `"completion_tokens":3`)
	require.True(t, strings.HasSuffix(string(out), "data: [DONE]\n\n"))
}

func TestStreamInvalidUpstreamLeavesDstUnchanged(t *testing.T) {
	for _, tt := range []struct {
		name     string
		from, to providers.Format
		events   []string
		bad      string
	}{
		{"malformed chunk", oai, ant, nil, `{"choices":[`},
		{"malformed event", ant, oai, []string{`{"type":"message_start","message":{"id":"m"}}`}, `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":}}`},
		{"input_json_delta for a text block", ant, oai, []string{`{"type":"message_start","message":{"id":"m"}}`, `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`},
			`{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{}"}}`},
		{"block index out of range", ant, oai, []string{`{"type":"message_start","message":{"id":"m"}}`}, `{"type":"content_block_start","index":100000,"content_block":{"type":"text","text":""}}`},
		{"tool index out of range", oai, ant, []string{`{"id":"c","choices":[{"index":0,"delta":{"role":"assistant"}}]}`}, `{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":9999,"id":"x","function":{"name":"f"}}]}}]}`},
		{"arguments after a closed tool call", oai, ant, []string{
			`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{}"}}]}}]}`,
			`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"b","function":{"name":"g","arguments":"{}"}}]}}]}`,
		}, `{"id":"c","choices":[{"index":0,"delta":{"content":"x","tool_calls":[{"index":0,"function":{"arguments":"x"}}]}}]}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStream(tt.from, tt.to, StreamOptions{})
			feed(t, s, tt.events...)
			dst := []byte("kept")
			out, err := s.Event(dst, nil, []byte(tt.bad))
			require.Error(t, err)
			require.Equal(t, "kept", string(out))
		})
	}
}

func TestStreamLateWhitespaceArgumentsAreIgnored(t *testing.T) {
	s := NewStream(oai, ant, StreamOptions{})
	out := feed(t, s,
		`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{}"}}]}}]}`,
		`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"b","function":{"name":"g","arguments":"{}"}}]}}]}`,
		`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":" \n"}}]}}]}`,
		`[DONE]`)
	sum, err := checkAnthropicStream(out)
	require.NoError(t, err)
	require.Equal(t, []toolSummary{{"a", "f", "{}"}, {"b", "g", "{}"}}, sum.tools)
}

func TestStreamSameFormatPassesEventsThrough(t *testing.T) {
	s := NewStream(oai, oai, StreamOptions{})
	out, err := s.Event(nil, nil, []byte(`{"x":1}`))
	require.NoError(t, err)
	out, err = s.Event(out, []byte("named"), []byte("a\nb"))
	require.NoError(t, err)
	out, err = s.Event(out, nil, nil)
	require.NoError(t, err)
	require.Equal(t, "data: {\"x\":1}\n\nevent: named\ndata: a\ndata: b\n\n", string(out))
	require.Empty(t, s.Finish(nil, true))
	require.False(t, s.HasContent())
}

func TestFormatsMustDiffer(t *testing.T) {
	_, _, err := Request(oai, oai, []byte(`{}`), RequestOptions{})
	require.Error(t, err)
	_, err = Response(ant, ant, []byte(`{}`), ResponseOptions{})
	require.Error(t, err)
	_, _, err = Request("gemini", oai, []byte(`{}`), RequestOptions{})
	require.Error(t, err)
	status, body := ErrorResponse(oai, oai, 418, []byte("x"))
	require.Equal(t, 418, status)
	require.Equal(t, "x", string(body))
}

func TestErrorType(t *testing.T) {
	e := &Error{Param: "n", Message: "bad"}
	require.Equal(t, "translate: n: bad", e.Error())
	require.Equal(t, 400, e.Status())
	require.Equal(t, "translate: bad", (&Error{Message: "bad"}).Error())
}

// TestStreamSteadyStateDoesNotAllocate pins the zero-allocation hot path:
// template-matched deltas in both directions.
func TestStreamSteadyStateDoesNotAllocate(t *testing.T) {
	for _, tt := range []struct {
		name     string
		from, to providers.Format
		start    []string
		delta    string
	}{
		{"openai text", oai, ant, []string{`{"id":"c","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`},
			`{"id":"c","model":"m","choices":[{"index":0,"delta":{"content":" word"},"finish_reason":null}]}`},
		{"openai arguments", oai, ant, []string{`{"id":"c","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":""}}]}}]}`},
			`{"id":"c","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"a"}}]}}]}`},
		{"anthropic text", ant, oai, []string{`{"type":"message_start","message":{"id":"m","model":"x"}}`, `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`},
			`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" word"}}`},
		{"anthropic arguments", ant, oai, []string{`{"type":"message_start","message":{"id":"m","model":"x"}}`, `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}}`},
			`{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"\"a"}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStream(tt.from, tt.to, StreamOptions{Now: fixedNow})
			feed(t, s, tt.start...)
			delta := []byte(tt.delta)
			out := make([]byte, 0, 1<<16)
			allocs := testing.AllocsPerRun(1000, func() {
				var err error
				out, err = s.Event(out[:0], nil, delta)
				if err != nil {
					t.Fatal(err)
				}
			})
			require.Zero(t, allocs)
			require.True(t, bytes.Contains(out, []byte(`"a`)) || bytes.Contains(out, []byte(" word")))
		})
	}
}

func TestStreamErrorShapes(t *testing.T) {
	for _, tt := range []struct {
		name, event, data, want string
	}{
		{"error chunk", "", `{"error":{"message":"boom","type":"server_error","code":null}}`, `{"type":"api_error","message":"boom"}`},
		{"string error", "", `{"error":"boom"}`, `{"type":"api_error","message":"boom"}`},
		{"numeric code", "", `{"error":{"message":"slow down","code":429}}`, `{"type":"rate_limit_error","message":"slow down"}`},
		{"named error event", "error", `{"message":"boom","type":"invalid_request_error"}`, `{"type":"invalid_request_error","message":"boom"}`},
		{"named error event with error object", "error", `{"error":{"message":"boom","code":"rate_limit_exceeded"}}`, `{"type":"rate_limit_error","message":"boom"}`},
		{"named error event with text", "error", `upstream exploded`, `{"type":"api_error","message":"upstream exploded"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStream(oai, ant, StreamOptions{})
			out, err := s.Event(nil, []byte(tt.event), []byte(tt.data))
			require.NoError(t, err)
			require.Equal(t, "event: error\ndata: {\"type\":\"error\",\"error\":"+tt.want+"}\n\n", string(out))
			require.True(t, s.Done())
			require.Empty(t, s.ErrorEvent(nil, 502, "again", ""), "one error event only")
		})
	}
	t.Run("anthropic event without type", func(t *testing.T) {
		s := NewStream(ant, oai, StreamOptions{})
		out, err := s.Event(nil, []byte("error"), []byte(`{"error":{"type":"overloaded_error","message":"Overloaded"}}`))
		require.NoError(t, err)
		require.Equal(t, `data: {"error":{"message":"Overloaded","type":"server_error","param":null,"code":"overloaded_error"}}`+"\n\n", string(out))
	})
}

// TestNoTokenCounting checks that the translator never counts tokens on
// its own: neither it nor any package of the module it imports imports
// package tokens or a tokenizer. Token estimates come from
// StreamOptions.InputTokens.
func TestNoTokenCounting(t *testing.T) {
	const module = "github.com/llmgate/gateway/"
	seen := map[string]bool{}
	var visit func(dir string)
	visit = func(dir string) {
		if seen[dir] {
			return
		}
		seen[dir] = true
		pkg, err := build.ImportDir(dir, 0)
		require.NoError(t, err, dir)
		for _, imp := range pkg.Imports {
			require.NotEqual(t, module+"tokens", imp, "%s imports package tokens", dir)
			require.NotContains(t, imp, "tiktoken", "%s imports a tokenizer", dir)
			if rest, ok := strings.CutPrefix(imp, module); ok {
				visit(filepath.Join("..", "..", rest))
			}
		}
	}
	visit(".")
	require.Greater(t, len(seen), 2)
}
