package translate

import (
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmgate/gateway/providers"
)

// fragments splits s into 1-4 pieces at rune boundaries chosen by r;
// empty s gives no pieces.
func fragments(r *rand.Rand, s string) []string {
	if s == "" {
		return nil
	}
	runes := []rune(s)
	n := 1 + r.IntN(4)
	var out []string
	for i := 0; i < n-1 && len(runes) > 1; i++ {
		cut := 1 + r.IntN(len(runes)-1)
		out = append(out, string(runes[:cut]))
		runes = runes[cut:]
	}
	return append(out, string(runes))
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// sanitize makes a fuzz string valid UTF-8, as any JSON string the
// upstream sends decodes to.
func sanitize(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// toolArgs turns a fuzz string into tool call arguments: a JSON object
// holding it, or the string itself (any text, possibly not JSON).
func toolArgs(s string, object bool) string {
	if object {
		b, _ := json.Marshal(map[string]any{"q": s, "n": len(s)})
		return string(b)
	}
	return s
}

// randReader returns between 1 and 64 bytes per Read, as r decides, so
// events are split at arbitrary points.
type randReader struct {
	b []byte
	r *rand.Rand
}

func (rr *randReader) Read(p []byte) (int, error) {
	if len(rr.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), 1+rr.r.IntN(64), len(rr.b))
	copy(p, rr.b[:n])
	rr.b = rr.b[n:]
	return n, nil
}

// feedStream splits in at points chosen by r (and, with crlf, rewrites the
// line endings) and runs it through a Stream as the gateway does.
func feedStream(t *testing.T, from, to providers.Format, opt StreamOptions, in string, r *rand.Rand, crlf bool) []byte {
	if crlf {
		in = strings.ReplaceAll(in, "\n", "\r\n")
	}
	return runStreamFrom(t, from, to, opt, &randReader{b: []byte(in), r: r})
}

func FuzzStreamOpenAIToAnthropic(f *testing.F) {
	f.Add("Hello", " world", "think", "{\"a\":1}", "x\"y", uint16(10), uint16(3), uint16(7), uint8(0xff), uint64(1))
	f.Add("", "", "", "", "", uint16(0), uint16(0), uint16(0), uint8(0), uint64(2))
	f.Add("é😀\n", "\\", "", "{", "}", uint16(5), uint16(9), uint16(1), uint8(0x55), uint64(3))
	f.Add("a", "b", "c", "{}x", " ", uint16(1), uint16(1), uint16(1), uint8(0xaa), uint64(4))
	f.Fuzz(func(t *testing.T, text1, text2, reasoning, args1, args2 string, prompt, cached, completion uint16, flags uint8, seed uint64) {
		r := rand.New(rand.NewPCG(seed, uint64(flags)))
		text1, text2, reasoning = sanitize(text1), sanitize(text2), sanitize(reasoning)
		args := [2]string{toolArgs(sanitize(args1), flags&1 != 0), toolArgs(sanitize(args2), flags&2 != 0)}
		interleave := flags&4 != 0
		withUsage := flags&8 != 0
		complete := flags&16 != 0
		textAfter := flags&32 != 0
		cached = min(cached, prompt)

		var b strings.Builder
		chunk := func(delta, finish string) {
			b.WriteString(`data: {"id":"chatcmpl-f","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":` + delta + `,"logprobs":null,"finish_reason":` + finish + "}]}\n\n")
		}
		chunk(`{"role":"assistant","content":""}`, "null")
		for _, p := range fragments(r, reasoning) {
			chunk(`{"reasoning_content":`+jsonString(p)+`}`, "null")
		}
		for _, p := range fragments(r, text1) {
			chunk(`{"content":`+jsonString(p)+`}`, "null")
		}
		frags := [2][]string{fragments(r, args[0]), fragments(r, args[1])}
		ids := [2]string{"call_0", "call_1"}
		names := [2]string{"f0", "f1"}
		start := func(i int) {
			chunk(`{"tool_calls":[{"index":`+string(rune('0'+i))+`,"id":"`+ids[i]+`","type":"function","function":{"name":"`+names[i]+`","arguments":""}}]}`, "null")
		}
		frag := func(i int, p string) {
			chunk(`{"tool_calls":[{"index":`+string(rune('0'+i))+`,"function":{"arguments":`+jsonString(p)+`}}]}`, "null")
		}
		if interleave {
			start(0)
			start(1)
			for k := 0; k < max(len(frags[0]), len(frags[1])); k++ {
				for i := range 2 {
					if k < len(frags[i]) {
						frag(i, frags[i][k])
					}
				}
			}
		} else {
			for i := range 2 {
				start(i)
				for _, p := range frags[i] {
					frag(i, p)
				}
			}
		}
		for _, p := range fragments(r, text2) {
			if textAfter {
				chunk(`{"content":`+jsonString(p)+`}`, "null")
			}
		}
		chunk(`{}`, `"tool_calls"`)
		if withUsage {
			b.WriteString(`data: {"id":"chatcmpl-f","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":` +
				itoa(int(prompt)) + `,"completion_tokens":` + itoa(int(completion)) + `,"total_tokens":` + itoa(int(prompt)+int(completion)) +
				`,"prompt_tokens_details":{"cached_tokens":` + itoa(int(cached)) + "}}}\n\n")
		}
		if complete {
			b.WriteString("data: [DONE]\n\n")
		}

		out := feedStream(t, providers.FormatOpenAI, providers.FormatAnthropic, StreamOptions{}, b.String(), r, flags&64 != 0)
		sum, err := checkAnthropicStream(out)
		if err != nil {
			t.Fatalf("invalid Anthropic stream: %v\n%s", err, out)
		}
		if sum.errored {
			if complete && !lateArguments(frags) {
				t.Fatalf("unexpected error event\n%s", out)
			}
			return
		}
		if !complete {
			t.Fatalf("incomplete upstream did not end in an error\n%s", out)
		}
		wantText := text1
		if textAfter {
			wantText += text2
		}
		if sum.text != wantText || sum.reasoning != reasoning {
			t.Fatalf("text %q reasoning %q, want %q %q", sum.text, sum.reasoning, wantText, reasoning)
		}
		if len(sum.tools) != 2 {
			t.Fatalf("%d tool calls\n%s", len(sum.tools), out)
		}
		for i, tc := range sum.tools {
			if tc.id != ids[i] || tc.name != names[i] || tc.args != args[i] {
				t.Fatalf("tool %d = %+v, want args %q", i, tc, args[i])
			}
		}
		if sum.stop != "tool_use" {
			t.Fatalf("stop %q", sum.stop)
		}
		want := usageSummary{}
		if withUsage {
			want = usageSummary{input: int64(prompt - cached), cacheRead: int64(cached), output: int64(completion)}
		}
		if *sum.usage != want {
			t.Fatalf("usage %+v, want %+v", *sum.usage, want)
		}
	})
}

// lateArguments reports whether some tool call's arguments become a
// complete JSON object (brackets balanced outside strings, judged on the
// decoded text) at a fragment boundary and then continue with more than
// whitespace: the only case in which a translated stream may end in an
// error although the upstream completed.
func lateArguments(frags [2][]string) bool {
	for _, fs := range frags {
		depth, inStr, esc, started := 0, false, false, false
		for k, p := range fs {
			for _, c := range p {
				switch {
				case inStr && esc:
					esc = false
				case inStr && c == '\\':
					esc = true
				case inStr && c == '"':
					inStr = false
				case inStr:
				case c == '"':
					inStr = true
				case c == '{' || c == '[':
					depth++
					started = true
				case c == '}' || c == ']':
					depth--
				}
			}
			if started && depth == 0 && k < len(fs)-1 && strings.TrimSpace(strings.Join(fs[k+1:], "")) != "" {
				return true
			}
		}
	}
	return false
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func FuzzStreamAnthropicToOpenAI(f *testing.F) {
	f.Add("Hello", "think", "{\"a\":1}", "", uint16(10), uint16(3), uint16(2), uint16(7), uint8(0xff), uint64(1))
	f.Add("", "", "", "", uint16(0), uint16(0), uint16(0), uint16(0), uint8(0), uint64(2))
	f.Add("é😀\n\"", "\\", "{", "}", uint16(5), uint16(9), uint16(1), uint16(3), uint8(0x55), uint64(3))
	f.Fuzz(func(t *testing.T, text, thinking, args1, args2 string, input, cacheRead, cacheWrite, output uint16, flags uint8, seed uint64) {
		r := rand.New(rand.NewPCG(seed, uint64(flags)))
		text, thinking = sanitize(text), sanitize(thinking)
		args := [2]string{sanitize(args1), sanitize(args2)}
		includeUsage := flags&1 != 0
		complete := flags&2 != 0
		stopReasons := []string{"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"}
		stop := stopReasons[int(flags>>2)%len(stopReasons)]

		var b strings.Builder
		ev := func(typ, data string) { b.WriteString("event: " + typ + "\ndata: " + data + "\n\n") }
		ping := func() {
			if r.IntN(4) == 0 {
				ev("ping", `{"type":"ping"}`)
			}
		}
		ev("message_start", `{"type":"message_start","message":{"id":"msg_f","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":`+
			itoa(int(input))+`,"cache_creation_input_tokens":`+itoa(int(cacheWrite))+`,"cache_read_input_tokens":`+itoa(int(cacheRead))+`,"output_tokens":1}}}`)
		idx := 0
		block := func(startBlock string, deltas []string) {
			ev("content_block_start", `{"type":"content_block_start","index":`+itoa(idx)+`,"content_block":`+startBlock+`}`)
			ping()
			for _, d := range deltas {
				ev("content_block_delta", `{"type":"content_block_delta","index":`+itoa(idx)+`,"delta":`+d+`}`)
				ping()
			}
			ev("content_block_stop", `{"type":"content_block_stop","index":`+itoa(idx)+`}`)
			idx++
		}
		if thinking != "" {
			var ds []string
			for _, p := range fragments(r, thinking) {
				ds = append(ds, `{"type":"thinking_delta","thinking":`+jsonString(p)+`}`)
			}
			ds = append(ds, `{"type":"signature_delta","signature":"c2ln"}`)
			block(`{"type":"thinking","thinking":"","signature":""}`, ds)
		}
		if text != "" {
			var ds []string
			for _, p := range fragments(r, text) {
				ds = append(ds, `{"type":"text_delta","text":`+jsonString(p)+`}`)
			}
			block(`{"type":"text","text":""}`, ds)
		}
		for i, a := range args {
			ds := []string{`{"type":"input_json_delta","partial_json":""}`}
			for _, p := range fragments(r, a) {
				ds = append(ds, `{"type":"input_json_delta","partial_json":`+jsonString(p)+`}`)
			}
			block(`{"type":"tool_use","id":"toolu_`+itoa(i)+`","name":"f`+itoa(i)+`","input":{}}`, ds)
		}
		ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"`+stop+`","stop_sequence":null},"usage":{"output_tokens":`+itoa(int(output))+`}}`)
		if complete {
			ev("message_stop", `{"type":"message_stop"}`)
		}

		out := feedStream(t, providers.FormatAnthropic, providers.FormatOpenAI, StreamOptions{IncludeUsage: includeUsage}, b.String(), r, flags&128 != 0)
		sum, err := checkOpenAIStream(out)
		if err != nil {
			t.Fatalf("invalid OpenAI stream: %v\n%s", err, out)
		}
		if !complete {
			if !sum.errored || sum.complete || sum.stop != "" {
				t.Fatalf("incomplete upstream must end in an error without a finish chunk\n%s", out)
			}
			return
		}
		if sum.errored || !sum.complete {
			t.Fatalf("unexpected end\n%s", out)
		}
		if sum.text != text || sum.reasoning != thinking {
			t.Fatalf("text %q reasoning %q, want %q %q", sum.text, sum.reasoning, text, thinking)
		}
		if len(sum.tools) != 2 {
			t.Fatalf("%d tools", len(sum.tools))
		}
		for i, tc := range sum.tools {
			want := args[i]
			if want == "" {
				want = "{}"
			}
			if tc.id != "toolu_"+itoa(i) || tc.name != "f"+itoa(i) || tc.args != want {
				t.Fatalf("tool %d = %+v, want args %q", i, tc, want)
			}
		}
		if sum.stop != openAIFinishReason(stop) {
			t.Fatalf("finish %q for %q", sum.stop, stop)
		}
		if includeUsage {
			want := usageSummary{input: int64(input), cacheRead: int64(cacheRead), cacheWrite: int64(cacheWrite), output: int64(output)}
			if sum.usage == nil || *sum.usage != want {
				t.Fatalf("usage %+v, want %+v", sum.usage, want)
			}
		} else if sum.usage != nil {
			t.Fatalf("usage chunk without include_usage")
		}
	})
}

func FuzzRequest(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "request", "*", "*.in.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err == nil {
			f.Add(b, strings.Contains(name, "openai_to_anthropic"))
		}
	}
	f.Add([]byte(`{"messages":[{"role":"tool","content":[{"type":"image_url","image_url":{"url":"data:x"}}]}]}`), true)
	f.Add([]byte(`{"messages":[{"role":"user","content":[{"type":"tool_result","content":[{"type":"document","source":{"type":"text","data":"x"}}]}]}]}`), false)
	f.Fuzz(func(t *testing.T, body []byte, fromOpenAI bool) {
		from, to := providers.FormatAnthropic, providers.FormatOpenAI
		if fromOpenAI {
			from, to = to, from
		}
		out, removed, err := Request(from, to, body, RequestOptions{MaxOutputTokens: 8192})
		if err != nil {
			var te *Error
			if !errors.As(err, &te) {
				t.Fatalf("error is not *Error: %v", err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid output JSON: %s", out)
		}
		for i := 1; i < len(removed); i++ {
			if removed[i-1] >= removed[i] {
				t.Fatalf("removed not sorted and unique: %q", removed)
			}
		}
		out2, _, err := Request(from, to, body, RequestOptions{MaxOutputTokens: 8192})
		if err != nil || string(out2) != string(out) {
			t.Fatalf("not deterministic")
		}
	})
}
