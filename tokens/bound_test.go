package tokens

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCountParts(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want int
	}{
		{name: "text only", body: `{"messages":[{"role":"user","content":"hello"}]}`},
		{name: "openai image", body: `{"messages":[{"role":"user","content":[{"type":"text","text":"what?"},{"type":"image_url","image_url":{"url":"https://x/y.png","detail":"high"}}]}]}`, want: 1},
		{name: "openai image string url", body: `{"messages":[{"role":"user","content":[{"image_url":"https://x/y.png","type":"image_url"}]}]}`, want: 1},
		{name: "openai audio and file", body: `{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"UklGR","format":"wav"}},{"type":"file","file":{"file_id":"file-abc"}}]}]}`, want: 2},
		{name: "anthropic image and document", body: `{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"https://x/y.png"}},{"type":"document","source":{"type":"file","file_id":"f"}}]}]}`, want: 2},
		{name: "anthropic source types", body: `{"messages":[{"role":"user","content":[{"type":"document","source" : { "type" : "file","file_id":"f"}},{"type":"image","source":{"file_id":"f","type":"file"}}]}]}`, want: 3},
		{name: "anthropic image in a tool result", body: `{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBOR"}}]}]}]}`, want: 1},
		{name: "responses parts and video", body: `{"input":[{"role":"user","content":[{"type":"input_image","image_url":"https://x"},{"type":"input_file","file_id":"f"},{"type":"video_url","video_url":{"url":"v"}}]}]}`, want: 3},
		{name: "whitespace", body: "{\"messages\":[{\"content\":[{ \"type\" \t:\n \"image\" , \"source\":{}}]}], \"tools\" : [ {\"name\":\"f\"} ] }", want: 2},
		{name: "tools", body: `{"tools":[{"type":"function","function":{"name":"f"}}],"messages":[]}`, want: 1},
		{name: "empty tools", body: `{"tools":[ ],"functions":[],"messages":[]}`},
		{name: "functions and mcp servers", body: `{"functions":[{"name":"f"}],"mcp_servers":[{"type":"url","url":"https://m"}]}`, want: 2},
		{name: "tools not an array", body: `{"tools":null,"tools":{"a":1}}`},
		{name: "a tool named image", body: `{"messages":[{"role":"assistant","tool_calls":[{"function":{"name":"image","arguments":"{}"}}]}],"tool_choice":{"type":"function","function":{"name":"image"}}}`},
		{name: "not the type key", body: `{"messages":[{"content":"x","kind":"image","xtype":"file"}]}`},
		{name: "markers in text", body: `{"messages":[{"role":"user","content":"{\"type\":\"image\",\"tools\":[1]} \"type\": \"image\""}]}`},
		{name: "marker prefix", body: `{"type":"images","type":"filed","type":"document_x","toolsx":[1]}`},
		{name: "truncated", body: `{"type":"image`},
		{name: "quote at the end", body: `{"type":"`},
		{name: "empty", body: ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, countParts([]byte(tc.body)))
			require.Equal(t, int64(len(tc.body))+3+int64(tc.want)*DefaultPartAllowance, UpperBound([]byte(tc.body)))
			require.Equal(t, int64(len(tc.body))+3+int64(tc.want)*10, UpperBoundWith([]byte(tc.body), 10))
			require.Equal(t, int64(len(tc.body))+3, UpperBoundWith([]byte(tc.body), -1))
		})
	}
}

// checkUpperBound fails when UpperBound is below the exact count of the
// body, in either format and encoding.
func checkUpperBound(t testing.TB, c *Counter, body []byte) {
	t.Helper()
	ub := UpperBound(body)
	for _, enc := range []string{EncodingCL100K, EncodingO200K} {
		if n := c.EstimateOpenAIChat(enc, body); n > ub {
			t.Fatalf("openai %s: exact %d > upper bound %d for %q", enc, n, ub, body)
		}
		if n := c.EstimateAnthropicMessages(enc, body); n > ub {
			t.Fatalf("anthropic %s: exact %d > upper bound %d for %q", enc, n, ub, body)
		}
	}
}

// boundSamples are bodies at the edges of the bound: overhead with little
// text, escapes, invalid UTF-8, and texts that tokenize to many tokens.
var boundSamples = []string{
	`{}`, `{"messages":[]}`, `{"messages":[{}]}`, `{"messages":[{},{},{},{},{},{}]}`,
	`{"messages":[1,1,1,1,1,1,1,1,1,1,1,1]}`, `{"messages":[[],[],[],[]]}`,
	`{"messages":[{"content":""},{"content":[]},{"content":[{}]}]}`,
	`{"messages":[{"content":"1,1,1,1,1,1,1,1,1,1"}]}`,
	`{"messages":[{"content":"\u00e9\u00e9\ud83d\ude00\ud800\n\t\"\\"}]}`,
	"{\"messages\":[{\"content\":\"\xff\xfe\xfd!\xff?\xff\x80a\xffb\"}]}",
	`{"system":"s","messages":[{"content":[{"type":"tool_result","content":[{"type":"text","text":"x"}]}]}],"tools":[]}`,
	`{"messages":[{"content":"` + strings.Repeat("🙂👍🏽", 50) + `"},{"content":"` + strings.Repeat("x y ", 50) + `"}]}`,
}

func TestUpperBound(t *testing.T) {
	c := NewCounter()
	for _, s := range append(append([]string{}, walkSamples...), boundSamples...) {
		checkUpperBound(t, c, []byte(s))
	}
	for _, texts := range []map[string]string{corpus(t), holdout(t)} {
		for _, body := range [][]byte{openAIBody(texts), anthropicBody(texts)} {
			checkUpperBound(t, c, body)
			exact := c.EstimateOpenAIChat(EncodingO200K, body)
			t.Logf("%d bytes: upper bound %d, exact o200k count %d (%.1f×)", len(body), UpperBound(body), exact, float64(UpperBound(body))/float64(exact))
		}
	}
	// Beyond the Counter's bound the rest is estimated, and stays under.
	small := NewCounter()
	small.maxBytes = 4096
	openai, anthropic := largeBodies(t)
	checkUpperBound(t, small, openai)
	checkUpperBound(t, small, anthropic)
}

func FuzzUpperBound(f *testing.F) {
	for _, s := range append(append([]string{}, walkSamples...), boundSamples...) {
		f.Add([]byte(s))
	}
	f.Add([]byte("\xff\xfe!\xff?"))
	c := NewCounter()
	f.Fuzz(func(t *testing.T, body []byte) {
		checkUpperBound(t, c, body)
		// The input as the text of a message, its bytes kept as they are
		// (invalid UTF-8 included), so that every text is tried.
		lit := rawQuote(body)
		checkUpperBound(t, c, []byte(`{"messages":[{"content":`+lit+`}]}`))
		checkUpperBound(t, c, []byte(`{"system":[{"text":`+lit+`}],"messages":[{"content":[{"text":`+lit+`}]}]}`))
	})
}

// rawQuote quotes b as a JSON string literal, escaping only what must be
// escaped: invalid UTF-8 stays as it is.
func rawQuote(b []byte) string {
	out := []byte{'"'}
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c < 0x20:
			out = append(out, fmt.Sprintf(`\u%04x`, c)...)
		default:
			out = append(out, c)
		}
	}
	return string(append(out, '"'))
}

func BenchmarkUpperBound(b *testing.B) {
	openai, anthropic := largeBodies(b)
	parts := []byte(strings.Repeat(`{"role":"user","content":[{"type":"text","text":"What is in this image?"},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]},`, 2000))
	for _, bc := range []struct {
		name string
		body []byte
	}{{"openai_400K", openai}, {"anthropic_400K", anthropic}, {"image_parts_300K", parts}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for b.Loop() {
				UpperBound(bc.body)
			}
		})
	}
}
