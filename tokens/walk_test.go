package tokens

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/internal/jsonx"
)

// recorder is a textCounter that records what it is given.
type recorder struct{ calls *[]string }

func (r recorder) text(lit []byte) int64 {
	s, _ := jsonx.Unquote(lit)
	*r.calls = append(*r.calls, "text:"+s)
	return int64(len(s)) + 1
}

func (r recorder) raw(v []byte) int64 {
	*r.calls = append(*r.calls, "raw:"+string(v))
	return int64(len(v)) + 1
}

// referenceWalk is the estimators' walk as first written, over
// jsonx.Members and jsonx.Elements, which walkBody must match. (An element
// of messages that is not an object has no per-message overhead since
// UpperBound's proof relies on it.)
func referenceWalk(body []byte, anthropic bool, tc textCounter) (int64, bool) {
	var n int64 = tokensPerReply
	var content func(v []byte) int64
	content = func(v []byte) int64 {
		switch jsonx.KindOf(v) {
		case jsonx.String:
			return tc.text(v)
		case jsonx.Array:
			var n int64
			_ = jsonx.Elements(v, func(part []byte) bool {
				_ = jsonx.Members(part, func(f jsonx.Member) bool {
					switch {
					case f.KeyIs("text"), f.KeyIs("content"), f.KeyIs("thinking"):
						n += content(f.Value)
					case f.KeyIs("input"), f.KeyIs("arguments"):
						n += tc.raw(f.Value)
					}
					return true
				})
				return true
			})
			return n
		}
		return 0
	}
	err := jsonx.Members(body, func(m jsonx.Member) bool {
		switch {
		case m.KeyIs("messages"):
			_ = jsonx.Elements(m.Value, func(msg []byte) bool {
				if jsonx.KindOf(msg) != jsonx.Object {
					return true // not a message: no overhead
				}
				n += tokensPerMessage
				_ = jsonx.Members(msg, func(f jsonx.Member) bool {
					switch {
					case f.KeyIs("content"), f.KeyIs("name") && !anthropic:
						n += content(f.Value)
					case f.KeyIs("tool_calls") && !anthropic:
						n += tc.raw(f.Value)
					}
					return true
				})
				return true
			})
		case m.KeyIs("system") && anthropic:
			n += content(m.Value)
		case m.KeyIs("tools"), m.KeyIs("functions") && !anthropic:
			n += tc.raw(m.Value)
		}
		return true
	})
	return n, err == nil
}

var walkSamples = []string{
	`{"model":"m","messages":[{"role":"system","content":"S"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"data:x"}},"str",5,{"type":"text","text":{"x":1}}],"name":"n"},{"role":"assistant","content":null,"tool_calls":[{"id":"c","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","content":[{"type":"tool_result","content":[{"type":"text","text":"deep"}],"input":{ "q" : 1 }}]},7,"x"],"tools":[{"type":"function"}],"functions":[]}`,
	`{"model":"m","system":[{"type":"text","text":"sys","cache_control":{}}],"messages":[{"role":"user","content":"u","name":"ignored"},{"role":"assistant","content":[{"type":"thinking","thinking":"t"},{"type":"tool_use","input":{"a":[1,2]}}]}],"tools":[{"name":"t"}]}`,
	`{"mess\u0061ges":[{"cont\u0065nt":"escaped keys"}],"messages":{"not":"array"},"system":"only anthropic"}`,
	` { "messages" : [ { "content" : "spaced" } ] } `,
	`{"messages":[{"content":"ok"}],"broken":}`,
	`[1,2]`, `{}`, ``, `{"messages":[]}`, `{"messages":[{"content":"x"}]}trailing`,
}

func checkWalk(t testing.TB, body []byte) {
	for _, anthropic := range []bool{false, true} {
		var got, want []string
		n, ok := walkBody(body, anthropic, recorder{&got}, nil, false)
		wn, wok := referenceWalk(body, anthropic, recorder{&want})
		if ok != wok || ok && (n != wn || !slices.Equal(got, want)) {
			t.Fatalf("anthropic=%v body %q:\nwalkBody %d %v %q\nreference %d %v %q", anthropic, body, n, ok, got, wn, wok, want)
		}
	}
}

func TestWalkBodyMatchesReference(t *testing.T) {
	for _, s := range walkSamples {
		checkWalk(t, []byte(s))
	}
	for _, f := range []func(map[string]string) []byte{openAIBody, anthropicBody} {
		checkWalk(t, f(corpus(t)))
	}
}

func FuzzWalkBody(f *testing.F) {
	for _, s := range walkSamples {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkWalk(t, body) })
}

// openAIBody is a chat completions conversation made of texts: a system
// prompt, user questions (as strings and as text parts, one with an
// image), assistant answers with tool calls, and tool results.
func openAIBody(texts map[string]string) []byte {
	var b strings.Builder
	q := func(s string) string { return string(jsonx.AppendQuote(nil, s)) }
	names := sortedNames(texts)
	b.WriteString(`{"model":"gpt-4o","stream":true,"tools":[{"type":"function","function":{"name":"read_file","description":"Read a file of the repository.","parameters":{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}}}],"messages":[{"role":"system","content":` + q(texts["en_tech"]) + `}`)
	for i, name := range names {
		id := fmt.Sprintf("call_%d", i)
		if i%2 == 0 {
			b.WriteString(`,{"role":"user","content":` + q("Please look at "+name+" and summarize it.") + `}`)
		} else {
			b.WriteString(`,{"role":"user","content":[{"type":"text","text":` + q("What about "+name+"?") + `},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgoAAAANSUhEUg"}}]}`)
		}
		b.WriteString(`,{"role":"assistant","content":"Reading it.","tool_calls":[{"id":"` + id + `","type":"function","function":{"name":"read_file","arguments":` + q(`{"path":"testdata/`+name+`.txt"}`) + `}}]}`)
		b.WriteString(`,{"role":"tool","tool_call_id":"` + id + `","content":` + q(texts[name]) + `}`)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// anthropicBody is openAIBody's conversation as an Anthropic messages
// request.
func anthropicBody(texts map[string]string) []byte {
	var b strings.Builder
	q := func(s string) string { return string(jsonx.AppendQuote(nil, s)) }
	names := sortedNames(texts)
	b.WriteString(`{"model":"claude","max_tokens":1024,"system":` + q(texts["en_tech"]) + `,"tools":[{"name":"read_file","description":"Read a file of the repository.","input_schema":{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}}],"messages":[`)
	for i, name := range names {
		id := fmt.Sprintf("toolu_%d", i)
		if i > 0 {
			b.WriteString(`,`)
		}
		b.WriteString(`{"role":"user","content":[`)
		if i > 0 {
			b.WriteString(`{"type":"tool_result","tool_use_id":"toolu_` + fmt.Sprint(i-1) + `","content":` + q(texts[names[i-1]]) + `},`)
		}
		b.WriteString(`{"type":"text","text":` + q("Please look at "+name+" and summarize it.") + `}`)
		if i%2 == 1 {
			b.WriteString(`,{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgoAAAANSUhEUg"}}`)
		}
		b.WriteString(`]},{"role":"assistant","content":[{"type":"text","text":"Reading it."},{"type":"tool_use","id":"` + id + `","name":"read_file","input":{"path":"testdata/` + name + `.txt"}}]}`)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

func sortedNames(texts map[string]string) []string {
	names := make([]string, 0, len(texts))
	for n := range texts {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func TestWalkBodyFallback(t *testing.T) {
	require.Equal(t, int64(1), QuickEstimateOpenAIChat("", []byte(`{bad`)), "unreadable bodies estimate at 4 bytes per token")
	require.Equal(t, int64(2), QuickEstimateAnthropicMessages("", []byte(`[1,2,3]`)))
}
