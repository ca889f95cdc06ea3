package translate

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/internal/jsonx"
	"github.com/llmgate/gateway/internal/wire"
	"github.com/llmgate/gateway/providers"
)

// fastCases are requests that exercise the corners of the fast passes:
// escapes, nulls, duplicate and case-folded keys, every part and block
// type, and the shapes the slow path refuses.
var fastCases = map[providers.Format][]string{
	providers.FormatOpenAI: {
		`{"model":"m","messages":[{"role":"user","content":"caf\u00e9 \/ \ud83d\ude00 \u2028 \u0041 <>&"}]}`,
		"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"raw \xe2\x80\xa8 sep \xe2\x80\x94 dash\"}]}",
		"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"bad \xff byte\"}]}",
		`{"model":"m","messages":[{"role":"\u0075ser","content":"escaped role"},{"role":"user","Content":"folded key"}]}`,
		`{"model":"m","messages":[{"role":"user","content":"a","content":"b"}]}`,
		`{"model":"m","messages":[{"ro\u006ce":"user","content":"escaped key"}]}`,
		`{"model":"m","messages":[{"role":"user","content":null},{"role":"assistant","content":""},{"role":"user","content":[]}]}`,
		`{"model":"m","messages":[{"role":"system","content":"S1"},{"role":"developer","content":[{"type":"text","text":"S2","cache_control":{ "type" : "ephemeral" }}]},{"role":"user","content":"U"}]}`,
		`{"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBO","detail":"high","extra":1}},{"type":"image_url","image_url":{"url":"https:\/\/x\/y.png","detail":"\u0061uto"}},{"type":"image_url","image_url":{"url":"data:image/png;charset=x;base64,AA"}},{"type":"image_url","image_url":{"url":"data:;base64,"}}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,notbase64"}}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x"}}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":null}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x","image_url":{"url":5}}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"filename":"a.pdf","file_data":"data:application/pdf;base64,JVBE"}},{"type":"file","file":{"file_data":"JVBERi0"}},{"type":"text","text":"","cache_control":{"type":"ephemeral"}},{"type":"refusal","refusal":"r"},{"type":"text","text":null}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:image/png;base64,AA"}}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"f"}}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"x"}}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"t","unknown":1,"other":null}],"name":"bob","extra":true,"more":null}]}`,
		`{"model":"m","messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a","refusal":"no","reasoning_content":"think","reasoning":"","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":" {\"a\": [1, 2],\n \"b\":\"x y\"} "}},{"id":"c2","function":{"name":"g","arguments":""}},{"id":"c3","type":"function","function":{"name":"h","arguments":"not json"}},{"id":"c4","type":"function","function":{"name":"h","arguments":"[1]"}},{"id":"c5","type":"function","function":{"name":"h","arguments":"{\"a\":1}\u00a0"}},{"id":"c6","type":"function","function":{"name":"h","arguments":"{\"a\":}"}}]},{"role":"tool","tool_call_id":"c1","content":"r1"},{"role":"tool","tool_call_id":"c2","content":[{"type":"text","text":"r2"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA"}}]},{"role":"tool","content":""},{"role":"tool","tool_call_id":"c3","content":[]},{"role":"tool","tool_call_id":"c4","content":null},{"role":"user","content":"next"}]}`,
		`{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"custom","function":{"name":"f"}}]}]}`,
		`{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":null},{"role":"user","tool_calls":[{"id":5}],"content":"x"}]}`,
		`{"model":"m","messages":[{"role":"assistant","audio":{"id":"a"}}]}`,
		`{"model":"m","messages":[{"role":"user","audio":{"id":"a"},"content":"x"}]}`,
		`{"model":"m","messages":[{"role":"assistant","function_call":{"name":"f"}}]}`,
		`{"model":"m","messages":[{"role":"function","content":"x"}]}`,
		`{"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant","content":""},{"role":"user","content":"b"}]}`,
		`{"model":"m","messages":[5]}`,
		`{"model":"m","messages":{"role":"user"}}`,
		`{"model":"m","messages":[{"role":"user","content":5}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"deep","x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{ "type" : "object" },"strict":false,"x":1},"cache_control":{"type":"ephemeral"},"y":2},{"type":"function","function":{"name":"g","parameters":null,"strict":null}},{"type":"function","function":{}}],"tool_choice":"required","parallel_tool_calls":false}`,
		`{"model":"m","messages":[],"tools":[{"type":"custom","custom":{}}]}`,
		`{"model":"m","messages":[],"tools":[{"type":"function","function":null}]}`,
		`{"model":"m","messages":[],"tools":[{"type":"function","function":{"name":"f","Parameters":{}}}]}`,
		`{"model":"m","messages":[],"tools":[]}`,
		`{"model":"m","tools":[{"type":"function","function":{"name":"f","strict":1}}]}`,
		`{"messages":[{"role":"user","content":"x"}],"messages":[{"role":"user","content":"y","z":1}]}`,
		`{"model":"m","n":2,"messages":[{"role":"user","content":"x","extra":1}]}`,
		`{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"high","max_tokens":100}`,
		`  {"model":"m","messages":[ {"role" : "user" , "content" : [ {"type":"text" , "text":"spaced"} ] } ] }  `,
	},
	providers.FormatAnthropic: {
		`{"model":"m","max_tokens":10,"system":"caf\u00e9 \/","messages":[{"role":"user","content":"caf\u00e9 \/ \ud83d\ude00 \u2028 \u0041 <>&"}]}`,
		"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"bad \xff byte\"}]}",
		`{"model":"m","system":[{"type":"text","text":"A","cache_control":{"type":"ephemeral"},"citations":[]},{"type":"text","text":"B","x":1}],"messages":[]}`,
		`{"model":"m","system":[{"type":"text","text":""},{"type":"text","text":""}],"messages":[{"role":"user","content":"x"}]}`,
		`{"model":"m","system":[{"type":"text","text":""}],"messages":[{"role":"user","content":"x"}]}`,
		`{"model":"m","system":[{"type":"text"}],"messages":[]}`,
		`{"model":"m","system":[{"type":"image","source":{"type":"url","url":"https://x"}}],"messages":[]}`,
		`{"model":"m","system":"","messages":[]}`,
		`{"model":"m","system":5,"messages":[]}`,
		`{"model":"m","system":[],"messages":[]}`,
		`{"model":"m","messages":[{"content":"before role","role":"user"},{"content":[{"type":"text","text":"blocks before role"}],"role":"assistant"}]}`,
		`{"model":"m","messages":[{"role":"user","content":null},{"role":"assistant","content":null},{"role":"user","content":[]},{"role":"assistant","content":[]}]}`,
		`{"model":"m","messages":[{"role":"\u0075ser","content":"escaped role"},{"role":"user","Content":"folded"}]}`,
		`{"model":"m","messages":[{"role":"system","content":"x"}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a","cache_control":{"type":"ephemeral"}},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBO"}},{"type":"image","source":{"type":"url","url":"https://x/y.png","x":1}},{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBE"},"title":"doc.pdf"},{"type":"document","source":{"type":"base64","data":"JVBE"}},{"type":"document","source":{"type":"text","media_type":"text/plain","data":"plain doc"},"context":"c","citations":{"enabled":true}},{"type":"text"}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"image"}]}]}`,
		`{"model":"m","messages":[{"role":"assistant","content":[{"type":"image","source":{"type":"url","url":"https://x"}}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":"q"},{"role":"assistant","content":[{"type":"thinking","thinking":"hmm","signature":"sig"},{"type":"redacted_thinking","data":"xx"},{"type":"text","text":"A"},{"type":"text","text":"B"},{"type":"tool_use","id":"t1","name":"f","input":{ "a" : [ 1 , "x y" ] }},{"type":"tool_use","id":"t2","name":"g","input":null},{"type":"tool_use","id":"t3","name":"h"},{"type":"tool_use","name":"i","input":{"s":"<\u2028>\ud83d\ude00"}}]},{"role":"user","content":[{"type":"text","text":"before"},{"type":"tool_result","tool_use_id":"t1","content":"r1"},{"content":[{"type":"text","text":"r2a"},{"type":"text","text":"r2b","cache_control":{"type":"ephemeral"}},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA"}},{"type":"text","text":null}],"type":"tool_result","tool_use_id":"t2","is_error":true},{"type":"tool_result","tool_use_id":"t3","content":[{"type":"document","source":{"type":"text","data":"d"}}]},{"type":"tool_result","content":null},{"type":"tool_result","tool_use_id":"t4","content":[],"is_error":false},{"type":"text","text":"after"}]}]}`,
		`{"model":"m","messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"only results"}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"tool_result","content":[{"type":"tool_use","id":"x"}]}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"tool_result","content":5}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"tool_use","id":"x"}]}]}`,
		`{"model":"m","messages":[{"role":"assistant","content":[{"type":"tool_result","content":"x"}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"thinking","thinking":5}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"server_tool_use","id":"x"}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x","is_error":"no"}]}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x","unknown":{"a":1},"nothing":null}],"extra":1}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a","text":"b"}]}]}`,
		`{"model":"m","messages":[],"tools":[{"name":"f","description":"d","input_schema":{ "type" : "object" },"strict":true,"cache_control":{"type":"ephemeral"},"x":1},{"type":"custom","name":"g"},{"name":"h","input_schema":null,"strict":false}],"tool_choice":{"type":"any","disable_parallel_tool_use":true}}`,
		`{"model":"m","messages":[],"tools":[{"type":"web_search_20250305","name":"web_search"}]}`,
		`{"model":"m","messages":[],"tools":[5]}`,
		`{"model":"m","messages":[],"tools":[{"name":5}]}`,
		`{"model":"m","messages":[{"role":"user","content":"x"}],"messages":[{"role":"user","content":"y","z":1}]}`,
		`  {"model":"m","messages":[ {"role" : "user" , "content" : [ {"type":"text" , "text":"spaced"} ] } ] }  `,
	},
}

// checkFastMatchesSlow translates body with and without the fast passes and
// fails when anything differs.
func checkFastMatchesSlow(t testing.TB, from providers.Format, body []byte, opt RequestOptions) {
	t.Helper()
	to := providers.FormatAnthropic
	if from == providers.FormatAnthropic {
		to = providers.FormatOpenAI
	}
	out, removed, err := Request(from, to, body, opt)
	slow := opt
	slow.slowOnly = true
	wantOut, wantRemoved, wantErr := Request(from, to, body, slow)
	if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
		t.Fatalf("%s body %q:\nfast error %v\nslow error %v", from, body, err, wantErr)
	}
	if string(out) != string(wantOut) || !slices.Equal(removed, wantRemoved) {
		t.Fatalf("%s body %q:\nfast %s %q\nslow %s %q", from, body, out, removed, wantOut, wantRemoved)
	}
}

// goldenInputs returns the request inputs of the golden files and the
// large bodies, by source format.
func goldenInputs(t testing.TB) map[providers.Format][][]byte {
	in := map[providers.Format][][]byte{}
	for dir, f := range directions {
		files, err := filepath.Glob(filepath.Join("testdata", "request", dir, "*.in.json"))
		require.NoError(t, err)
		for _, name := range files {
			b, err := os.ReadFile(name)
			require.NoError(t, err)
			in[f[0]] = append(in[f[0]], b)
		}
		in[f[0]] = append(in[f[0]], largeBody(f[0]))
	}
	return in
}

// fastInputs returns goldenInputs and the fast cases.
func fastInputs(t testing.TB) map[providers.Format][][]byte {
	in := goldenInputs(t)
	for f, cases := range fastCases {
		for _, c := range cases {
			in[f] = append(in[f], []byte(c))
		}
	}
	return in
}

func TestRequestFastMatchesSlow(t *testing.T) {
	for from, bodies := range fastInputs(t) {
		for _, body := range bodies {
			checkFastMatchesSlow(t, from, body, RequestOptions{MaxOutputTokens: 8192})
		}
	}
}

// TestRequestFastPathTaken checks that the fast passes accept the members
// of every valid golden request and of the large bodies, so that the
// differential tests compare something.
func TestRequestFastPathTaken(t *testing.T) {
	accepted := 0
	for from, bodies := range goldenInputs(t) {
		for _, body := range bodies {
			to := providers.FormatAnthropic
			if from == providers.FormatAnthropic {
				to = providers.FormatOpenAI
			}
			if _, _, err := Request(from, to, body, RequestOptions{slowOnly: true}); err != nil {
				continue
			}
			accepted++
			var r removedSet
			_ = jsonx.Members(body, func(m jsonx.Member) bool {
				ok := true
				switch {
				case isNull(m.Value):
				case m.KeyIs("messages") && from == providers.FormatOpenAI:
					_, _, ok = fastOpenAIMessages(m.Value, &r)
				case m.KeyIs("messages"):
					_, ok = fastAnthropicMessages(m.Value, &r)
				case m.KeyIs("tools") && from == providers.FormatOpenAI:
					_, _, ok = fastOpenAITools(m.Value, &r)
				case m.KeyIs("tools"):
					_, _, ok = fastAnthropicTools(m.Value, &r)
				case m.KeyIs("system") && from == providers.FormatAnthropic:
					_, ok = fastAnthropicSystem(m.Value, &r)
				}
				if !ok {
					t.Errorf("%s: the fast pass declined %s in %s", from, m.Key, body)
				}
				return true
			})
		}
	}
	require.Greater(t, accepted, 40)
}

func FuzzRequestFastMatchesSlow(f *testing.F) {
	for from, bodies := range fastInputs(f) {
		for _, body := range bodies {
			if len(body) < 4096 {
				f.Add(body, from == providers.FormatOpenAI)
			}
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, fromOpenAI bool) {
		from := providers.FormatAnthropic
		if fromOpenAI {
			from = providers.FormatOpenAI
		}
		checkFastMatchesSlow(t, from, body, RequestOptions{MaxOutputTokens: 8192})
	})
}

// TestSpliceOrders checks the key orders splice uses against the struct
// tags of the request types.
func TestSpliceOrders(t *testing.T) {
	tags := func(v any) []string {
		var keys []string
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			keys = append(keys, name)
		}
		return keys
	}
	require.Equal(t, tags(wire.MessagesRequest{}), messagesRequestOrder)
	require.Equal(t, tags(wire.ChatRequest{}), chatRequestOrder)
}

func TestSplice(t *testing.T) {
	base := []byte(`{"model":"m","messages":null,"stream":true}`)
	got := splice(base, chatRequestOrder, spliced{key: "messages", head: []byte(`[1,`), value: []byte(`2]`)}, spliced{key: "tools", value: []byte(`[]`)}, spliced{key: "user"})
	require.Equal(t, `{"model":"m","messages":[1,2],"stream":true,"tools":[]}`, string(got))
	got = splice([]byte(`{"model":"m","stream":true}`), messagesRequestOrder, spliced{key: "system", value: []byte(`"s"`)}, spliced{key: "messages", value: []byte(`[]`)})
	require.Equal(t, `{"model":"m","system":"s","messages":[],"stream":true}`, string(got))
}

// TestWithFallbackUndoesRemoved checks that names the fast pass reported
// before it declined are forgotten.
func TestWithFallbackUndoesRemoved(t *testing.T) {
	var r removedSet
	r.add("a")
	err := withFallback(&RequestOptions{}, &r, func() bool { r.add("fast"); return false }, func() error { r.add("slow"); return errors.New("x") })
	require.Error(t, err)
	require.Equal(t, []string{"a", "slow"}, r.sorted())
}
