package gateway

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

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
