package redaction

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// openAIChunk is a chat completion chunk whose choice 0 has content text.
func openAIChunk(text string) string {
	b, _ := json.Marshal(text)
	return `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1741570283,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":` + string(b) + `},"logprobs":null,"finish_reason":null}],"usage":null}`
}

const (
	openAIRole   = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1741570283,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}`
	openAIFinish = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1741570283,"model":"gpt-4o","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`
	openAIUsage  = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1741570283,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}`
)

func anthropicDelta(text string) string {
	b, _ := json.Marshal(text)
	return `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":` + string(b) + `}}`
}

const (
	anthropicStart = `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[],"stop_reason":null,"usage":{"input_tokens":5,"output_tokens":1}}}`
	blockStart     = `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`
	blockStop      = `{"type":"content_block_stop","index":0}`
	messageDelta   = `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":12}}`
	messageStop    = `{"type":"message_stop"}`
)

// sent is one event an EventStream passed on.
type sent struct {
	own  bool // written by the EventStream (pre or Finish)
	data string
}

// run passes events through s and returns what it sends.
func run(t *testing.T, s *EventStream, events []string) []sent {
	t.Helper()
	var out []sent
	for _, ev := range events {
		pre, data, err := s.Event([]byte(ev))
		require.NoError(t, err)
		if pre != nil {
			out = append(out, sent{true, string(pre)})
		}
		out = append(out, sent{false, string(data)})
	}
	if fin := s.Finish(); fin != nil {
		out = append(out, sent{true, string(fin)})
	}
	for _, e := range out {
		if e.data != "[DONE]" {
			require.True(t, json.Valid([]byte(e.data)), e.data)
		}
	}
	return out
}

// openAIText concatenates the content of choice index in events.
func openAIText(t *testing.T, events []sent, index int) string {
	var b strings.Builder
	for _, e := range events {
		if e.data == "[DONE]" {
			continue
		}
		var c struct {
			Choices []struct {
				Index int
				Delta struct{ Content *string }
			}
		}
		require.NoError(t, json.Unmarshal([]byte(e.data), &c))
		for _, ch := range c.Choices {
			if ch.Index == index && ch.Delta.Content != nil {
				b.WriteString(*ch.Delta.Content)
			}
		}
	}
	return b.String()
}

// anthropicText concatenates the text deltas of events.
func anthropicText(t *testing.T, events []sent) string {
	var b strings.Builder
	for _, e := range events {
		var ev struct {
			Type  string
			Delta struct{ Type, Text string }
		}
		require.NoError(t, json.Unmarshal([]byte(e.data), &ev))
		if ev.Type == "content_block_delta" && ev.Delta.Type == "text_delta" {
			b.WriteString(ev.Delta.Text)
		}
	}
	return b.String()
}

// split cuts s at the offsets cuts.
func split(s string, cuts ...int) []string {
	var parts []string
	prev := 0
	for _, c := range append(cuts, len(s)) {
		parts = append(parts, s[prev:c])
		prev = c
	}
	return parts
}

func TestOpenAIStream(t *testing.T) {
	r := allPresets(t)
	text := "Write to john.doe@example.com or call 415-555-2671."
	events := []string{openAIRole}
	for _, part := range split(text, 12, 20, 30, 41) {
		events = append(events, openAIChunk(part))
	}
	events = append(events, openAIFinish, openAIUsage, "[DONE]")
	s := r.NewEventStream(OpenAIChat, AcrossChunks)
	out := run(t, s, events)
	require.Equal(t, "Write to [EMAIL] or call [PHONE].", openAIText(t, out, 0))
	require.Equal(t, Counts{0, 1, 0, 0, 1, 0}, s.Counts())
	// The events other than content pass unchanged. "415-555-2671." could
	// still begin an email ("415-555-2671.x@y.io"): it is held back and
	// sent, redacted, in a chunk of the stream's own before the finish
	// chunk.
	require.Equal(t, openAIRole, out[0].data)
	n := len(out)
	require.Equal(t, []sent{{false, openAIFinish}, {false, openAIUsage}, {false, "[DONE]"}}, out[n-3:])
	require.True(t, out[n-4].own)
	require.JSONEq(t, `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1741570283,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"[PHONE]."},"logprobs":null,"finish_reason":null}]}`, out[n-4].data)
}

func TestOpenAIStreamEveryCut(t *testing.T) {
	r := allPresets(t)
	for _, text := range presetSamples {
		whole, _ := r.Text(text)
		for i := 0; i <= len(text); i++ {
			events := []string{openAIRole, openAIChunk(text[:i]), openAIChunk(text[i:]), openAIFinish, "[DONE]"}
			if !validUTF8Cut(text, i) {
				continue // a JSON string holds whole characters
			}
			out := run(t, r.NewEventStream(OpenAIChat, AcrossChunks), events)
			require.Equal(t, whole, openAIText(t, out, 0), "cut at %d", i)
		}
	}
}

func validUTF8Cut(s string, i int) bool {
	return i == 0 || i == len(s) || (s[i]&0xC0) != 0x80
}

func TestOpenAIFinishInContentChunk(t *testing.T) {
	// A chunk with both content and a finish reason carries what was
	// held back itself.
	r := allPresets(t)
	last := `{"id":"c","choices":[{"index":0,"delta":{"content":"@b.io bye"},"finish_reason":"stop"}]}`
	out := run(t, r.NewEventStream(OpenAIChat, AcrossChunks), []string{openAIChunk("mail a"), last})
	require.Equal(t, "mail [EMAIL] bye", openAIText(t, out, 0))
	require.Len(t, out, 2)
	require.JSONEq(t, `{"id":"c","choices":[{"index":0,"delta":{"content":"[EMAIL] bye"},"finish_reason":"stop"}]}`, out[1].data)
}

func TestOpenAIChoices(t *testing.T) {
	r := allPresets(t)
	ev := func(a, b string) string {
		qa, _ := json.Marshal(a)
		qb, _ := json.Marshal(b)
		return `{"id":"c","created":1,"model":"m","choices":[{"index":0,"delta":{"content":` + string(qa) + `}},{"index":1,"delta":{"content":` + string(qb) + `}}]}`
	}
	out := run(t, r.NewEventStream(OpenAIChat, AcrossChunks), []string{ev("one a@", "two 123-45-"), ev("b.io x", "6789 y"), ev(" end", " fin"), "[DONE]"})
	require.Equal(t, "one [EMAIL] x end", openAIText(t, out, 0))
	require.Equal(t, "two [SSN] y fin", openAIText(t, out, 1))
	// Both held ends go out in one chunk before [DONE].
	require.True(t, out[len(out)-2].own)
	require.JSONEq(t, `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"end"},"logprobs":null,"finish_reason":null},{"index":1,"delta":{"content":"fin"},"logprobs":null,"finish_reason":null}]}`, out[len(out)-2].data)
}

func TestAnthropicStream(t *testing.T) {
	r := allPresets(t)
	text := "Card 4111 1111 1111 1111, key sk-ant-api03-AbCdEf0123456789xyz_-AbC ok"
	events := []string{anthropicStart, blockStart}
	for _, part := range split(text, 9, 16, 33, 50) {
		events = append(events, anthropicDelta(part))
	}
	events = append(events, blockStop, messageDelta, messageStop)
	s := r.NewEventStream(Anthropic, AcrossChunks)
	out := run(t, s, events)
	require.Equal(t, "Card [CARD], key [API_KEY] ok", anthropicText(t, out))
	require.Equal(t, 2, s.Counts().Total())
	n := len(out)
	require.Equal(t, []sent{{true, `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ok"}}`}, {false, blockStop}, {false, messageDelta}, {false, messageStop}}, out[n-4:])
	require.Equal(t, "content_block_delta", Anthropic.DeltaEvent())
	require.Empty(t, OpenAIChat.DeltaEvent())
}

func TestAnthropicStreamEveryCut(t *testing.T) {
	r := allPresets(t)
	for _, text := range presetSamples {
		whole, _ := r.Text(text)
		for i := 0; i <= len(text); i++ {
			if !validUTF8Cut(text, i) {
				continue
			}
			events := []string{anthropicStart, blockStart, anthropicDelta(text[:i]), anthropicDelta(text[i:]), blockStop, messageDelta, messageStop}
			out := run(t, r.NewEventStream(Anthropic, AcrossChunks), events)
			require.Equal(t, whole, anthropicText(t, out), "cut at %d", i)
		}
	}
}

func TestAnthropicBlocks(t *testing.T) {
	r := allPresets(t)
	tool := `{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t","name":"send","input":{}}}`
	toolDelta := `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"to\":\"a@b.io\"}"}}`
	thinking := `{"type":"content_block_delta","index":2,"delta":{"type":"thinking_delta","thinking":"a@b.io"}}`
	block2 := `{"type":"content_block_start","index":3,"content_block":{"type":"text","text":"x@"}}`
	events := []string{
		anthropicStart, blockStart, anthropicDelta("mail me: jo@"),
		// No content_block_stop: the next text block ends this one.
		tool, toolDelta, `{"type":"content_block_stop","index":1}`, thinking,
		block2, `{"type":"content_block_delta","index":3,"delta":{"type":"text_delta","text":"y.io"}}`,
		`{"type":"content_block_stop","index":3}`, messageStop,
	}
	s := r.NewEventStream(Anthropic, AcrossChunks)
	out := run(t, s, events)
	// Tool input and thinking pass unchanged.
	require.Contains(t, out, sent{false, toolDelta})
	require.Contains(t, out, sent{false, thinking})
	// Block 0's held "jo@" is sent when block 3 starts; block 3's text
	// starts in its content_block_start.
	require.Contains(t, out, sent{true, `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"jo@"}}`})
	require.Contains(t, out, sent{false, `{"type":"content_block_start","index":3,"content_block":{"type":"text","text":""}}`})
	require.Contains(t, out, sent{true, `{"type":"content_block_delta","index":3,"delta":{"type":"text_delta","text":"[EMAIL]"}}`})
}

func TestEventStreamPerChunk(t *testing.T) {
	r := allPresets(t)
	s := r.NewEventStream(OpenAIChat, PerChunk)
	out := run(t, s, []string{openAIChunk("a a@b.io b jo@"), openAIChunk("x.io"), openAIFinish, "[DONE]"})
	require.Equal(t, "a [EMAIL] b jo@x.io", openAIText(t, out, 0))
	for _, e := range out {
		require.False(t, e.own)
	}
}

func TestEventStreamEscapes(t *testing.T) {
	r := allPresets(t)
	s := r.NewEventStream(OpenAIChat, AcrossChunks)
	chunk := `{"choices":[{"index":0,"delta":{"content":"\"jo\u0040x.io\"\n"}}]}`
	out := run(t, s, []string{chunk, "[DONE]"})
	require.Equal(t, "\"[EMAIL]\"\n", openAIText(t, out, 0))
}

func TestEventStreamPassesOtherEvents(t *testing.T) {
	r := allPresets(t)
	for _, tc := range []struct {
		format Format
		data   string
	}{
		{OpenAIChat, openAIRole},
		{OpenAIChat, openAIUsage},
		{OpenAIChat, `{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"e\":\"a@b.io\"}"}}]}}]}`},
		{OpenAIChat, `{"error":{"message":"a@b.io"}}`},
		{OpenAIChat, ""},
		{Anthropic, anthropicStart},
		{Anthropic, `{"type":"ping"}`},
		{Anthropic, `{"type":"error","error":{"type":"overloaded_error","message":"a@b.io"}}`},
	} {
		t.Run(tc.data, func(t *testing.T) {
			s := r.NewEventStream(tc.format, AcrossChunks)
			data := []byte(tc.data)
			pre, out, err := s.Event(data)
			require.NoError(t, err)
			require.Nil(t, pre)
			require.Equal(t, tc.data, string(out))
			if len(data) > 0 {
				require.Same(t, &data[0], &out[0])
			}
		})
	}
}

func TestEventStreamInvalid(t *testing.T) {
	r := allPresets(t)
	for _, tc := range []struct {
		format Format
		data   string
		err    bool
	}{
		{OpenAIChat, `{"choices":[{"index":0,"delta":{"content":"x"}`, true},
		{OpenAIChat, `not json "content"`, true},
		{OpenAIChat, `{"choices":[{"index":5000,"delta":{"content":"x"}}]}`, true},
		{OpenAIChat, `{"choices":[{"index":0,"delta":{"\u0063ontent":"x"}`, true},
		{Anthropic, `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}`, true},
		// No member could be text and nothing is held back: passed on
		// without a look.
		{OpenAIChat, `{"choices":[`, false},
		{Anthropic, `[1]`, false},
	} {
		t.Run(tc.data, func(t *testing.T) {
			_, out, err := r.NewEventStream(tc.format, AcrossChunks).Event([]byte(tc.data))
			if tc.err {
				require.ErrorIs(t, err, ErrInvalidJSON)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.data, string(out))
		})
	}
	// With text held back, every event is read: it may end the text.
	s := r.NewEventStream(OpenAIChat, AcrossChunks)
	_, _, err := s.Event([]byte(openAIChunk("held")))
	require.NoError(t, err)
	_, _, err = s.Event([]byte(`{"choices":[`))
	require.ErrorIs(t, err, ErrInvalidJSON)
}

func TestEventStreamEscapedKey(t *testing.T) {
	// A key spelled with escapes is still the key.
	r := allPresets(t)
	s := r.NewEventStream(OpenAIChat, PerChunk)
	_, out, err := s.Event([]byte(`{"choices":[{"index":0,"delta":{"\u0063ontent":"a@b.io"}}]}`))
	require.NoError(t, err)
	require.Equal(t, `{"choices":[{"index":0,"delta":{"\u0063ontent":"[EMAIL]"}}]}`, string(out))
}

func TestEventStreamAllocs(t *testing.T) {
	r := allPresets(t)
	s := r.NewEventStream(OpenAIChat, AcrossChunks)
	chunks := [][]byte{[]byte(openAIChunk(" The")), []byte(openAIChunk(" quick")), []byte(openAIChunk(" brown")), []byte(openAIChunk(" fox."))}
	for _, c := range chunks { // warm the automata and the buffers
		_, _, _ = s.Event(c)
	}
	allocs := testing.AllocsPerRun(100, func() {
		for _, c := range chunks {
			if _, _, err := s.Event(c); err != nil {
				panic(err)
			}
		}
	})
	require.Zero(t, allocs)

	a := r.NewEventStream(Anthropic, PerChunk)
	delta := []byte(anthropicDelta(" nothing to see"))
	_, _, _ = a.Event(delta)
	allocs = testing.AllocsPerRun(100, func() {
		_, out, _ := a.Event(delta)
		if &out[0] != &delta[0] {
			panic("copied")
		}
	})
	require.Zero(t, allocs)
}

// FuzzEventStream checks that the text a client reads from a redacted
// stream, in either format, is Text of the whole answer, however it is
// cut into events, and that every event sent is valid JSON.
func FuzzEventStream(f *testing.F) {
	for i, s := range presetSamples {
		f.Add(s, uint64(i), i%2 == 0)
	}
	r := allPresets(f)
	f.Fuzz(func(t *testing.T, text string, seed uint64, anthropic bool) {
		text = strings.ToValidUTF8(text, "\uFFFD")
		if len(text) > 400 {
			text = text[:400]
		}
		var cuts []int
		for _, c := range fuzzCuts(seed, len(text)) {
			if validUTF8Cut(text, c) {
				cuts = append(cuts, c)
			}
		}
		whole, _ := r.Text(text)
		if anthropic {
			events := []string{anthropicStart, blockStart}
			for _, p := range split(text, cuts...) {
				events = append(events, anthropicDelta(p))
			}
			events = append(events, blockStop, messageDelta, messageStop)
			if got := anthropicText(t, run(t, r.NewEventStream(Anthropic, AcrossChunks), events)); got != whole {
				t.Fatalf("got %q, want %q", got, whole)
			}
			return
		}
		events := []string{openAIRole}
		for _, p := range split(text, cuts...) {
			events = append(events, openAIChunk(p))
		}
		events = append(events, openAIFinish, openAIUsage, "[DONE]")
		if got := openAIText(t, run(t, r.NewEventStream(OpenAIChat, AcrossChunks), events), 0); got != whole {
			t.Fatalf("got %q, want %q", got, whole)
		}
	})
}

// parsed is what a parse of an event found, comparable.
type parsed struct {
	Err     bool
	Choices []string
	Event   string
}

func parseWith(s *EventStream, data string) parsed {
	var p parsed
	if s.format == Anthropic {
		ev, err := s.parseAnthropic([]byte(data))
		if p.Err = err != nil; !p.Err {
			p.Event = fmt.Sprintf("%s|%d|%v|%v|%q|%d", ev.typ, ev.index, ev.hasIndex, ev.textType, ev.lit, ev.at)
		}
		return p
	}
	if p.Err = s.parseOpenAI([]byte(data)) != nil; !p.Err {
		for _, ch := range s.choices {
			p.Choices = append(p.Choices, fmt.Sprintf("%d|%q|%d|%v", ch.index, ch.lit, ch.at, ch.finished))
		}
	}
	return p
}

// checkResume parses primer, then data, with one stream (which may
// resume data after primer's prefix, and after primer's suffix once it
// has read primer that way: it reads primer twice), and data with a new
// stream.
func checkResume(t *testing.T, f Format, primer, data string) {
	t.Helper()
	r := allPresets(t)
	for _, times := range []int{1, 2} {
		s := r.NewEventStream(f, AcrossChunks)
		for range times {
			require.False(t, parseWith(s, primer).Err)
		}
		got := parseWith(s, data)
		want := parseWith(r.NewEventStream(f, AcrossChunks), data)
		require.Equal(t, want, got, "%s after %s (%d times)", data, primer, times)
	}
}

func TestParseResume(t *testing.T) {
	p := `{"id":"c","choices":[{"index":0,"delta":{"content":`
	for _, tail := range []string{
		`"a"}}]}`,
		`"x"}}]}`,
		`"x\"}}]}`,
		`"x\u00"}}]}`,
		`"\ud83d\ude00"}}]}`,
		`"x"},"finish_reason":"stop"}],"usage":null}`,
		`"x","content":"y"}}]}`,
		`null}}]}`,
		`"x"}},{"index":1,"delta":{"content":"z"}}]}`,
		`"x"}}],"choices":[{"index":2,"delta":{"content":"w"}}]}`,
		`"x"}}]`,
		`"x"}}]}}`,
		`"x}}]}`,
		`"x"}, "index": 3}]}`,
		`"x\u0040"}}], "obfuscation": "abc"}`,
	} {
		checkResume(t, OpenAIChat, openAIChunk("a"), p+tail)
		checkResume(t, OpenAIChat, p+`"a"}}]}`, p+tail)
	}
	a := `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":`
	for _, tail := range []string{
		`"x"}}`,
		`"x\"}}`,
		`"x"}}` + "\n",
		`"x","type":"thinking_delta"}}`,
		`"x"},"type":"other"}`,
		`"x"},"index":4}`,
		`"x"}`,
		`"x}}`,
		`"x"}}]`,
		`"x\n"}, "extra": [1, {"a": null}]}`,
	} {
		checkResume(t, Anthropic, anthropicDelta("a"), a+tail)
		checkResume(t, Anthropic, a+`"a"},"type":"x"}`, a+tail)
	}
}

// FuzzParseResume checks that an event read from a cached prefix is
// read as a full parse reads it.
func FuzzParseResume(f *testing.F) {
	f.Add(`"x"},"finish_reason":"stop"}],"usage":null}`, false)
	f.Add(`"x"}},{"index":1,"delta":{"content":"z"}}]}`, false)
	f.Add(`"x","type":"thinking_delta"}}`, true)
	f.Fuzz(func(t *testing.T, tail string, anthropic bool) {
		if anthropic {
			checkResume(t, Anthropic, anthropicDelta("a"), `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":`+tail)
			return
		}
		checkResume(t, OpenAIChat, openAIChunk("a"), openAIChunk("a")[:len(openAIChunk("a"))-len(`"a"},"logprobs":null,"finish_reason":null}],"usage":null}`)]+tail)
	})
}
