package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/internal/benchcpu"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
	"github.com/llmgate/gateway/redaction"
)

func redactionEnv(t *testing.T, m redaction.Mode) *testEnv {
	t.Helper()
	return newEnv(t, envConfig{opts: []Option{WithRedaction([]redaction.Rule{
		{Preset: redaction.PresetEmail},
		{Name: "ticket", From: `TICKET-(\d+)`, To: "ticket #$1"},
	}, m)}})
}

func TestWithRedactionReportsEveryRuleProblem(t *testing.T) {
	_, err := New(WithRedaction([]redaction.Rule{
		{Preset: redaction.PresetEmail},
		{From: `x*`},
		{Preset: "passport"},
	}, redaction.AcrossChunks), WithRedaction(nil, redaction.Mode(9)))
	require.Error(t, err)
	var got []string
	for _, oe := range OptionErrors(err) {
		require.Equal(t, "WithRedaction", oe.Option)
		got = append(got, oe.Field)
	}
	require.Equal(t, []string{"[1]", "[2]", "Mode"}, got)
	require.ErrorIs(t, err, redaction.ErrEmptyMatch)
	require.ErrorIs(t, err, redaction.ErrUnknownPreset)
}

func TestRedactionOfRequestBodies(t *testing.T) {
	e := redactionEnv(t, redaction.AcrossChunks)
	e.oa.Enqueue(providertest.OpenAIChat("gpt-4o", "ok", providertest.Usage{Input: 1, Output: 1}))
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":"I am jane\u0040example.com, see TICKET-7"}]}`
	resp, out := e.post(t, "/v1/chat/completions", body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	reqs := e.oa.Requests()
	require.Len(t, reqs, 1)
	up := string(reqs[0].Body)
	require.NotContains(t, up, "example.com")
	require.Contains(t, up, `I am [EMAIL], see ticket #7`)
	require.Equal(t, "gpt-4o", upstreamModel(t, reqs[0]), "routing reads the redacted body")
	require.Equal(t, map[string]int{"email": 1, "ticket": 1}, e.events.last(t).Redactions)
}

func TestRedactionOfJSONAnswers(t *testing.T) {
	for _, tc := range []struct {
		name, path, body string
		step             providertest.Step
		anthropic        bool
	}{
		{name: "openai", path: "/v1/chat/completions", body: chatBody("gpt-4o"),
			step: providertest.OpenAIChat("gpt-4o", "write to bob@example.com", providertest.Usage{Input: 1, Output: 1})},
		{name: "anthropic", path: "/v1/messages", body: messagesBody("claude-sonnet-4-5"), anthropic: true,
			step: providertest.AnthropicMessage("claude-sonnet-4-5", "write to bob@example.com", providertest.Usage{Input: 1, Output: 1})},
		{name: "translated", path: "/v1/messages", body: messagesBody("gpt-4o"),
			step: providertest.OpenAIChat("gpt-4o", "write to bob@example.com", providertest.Usage{Input: 1, Output: 1})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := redactionEnv(t, redaction.AcrossChunks)
			if tc.anthropic {
				e.an.Enqueue(tc.step)
			} else {
				e.oa.Enqueue(tc.step)
			}
			resp, out := e.post(t, tc.path, tc.body)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
			require.NotContains(t, string(out), "bob@")
			require.Contains(t, string(out), "write to [EMAIL]")
			require.Equal(t, map[string]int{"email": 1}, e.events.last(t).Redactions)
		})
	}
}

func TestRedactionOfStreams(t *testing.T) {
	split := []string{"mail bob@exa", "mple.com about TICK", "ET-42 now"}
	usage := providertest.Usage{Input: 3, Output: 3}
	for _, tc := range []struct {
		name      string
		mode      redaction.Mode
		upstream  providers.Format
		clientAPI providers.Format
		want      string
		counts    map[string]int
	}{
		{name: "openai across chunks", upstream: providers.FormatOpenAI, clientAPI: providers.FormatOpenAI,
			want: "mail [EMAIL] about ticket #42 now", counts: map[string]int{"email": 1, "ticket": 1}},
		{name: "anthropic across chunks", upstream: providers.FormatAnthropic, clientAPI: providers.FormatAnthropic,
			want: "mail [EMAIL] about ticket #42 now", counts: map[string]int{"email": 1, "ticket": 1}},
		{name: "anthropic to openai client", upstream: providers.FormatAnthropic, clientAPI: providers.FormatOpenAI,
			want: "mail [EMAIL] about ticket #42 now", counts: map[string]int{"email": 1, "ticket": 1}},
		{name: "openai to anthropic client", upstream: providers.FormatOpenAI, clientAPI: providers.FormatAnthropic,
			want: "mail [EMAIL] about ticket #42 now", counts: map[string]int{"email": 1, "ticket": 1}},
		{name: "per chunk misses split matches", mode: redaction.PerChunk, upstream: providers.FormatOpenAI, clientAPI: providers.FormatOpenAI,
			want: strings.Join(split, "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := redactionEnv(t, tc.mode)
			model := "gpt-4o"
			if tc.upstream == providers.FormatAnthropic {
				model = "claude-sonnet-4-5"
				e.an.Enqueue(providertest.AnthropicStream(model, split, usage))
			} else {
				e.oa.Enqueue(providertest.OpenAIChatStream(model, split, usage, true))
			}
			var text string
			var err error
			if tc.clientAPI == providers.FormatAnthropic {
				text, err = collectAnthropic(t, e, model)
			} else {
				text, err = collectOpenAI(t, e, model)
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, text)
			ev := e.events.last(t)
			require.Nil(t, ev.Err)
			require.Equal(t, tc.counts, ev.Redactions)
			require.True(t, ev.UsageReported)
		})
	}
}

func TestRedactionSendsHeldTextBeforeAnInStreamError(t *testing.T) {
	for _, tc := range []struct {
		name     string
		upstream providers.Format
		client   providers.Format
	}{
		{name: "anthropic", upstream: providers.FormatAnthropic, client: providers.FormatAnthropic},
		{name: "openai", upstream: providers.FormatOpenAI, client: providers.FormatOpenAI},
		{name: "translated", upstream: providers.FormatAnthropic, client: providers.FormatOpenAI},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := redactionEnv(t, redaction.AcrossChunks)
			model := "gpt-4o"
			deltas := []string{"par", "tial bob@ex"}
			if tc.upstream == providers.FormatAnthropic {
				model = "claude-sonnet-4-5"
				e.an.Enqueue(providertest.StreamError(providers.FormatAnthropic, model, deltas, 529, "Overloaded"))
			} else {
				e.oa.Enqueue(providertest.StreamError(providers.FormatOpenAI, model, deltas, 500, "boom"))
			}
			var text string
			var err error
			if tc.client == providers.FormatAnthropic {
				text, err = collectAnthropic(t, e, model)
			} else {
				text, err = collectOpenAI(t, e, model)
			}
			require.Error(t, err)
			// "bob@ex" could have begun an address: it was held back, and
			// is sent, as it is no match, before the error.
			require.Equal(t, "partial bob@ex", text)
			require.ErrorIs(t, e.events.last(t).Err, ErrStreamFailed)
		})
	}
}

func TestNoRedactionLeavesTrafficAlone(t *testing.T) {
	e := newEnv(t, envConfig{opts: []Option{WithRedaction(nil, redaction.AcrossChunks)}})
	e.oa.Enqueue(providertest.OpenAIChatStream("gpt-4o", []string{"bob@exa", "mple.com"}, providertest.Usage{Input: 1, Output: 1}, true))
	text, err := collectOpenAI(t, e, "gpt-4o")
	require.NoError(t, err)
	require.Equal(t, "bob@example.com", text)
	require.Nil(t, e.events.last(t).Redactions)
}

func TestRedactionOfResponsesStreams(t *testing.T) {
	e := redactionEnv(t, redaction.AcrossChunks)
	e.oa.Enqueue(providertest.OpenAIResponsesReplyStream(providertest.Reply{Model: "gpt-4o", Deltas: []string{"mail bob@example.com ", "now"}}))
	resp, out := e.post(t, "/v1/responses", `{"model":"gpt-4o","input":"hi","stream":true}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	require.NotContains(t, string(out), "bob@")
	require.Contains(t, string(out), `"delta":"mail [EMAIL] "`)
	require.Contains(t, string(out), "event: response.completed\n")
	ev := e.events.last(t)
	require.Nil(t, ev.Err)
	require.Positive(t, ev.Redactions["email"])
}

// redactionBenchDeltas are the 20 content chunks of BenchmarkRedactedStream:
// a support answer with two addresses and two phone numbers each inside
// one chunk, and one address split across chunks 11 and 12.
var redactionBenchDeltas = []string{
	"Thanks for waiting!", " I checked your account", " and the invoice went", " to maria.lopez@example.com",
	" on Monday.", " If that address is wrong,", " call our billing desk", " at +1 415-555-0132",
	" between 9am and 5pm.", " You can also write", " to billing@acme-", "corp.io and",
	" quote ticket 48213.", " Your backup contact,", " Sam, is on (212) 555-0199", " and prefers email:",
	" sam.k@example.org.", " Anything else I", " can help you with", " today?",
}

// streamText returns the text of the content events of an OpenAI chat
// completion or Anthropic Messages stream.
func streamText(tb testing.TB, stream []byte) string {
	tb.Helper()
	var text strings.Builder
	for line := range strings.SplitSeq(string(stream), "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var ev struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
			Delta struct {
				Text string `json:"text"`
			} `json:"delta"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			tb.Fatalf("event %q: %v", data, err)
		}
		for _, c := range ev.Choices {
			text.WriteString(c.Delta.Content)
		}
		text.WriteString(ev.Delta.Text)
	}
	return text.String()
}

// BenchmarkRedactedStream relays a streamed answer of 20 content chunks
// through the whole handler without redaction ("none") and with every
// preset, per chunk ("presets") and across chunks ("presets-split"), in
// both formats: compare the sub-benchmarks of a format as ratios to its
// "none" (cpu-ns/op, the process's CPU time per stream, is the steadier
// measure on a busy machine). Before timing, each case checks the answer it relays: the raw
// text without redaction, the addresses and numbers replaced with it.
func BenchmarkRedactedStream(b *testing.B) {
	up := benchUpstreamDeltas(b, redactionBenchDeltas)
	transport := &http.Transport{MaxIdleConnsPerHost: 64}
	b.Cleanup(transport.CloseIdleConnections)
	var presets []redaction.Rule
	for _, p := range redaction.Presets() {
		presets = append(presets, redaction.Rule{Preset: p})
	}
	raw := strings.Join(redactionBenchDeltas, "")
	for _, f := range []struct{ name, path, model string }{
		{"openai", "/v1/chat/completions", "gpt-4o-mini"},
		{"anthropic", "/v1/messages", "claude-haiku-4-5"},
	} {
		body := []byte(`{"model":"` + f.model + `","max_tokens":256,"stream":true,"messages":[{"role":"user","content":"Where did my invoice go?"}]}`)
		for _, bc := range []struct {
			name   string
			redact Option
			// replaced is the number of replacements expected, unsplit
			// tells whether the split address is left as it was.
			replaced int
			unsplit  bool
		}{
			{"none", nil, 0, true},
			{"presets", WithRedaction(presets, redaction.PerChunk), 4, true},
			{"presets-split", WithRedaction(presets, redaction.AcrossChunks), 5, false},
		} {
			var redactions map[string]int
			opts := []Option{WithHTTPClient(&http.Client{Transport: transport}),
				WithProvider(ProviderConfig{ID: "openai", BaseURL: up.URL + "/v1/", Keys: []ProviderKey{{Value: "sk-bench"}}}),
				WithProvider(ProviderConfig{ID: "anthropic", BaseURL: up.URL + "/v1/", Keys: []ProviderKey{{Value: "sk-bench"}}}),
				WithEventSink(EventSinkFunc(func(_ context.Context, e *Event) { redactions = e.Redactions }))}
			if bc.redact != nil {
				opts = append(opts, bc.redact)
			}
			gw, err := New(opts...)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = gw.Close() })
			newReq := func() *http.Request {
				r := httptest.NewRequest(http.MethodPost, f.path, bytes.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				return r
			}

			// Check, once, that the case does what it is named for.
			rec := httptest.NewRecorder()
			gw.ServeHTTP(rec, newReq())
			if rec.Code != http.StatusOK {
				b.Fatalf("%s/%s: status %d: %s", f.name, bc.name, rec.Code, rec.Body)
			}
			text := streamText(b, rec.Body.Bytes())
			total := 0
			for _, n := range redactions {
				total += n
			}
			replaced := strings.Count(text, "[EMAIL]") + strings.Count(text, "[PHONE]")
			switch {
			case bc.redact == nil && text != raw:
				b.Fatalf("%s/%s: relayed %q, want the upstream's text", f.name, bc.name, text)
			case replaced != bc.replaced || total != bc.replaced:
				b.Fatalf("%s/%s: %d placeholders and %d counted replacements in %q, want %d", f.name, bc.name, replaced, total, text, bc.replaced)
			case strings.Contains(text, "billing@acme-corp.io") != bc.unsplit:
				b.Fatalf("%s/%s: split address: %q", f.name, bc.name, text)
			case bc.redact != nil && (strings.Contains(text, "@example.") || strings.Contains(text, "555-01")):
				b.Fatalf("%s/%s: unredacted text in %q", f.name, bc.name, text)
			}

			b.Run("stream/"+f.name+"/"+bc.name, func(b *testing.B) {
				b.ReportAllocs()
				defer benchcpu.Report(b)()
				w := &discardWriter{h: http.Header{}}
				for b.Loop() {
					w.reset()
					gw.ServeHTTP(w, newReq())
					if w.status != http.StatusOK {
						b.Fatalf("status %d", w.status)
					}
				}
			})
		}
	}
}
