package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/internal/sse"
)

// decodeLit decodes a JSON string literal for comparisons; nil stays "".
func decodeLit(lit []byte) (string, error) {
	if lit == nil {
		return "", nil
	}
	var s string
	err := json.Unmarshal(lit, &s)
	return s, err
}

// sameChunk compares two normalized chunks by decoded values.
func sameChunk(a, b *chunkInfo) error {
	lits := []struct {
		name string
		x, y []byte
	}{
		{"id", a.id, b.id}, {"model", a.model, b.model}, {"content", a.content, b.content},
		{"reasoning", a.reasoning, b.reasoning}, {"refusal", a.refusal, b.refusal}, {"stop", a.stopSeq, b.stopSeq},
	}
	for _, l := range lits {
		if err := sameLit(l.name, l.x, l.y); err != nil {
			return err
		}
	}
	if a.hasChoice != b.hasChoice || string(a.finish) != string(b.finish) {
		return fmt.Errorf("choice/finish differ: %v %q vs %v %q", a.hasChoice, a.finish, b.hasChoice, b.finish)
	}
	if (a.usage == nil) != (b.usage == nil) || (a.errRaw == nil) != (b.errRaw == nil) {
		return fmt.Errorf("usage/error presence differs")
	}
	if len(a.tools) != len(b.tools) {
		return fmt.Errorf("tools: %d vs %d", len(a.tools), len(b.tools))
	}
	for i := range a.tools {
		x, y := a.tools[i], b.tools[i]
		if x.index != y.index || x.hasIndex != y.hasIndex {
			return fmt.Errorf("tool %d index differs", i)
		}
		for _, l := range [][3][]byte{{[]byte("id"), x.id, y.id}, {[]byte("name"), x.name, y.name}, {[]byte("args"), x.args, y.args}} {
			if err := sameLit(string(l[0]), l[1], l[2]); err != nil {
				return err
			}
		}
	}
	return nil
}

func sameLit(name string, x, y []byte) error {
	sx, err := decodeLit(x)
	if err != nil {
		return fmt.Errorf("%s: fast literal %s is not JSON: %w", name, x, err)
	}
	if x != nil && !json.Valid(x) {
		return fmt.Errorf("%s: invalid literal %s", name, x)
	}
	sy, err := decodeLit(y)
	if err != nil {
		return fmt.Errorf("%s: slow literal %s: %w", name, y, err)
	}
	if sx != sy {
		return fmt.Errorf("%s: %q vs %q", name, sx, sy)
	}
	return nil
}

func sameEvent(a, b *anthropicEvent) error {
	if string(a.typ) != string(b.typ) || a.index != b.index || string(a.deltaType) != string(b.deltaType) {
		return fmt.Errorf("type/index differ: %q %d %q vs %q %d %q", a.typ, a.index, a.deltaType, b.typ, b.index, b.deltaType)
	}
	for _, l := range [][3][]byte{{[]byte("text"), a.text, b.text}, {[]byte("partial"), a.partial, b.partial}, {[]byte("thinking"), a.thinking, b.thinking}, {[]byte("signature"), a.signature, b.signature}} {
		if err := sameLit(string(l[0]), l[1], l[2]); err != nil {
			return err
		}
	}
	return nil
}

// checkOpenAIFastPath asserts that, when the template t (learnt from
// earlier events; nil for none) or the fast path accepts data, the
// encoding/json path accepts it too with the same result.
func checkOpenAIFastPath(data []byte, t *template) (fast bool, err error) {
	if t == nil {
		t = new(template)
	}
	var f, s chunkInfo
	switch {
	case t.matchOpenAI(data, &f):
	case fastOpenAIChunk(data, &f):
		t.learnOpenAI(data, &f)
	default:
		return false, nil
	}
	if err := slowOpenAIChunk(data, &s); err != nil {
		return true, fmt.Errorf("fast path accepted what encoding/json rejects: %w", err)
	}
	return true, sameChunk(&f, &s)
}

func checkAnthropicFastPath(data []byte, t *template) (fast bool, err error) {
	if t == nil {
		t = new(template)
	}
	var f, s anthropicEvent
	switch {
	case t.matchAnthropic(data, &f):
	case fastAnthropicEvent(data, &f):
		t.learnAnthropic(data, &f)
	default:
		return false, nil
	}
	if err := slowAnthropicEvent(data, &s); err != nil {
		return true, fmt.Errorf("fast path accepted what encoding/json rejects: %w", err)
	}
	return true, sameEvent(&f, &s)
}

// fixtureEvents returns the data of every event in the testdata streams of
// one direction.
func fixtureEvents(t testing.TB, dir string) [][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "stream", dir, "*.in.sse"))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rd := sse.NewReader(bytes.NewReader(b), 0)
		for {
			ev, err := rd.Next()
			if err != nil {
				break
			}
			if ev.Data != nil {
				out = append(out, append([]byte(nil), ev.Data...))
			}
		}
	}
	return out
}

var openAIChunkCases = []string{
	`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}]}`,
	`{"id":"c","choices":[{"index":0,"delta":{"content":"a\"b\\c\u00e9\n"},"finish_reason":null}],"usage":null}`,
	`{"id":"c","choices":[{"index":0,"delta":{"content":"é😀"}}]}`,
	`{"id":"c","choices":[{"index":0,"delta":{"reasoning_content":"r","reasoning":"x"}}]}`,
	`{"id":"c","choices":[{"index":0,"delta":{"reasoning":"x"}}]}`,
	`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]}}]}`,
	`{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls","stop_reason":null}]}`,
	`{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop","stop_reason":"END"}]}`,
	`{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop","stop_reason":128001}]}`,
	`{"id":"c","choices":[{"index":1,"delta":{"content":"other choice"}}]}`,
	`{"id":"c","choices":[]}`,
	` { "id" : "c" , "choices" : [ { "index" : 0 , "delta" : { "content" : "spaced" } } ] } `,
	`{"Content":"x","id":"c","choices":[]}`,                            // folds to no key: fine
	`{"ID":"c","choices":[]}`,                                          // folds to "id": slow path
	`{"id":"c","id":"d","choices":[]}`,                                 // duplicate: slow path
	`{"id":"c","choices":[{"index":0,"delta":{"content":"a\u0000"}}]}`, // escaped NUL is valid
	`{"id":"c","choices":[{"index":0,"delta":{"content":"bad` + "\x01" + `"}}]}`,
	`{"id":"c","choices":[{"index":0,"delta":{"content":"\x"}}]}`,
	`{"id":"c","choices":[{"index":0.0,"delta":{}}]}`,
	`{"id":"c","choices":[{"index":0,"delta":{"content":5}}]}`,
	`{"id":"c","usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3},"choices":[]}`,
	`{"error":{"message":"boom","type":"server_error"}}`,
	`{"id":"c","choices":[{"index":0,"delta":{"content":"x"}}]} trailing`,
	`{"id":"c","choices":[{"index":0,"delta":{"content":"` + "\xff" + `"}}]}`,
	`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"{}"}},{"index":3}]}}]}`,
	`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":null,"content":null,"role":"assistant"}}]}`,
	`{"id":"c","choices":[{"index":0,"delta":{"role":1}}]}`,
	`{"id":"c","x":[1,{"a":[true,false,null,-1.5e3]}],"choices":[]}`,
	`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":-1}]}}]}`,
}

func TestOpenAIChunkFastPathMatchesEncodingJSON(t *testing.T) {
	cases := append([][]byte(nil), fixtureEvents(t, "openai_to_anthropic")...)
	for _, c := range openAIChunkCases {
		cases = append(cases, []byte(c))
	}
	fastCount := 0
	var tpl template // learnt along the way, as in a stream
	for _, c := range cases {
		if string(c) == "[DONE]" {
			continue
		}
		fast, err := checkOpenAIFastPath(c, nil)
		require.NoError(t, err, "%s", c)
		if fast {
			fastCount++
		}
		_, err = checkOpenAIFastPath(c, &tpl)
		require.NoError(t, err, "%s (with template)", c)
	}
	require.Greater(t, fastCount, len(cases)/2, "the fast path should handle most chunks")
}

func TestOpenAIChunkFastPathCoversCommonShapes(t *testing.T) {
	for _, c := range []string{openAIChunkCases[0], openAIChunkCases[1], openAIChunkCases[2], openAIChunkCases[5], openAIChunkCases[6], openAIChunkCases[11]} {
		var ci chunkInfo
		require.True(t, fastOpenAIChunk([]byte(c), &ci), "%s", c)
	}
	var ci chunkInfo
	require.False(t, fastOpenAIChunk([]byte(openAIChunkCases[20]), &ci), "usage goes to the slow path")
}

var anthropicEventCases = []string{
	`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}`,
	`{"type":"content_block_delta","index":12,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}`,
	`{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hm"}}`,
	`{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"sig"}}`,
	`{"type":"content_block_stop","index":3}`,
	`{"type":"message_stop"}`,
	`{"type":"ping"}`,
	`{"type":"content_block_delta","index":0,"delta":{"type":"citations_delta","citation":{"type":"x"}}}`,
	`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":1}}`,
	`{"type":"message_start","message":{"id":"m","model":"x","usage":{"input_tokens":1}}}`,
	`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
	`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
	`{"Type":"ping"}`,
	`{"type":"content_block_delta","index":-1,"delta":{"type":"text_delta","text":"x"}}`,
	`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x","text":"y"}}`,
	`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":null}}`,
	`{"type":"content_block_delta","index":0,"delta":{"type":"text_\u0064elta","text":"x"}}`,
	`{"type":"content_block_delta","index":1e2,"delta":{}}`,
}

func TestAnthropicEventFastPathMatchesEncodingJSON(t *testing.T) {
	cases := append([][]byte(nil), fixtureEvents(t, "anthropic_to_openai")...)
	for _, c := range anthropicEventCases {
		cases = append(cases, []byte(c))
	}
	var tpl template
	for _, c := range cases {
		_, err := checkAnthropicFastPath(c, nil)
		require.NoError(t, err, "%s", c)
		_, err = checkAnthropicFastPath(c, &tpl)
		require.NoError(t, err, "%s (with template)", c)
	}
	for _, c := range anthropicEventCases[:7] {
		var e anthropicEvent
		require.True(t, fastAnthropicEvent([]byte(c), &e), "%s", c)
	}
}

// TestFastPathDoesNotAlias checks that the translators copy what they keep
// from an event: the upstream reader reuses its buffer.
func TestFastPathDoesNotAlias(t *testing.T) {
	s := NewStream("openai", "anthropic", StreamOptions{})
	data := []byte(`{"id":"c1","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"fn","arguments":""}}]}}]}`)
	other := []byte(`{"id":"c1","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_2","type":"function","function":{"name":"g","arguments":"{\"a\""}}]}}]}`)
	var out []byte
	var err error
	out, err = s.Event(out, nil, data)
	require.NoError(t, err)
	out, err = s.Event(out, nil, []byte(`{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"x\":"}}]}}]}`))
	require.NoError(t, err)
	out, err = s.Event(out, nil, other) // pending: its id and name must be copied
	require.NoError(t, err)
	for i := range other {
		other[i] = 'Z'
	}
	out, err = s.Event(out, nil, []byte(`{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]}}]}`))
	require.NoError(t, err)
	out, err = s.Event(out, nil, []byte(`[DONE]`))
	require.NoError(t, err)
	sum, err := checkAnthropicStream(out)
	require.NoError(t, err)
	require.Len(t, sum.tools, 2)
	require.Equal(t, toolSummary{id: "call_2", name: "g", args: `{"a"`}, sum.tools[1])
}

func FuzzOpenAIChunkFastPath(f *testing.F) {
	for _, c := range fixtureEvents(f, "openai_to_anthropic") {
		f.Add(c)
	}
	for _, c := range openAIChunkCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := checkOpenAIFastPath(data, nil); err != nil {
			t.Fatalf("%v\n%q", err, data)
		}
	})
}

// FuzzOpenAIChunkTemplate learns a template from one chunk and checks the
// template path on another chunk of that shape with any middle bytes.
func FuzzOpenAIChunkTemplate(f *testing.F) {
	for _, c := range fixtureEvents(f, "openai_to_anthropic") {
		f.Add(c, []byte(`"x"`))
	}
	f.Add([]byte(openAIChunkCases[0]), []byte(`"\u00e9\"\\"`))
	f.Add([]byte(openAIChunkCases[5]), []byte(`"a","b"`))
	f.Fuzz(func(t *testing.T, first, middle []byte) {
		var tpl template
		var c chunkInfo
		if !fastOpenAIChunk(first, &c) {
			return
		}
		tpl.learnOpenAI(first, &c)
		if tpl.slot == slotNone {
			return
		}
		data := append(append(append([]byte(nil), tpl.prefix...), middle...), tpl.suffix...)
		if _, err := checkOpenAIFastPath(data, &tpl); err != nil {
			t.Fatalf("%v\n%q", err, data)
		}
	})
}

// FuzzAnthropicEventTemplate is FuzzOpenAIChunkTemplate for Anthropic
// events.
func FuzzAnthropicEventTemplate(f *testing.F) {
	for _, c := range fixtureEvents(f, "anthropic_to_openai") {
		f.Add(c, []byte(`"x"`))
	}
	f.Add([]byte(anthropicEventCases[0]), []byte(`"\ud83d\ude00"`))
	f.Fuzz(func(t *testing.T, first, middle []byte) {
		var tpl template
		var e anthropicEvent
		if !fastAnthropicEvent(first, &e) {
			return
		}
		tpl.learnAnthropic(first, &e)
		if tpl.slot == slotNone {
			return
		}
		data := append(append(append([]byte(nil), tpl.prefix...), middle...), tpl.suffix...)
		if _, err := checkAnthropicFastPath(data, &tpl); err != nil {
			t.Fatalf("%v\n%q", err, data)
		}
	})
}

func FuzzAnthropicEventFastPath(f *testing.F) {
	for _, c := range fixtureEvents(f, "anthropic_to_openai") {
		f.Add(c)
	}
	for _, c := range anthropicEventCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := checkAnthropicFastPath(data, nil); err != nil {
			t.Fatalf("%v\n%q", err, data)
		}
	})
}
