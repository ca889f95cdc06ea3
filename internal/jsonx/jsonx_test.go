package jsonx

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestMembers(t *testing.T) {
	doc := []byte(` {"model":"gpt-4o", "models" : ["a","b"],"n":-1.5e+3,"x":{"y":[true,false,null]},"s":"a\"\\\u00e9"} `)
	var names []string
	var values []string
	require.NoError(t, Members(doc, func(m Member) bool {
		names = append(names, m.Name())
		values = append(values, string(m.Value))
		require.Equal(t, string(doc[m.Start:m.End]), string(m.Key)+string(doc[m.Start+len(m.Key):m.End]))
		return true
	}))
	require.Equal(t, []string{"model", "models", "n", "x", "s"}, names)
	require.Equal(t, []string{`"gpt-4o"`, `["a","b"]`, `-1.5e+3`, `{"y":[true,false,null]}`, `"a\"\\\u00e9"`}, values)
}

func TestMembersEarlyStopStillValidates(t *testing.T) {
	calls := 0
	err := Members([]byte(`{"a":1,"b":2,"c":}`), func(Member) bool { calls++; return false })
	require.Equal(t, 1, calls)
	var se *SyntaxError
	require.ErrorAs(t, err, &se)
}

func TestMembersErrors(t *testing.T) {
	for name, doc := range map[string]string{
		"empty":           ``,
		"space":           `   `,
		"array":           `[1,2]`,
		"string":          `"x"`,
		"unterminated":    `{"a":1`,
		"trailing":        `{"a":1} x`,
		"two objects":     `{}{}`,
		"bad key":         `{a:1}`,
		"missing colon":   `{"a" 1}`,
		"trailing comma":  `{"a":1,}`,
		"bad number":      `{"a":01}`,
		"bad exponent":    `{"a":1e}`,
		"bad escape":      `{"a":"\x"}`,
		"control char":    "{\"a\":\"\x01\"}",
		"bad literal":     `{"a":tru}`,
		"bad unicode":     `{"a":"\u12"}`,
		"unclosed string": `{"a":"abc}`,
	} {
		t.Run(name, func(t *testing.T) {
			err := Members([]byte(doc), nil)
			require.Error(t, err)
			require.False(t, json.Valid([]byte(doc)) && strings.HasPrefix(strings.TrimSpace(doc), "{"), "encoding/json disagrees")
		})
	}
	require.ErrorIs(t, Members([]byte(`[1]`), nil), ErrNotObject)
}

func TestDepthLimit(t *testing.T) {
	deep := `{"a":` + strings.Repeat("[", MaxDepth+5) + strings.Repeat("]", MaxDepth+5) + `}`
	var se *SyntaxError
	require.ErrorAs(t, Members([]byte(deep), nil), &se)
	require.Contains(t, se.Msg, "too deep")
}

func TestKeyIs(t *testing.T) {
	m := Member{Key: []byte(`"mod\u0065l"`)}
	require.True(t, m.KeyIs("model"))
	m = Member{Key: []byte(`"model"`)}
	require.True(t, m.KeyIs("model"))
	require.False(t, m.KeyIs("models"))
}

func TestElements(t *testing.T) {
	var got []string
	require.NoError(t, Elements([]byte(` ["a", 1, {"b":[2]}]`), func(e []byte) bool { got = append(got, string(e)); return true }))
	require.Equal(t, []string{`"a"`, `1`, `{"b":[2]}`}, got)
	require.NoError(t, Elements([]byte(`[]`), func([]byte) bool { t.Fatal("called"); return true }))
	require.Error(t, Elements([]byte(`{}`), func([]byte) bool { return true }))
}

func TestDepthLimitMatchesEncodingJSON(t *testing.T) {
	for _, n := range []int{MaxDepth - 1, MaxDepth, MaxDepth + 1} {
		doc := []byte(strings.Repeat("[", n) + strings.Repeat("]", n))
		require.Equal(t, json.Valid(doc), Valid(doc) == nil, "%d nested arrays", n)
		obj := []byte(`{"a":` + string(doc[2:len(doc)-2]) + `}`)
		require.Equal(t, json.Valid(obj), Members(obj, nil) == nil, "object with %d nested arrays", n)
	}
}

func TestSyntaxErrorOffsets(t *testing.T) {
	for _, tc := range []struct {
		doc    string
		offset int
		msg    string
	}{
		{`{"a":1,}`, 7, `unexpected '}', expected object key`},
		{`{"a" 1}`, 5, `unexpected '1', expected ':' after object key`},
		{`{"a":"x\q"}`, 8, `unexpected 'q', expected valid escape character`},
		{`{"a":[1 2]}`, 8, `unexpected '2', expected ',' or ']' in array`},
		{`{"a":1`, 6, `unexpected end of input, expected ',' or '}' in object`},
		{`{"a":-}`, 6, `unexpected '}', expected digit`},
		{`{"a":1} x`, 8, `unexpected 'x', expected end of document`},
	} {
		var se *SyntaxError
		require.ErrorAs(t, Members([]byte(tc.doc), nil), &se, tc.doc)
		require.Equal(t, tc.offset, se.Offset, tc.doc)
		require.Equal(t, tc.msg, se.Msg, tc.doc)
	}
}

// marshalString is what encoding/json writes for s without HTML escaping.
func marshalString(t testing.TB, s string) []byte {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(s))
	return []byte(strings.TrimSuffix(b.String(), "\n"))
}

var quoteSamples = []string{
	"", "plain", `q"b\`, "nl\nrt\r\ttab\x01\x1f\b\f\x7f", "ünï<>&", "model\xff", "\xe2\x80\xa8\u2029 sep",
	"\xed\xa0\x80 surrogate bytes", "😀 emoji", "cut \xe2\x82", "long ascii run without specials at all, longer than eight",
}

func TestAppendQuote(t *testing.T) {
	for _, s := range quoteSamples {
		got := AppendQuote(nil, s)
		require.True(t, json.Valid(got), "%q -> %s", s, got)
		require.Equal(t, string(marshalString(t, s)), string(got), "%q", s)
		require.Equal(t, string(got), string(AppendQuote(nil, []byte(s))), "[]byte %q", s)
		if utf8.ValidString(s) {
			var back string
			require.NoError(t, json.Unmarshal(got, &back))
			require.Equal(t, s, back)
		}
	}
	// A model name holding byte 0xFF echoed into an error body stays JSON.
	body := append(AppendQuote([]byte(`{"error":{"message":`), "unknown model \xff"), "}}"...)
	require.True(t, json.Valid(body), "%s", body)
}

func FuzzAppendQuote(f *testing.F) {
	for _, s := range quoteSamples {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := AppendQuote([]byte("x"), s)[1:]
		if !json.Valid(got) {
			t.Fatalf("AppendQuote(%q) = %s: invalid JSON", s, got)
		}
		if want := marshalString(t, s); string(got) != string(want) {
			t.Fatalf("AppendQuote(%q) = %s, encoding/json writes %s", s, got, want)
		}
		if utf8.ValidString(s) {
			var back string
			if err := json.Unmarshal(got, &back); err != nil || back != s {
				t.Fatalf("AppendQuote(%q) = %s does not round-trip: %q, %v", s, got, back, err)
			}
		}
	})
}

var literalSamples = []string{
	`""`, `"plain"`, `"a\"b\\c\/d\b\f\n\r\t"`, `"\u00e9\u0041\u001F\u007f\u2028\u2029"`, `"\ud83d\ude00"`,
	`"\ud83d"`, `"\ud83d\u0041"`, `"\ude00\ud83d"`, `"\ud83dx"`, "\"raw \xff byte\"", "\"raw \xe2\x80\xa8 sep\"", `"\u0022\u005c"`,
}

func TestAppendRequoteAndUnquote(t *testing.T) {
	for _, lit := range literalSamples {
		checkLiteral(t, []byte(lit))
	}
}

// checkLiteral compares the literal helpers with encoding/json for one
// valid literal.
func checkLiteral(t testing.TB, lit []byte) {
	var want string
	if err := json.Unmarshal(lit, &want); err != nil {
		t.Fatalf("sample %s: %v", lit, err)
	}
	got, ok := AppendUnquote([]byte("x"), lit)
	if !ok || string(got[1:]) != want {
		t.Fatalf("AppendUnquote(%s) = %q, %v; want %q", lit, got[1:], ok, want)
	}
	if s, ok := Unquote(lit); !ok || s != want {
		t.Fatalf("Unquote(%s) = %q, %v; want %q", lit, s, ok, want)
	}
	if rq, want := AppendRequote([]byte("x"), lit)[1:], marshalString(t, want); string(rq) != string(want) {
		t.Fatalf("AppendRequote(%s) = %s, want %s", lit, rq, want)
	}
}

// checkFlags compares the flags the scanner reported for lit with what lit
// holds.
func checkFlags(t testing.TB, lit []byte, f StringFlags) {
	nonASCII := false
	for _, c := range lit {
		nonASCII = nonASCII || c >= utf8.RuneSelf
	}
	esc := bytes.IndexByte(lit, '\\') >= 0
	recode := false
	for i := 0; i+1 < len(lit); i++ {
		if lit[i] == '\\' {
			recode = recode || lit[i+1] == '/' || lit[i+1] == 'u'
			i++
		}
	}
	if got := [3]bool{f&StrEscaped != 0, f&StrNonASCII != 0, f&StrRecode != 0}; got != [3]bool{esc, nonASCII, recode} {
		t.Fatalf("flags of %q = %v, want %v", lit, got, [3]bool{esc, nonASCII, recode})
	}
}

func TestStringFlags(t *testing.T) {
	verbatim := 0
	for _, l := range append(literalSamples, `"\u00e9 plain text longer than one word é"`, `"é"`, `"0123456789\n0123456789"`) {
		s := Scanner{Data: []byte(l + ` `)}
		lit, f, ok := s.ReadString()
		require.True(t, ok, l)
		require.Equal(t, l, string(lit))
		checkFlags(t, lit, f)
		if utf8.Valid(lit) && Verbatim(lit, f) {
			require.Equal(t, string(lit), string(AppendRequote(nil, lit)), l)
			verbatim++
		}
	}
	require.Equal(t, 4, verbatim)
	require.False(t, Verbatim([]byte("\"a\u2028\""), StrRecode|StrEscaped))
	require.False(t, Verbatim([]byte("\"a\xe2\x80\xa9b\""), StrNonASCII))
	require.True(t, Verbatim([]byte("\"a\xe2\x80\x94b\""), StrNonASCII))
}

func FuzzLiterals(f *testing.F) {
	for _, s := range literalSamples {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := Scanner{Data: data}
		lit, f, ok := s.ReadString()
		if !ok {
			if _, uok := AppendUnquote(nil, data); uok && json.Valid(data) && KindOf(data) == String {
				t.Fatalf("ReadString rejects %q, which encoding/json accepts", data)
			}
			return
		}
		checkLiteral(t, lit)
		checkFlags(t, lit, f)
		s = Scanner{Data: data}
		if _, _, ok = s.ReadStringUTF8(); ok != utf8.Valid(lit) {
			t.Fatalf("ReadStringUTF8(%q) = %v", lit, ok)
		}
		if ok && Verbatim(lit, f) && !bytes.Equal(AppendRequote(nil, lit), lit) {
			t.Fatalf("Verbatim(%q) = %v", lit, Verbatim(lit, f))
		}
	})
}

func FuzzAppendCompact(f *testing.F) {
	for _, s := range []string{`{}`, ` { "a" : [ 1 , "x y" , {"b\"  c":null} ] } `, "[\n\t1,\r\n2]", `"  "`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if Valid(data) != nil {
			return
		}
		var want bytes.Buffer
		if err := json.Compact(&want, data); err != nil {
			t.Fatalf("json.Compact(%q): %v", data, err)
		}
		if got := AppendCompact(nil, data); string(got) != want.String() {
			t.Fatalf("AppendCompact(%q) = %q, want %q", data, got, want.String())
		}
	})
}

func FuzzMembersMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"model":"x","models":["a"],"stream":true}`, `[1]`, `{"a":"\u00e9\n"}`, `{"a":1e5,"b":-0.5}`, `{`, `{"a":}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := Valid(data)
		if (err == nil) != json.Valid(data) {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", data, err, json.Valid(data))
		}
		merr := Members(data, func(m Member) bool {
			if _, ok := Unquote(m.Key); !ok {
				t.Fatalf("bad key %q", m.Key)
			}
			if Valid(m.Value) != nil {
				t.Fatalf("member value %q invalid", m.Value)
			}
			return true
		})
		var obj map[string]json.RawMessage
		jerr := json.Unmarshal(data, &obj)
		if (merr == nil) != (jerr == nil && obj != nil) {
			t.Fatalf("Members(%q) = %v, encoding/json object decode = %v", data, merr, jerr)
		}
	})
}

func BenchmarkMembers(b *testing.B) {
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"` + strings.Repeat("Tell me about Go. ", 100) + `"}],"stream":true,"temperature":0.2}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		_ = Members(body, func(m Member) bool { return true })
	}
}

// conversationBody returns a chat completions request of at least size
// bytes shaped like a long coding session: turns of prose and of Go code,
// whose newlines, tabs and quotes make an escape every few bytes.
func conversationBody(size int) []byte {
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	prose := "The handler reads the body once, parses the model and streams the answer back to the client. " +
		"When the upstream fails before the first byte, the gateway tries the next key, then the next model. "
	code := "func relay(ctx context.Context, r *bufio.Reader, w io.Writer) (int, error) {\n\tvar n int\n" +
		"\tif err := ctx.Err(); err != nil {\n\t\treturn n, fmt.Errorf(\"relay: %w\", err)\n\t}\n" +
		"\tm, err := r.Read(buf)\n\tn += m\n\tif errors.Is(err, io.EOF) {\n\t\treturn n, nil\n\t}\n\treturn n, err\n}\n"
	msgs := []msg{{Role: "system", Content: "You are a senior Go engineer."}}
	for total := 0; total < size || msgs[len(msgs)-1].Role != "user"; {
		role := "user"
		if len(msgs)%2 == 0 {
			role = "assistant"
		}
		text := strings.Repeat(prose, 2) + "\n\n```go\n" + code + "```\n\n" + prose + "\n\n```go\n" + code + "```"
		msgs = append(msgs, msg{Role: role, Content: text})
		total += len(text)
	}
	b, err := json.Marshal(map[string]any{"model": "gpt-4o-mini", "messages": msgs, "max_tokens": 400, "stream": true})
	if err != nil {
		panic(err)
	}
	return b
}

// BenchmarkSkipConversation skips a 400 KB coding conversation, the work
// the gateway does on a large request's messages before its upstream call.
func BenchmarkSkipConversation(b *testing.B) {
	body := conversationBody(400_000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		s := Scanner{Data: body}
		if !s.Skip(MaxDepth) || !s.End() {
			b.Fatal(s.Err())
		}
	}
}
