package jsonx

import (
	"encoding/json"
	"strings"
	"testing"

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

func TestAppendQuote(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\`, "nl\nrt\r\ttab\x01\x1f", "ünï<>&"} {
		var back string
		require.NoError(t, json.Unmarshal(AppendQuote(nil, s), &back))
		require.Equal(t, s, back)
	}
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
