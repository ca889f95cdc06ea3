package gateway

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseBody(t *testing.T) {
	for _, tc := range []struct {
		name       string
		body       string
		wantNames  []string
		wantStream bool
		wantUsage  bool
		wantKind   Kind
		wantParam  string
	}{
		{name: "model only", body: `{"model":"gpt-4o","messages":[]}`, wantNames: []string{"gpt-4o"}},
		{name: "models only", body: `{"models":["a","b"]}`, wantNames: []string{"a", "b"}},
		{name: "both", body: `{"model":"x","models":["a","b"],"stream":true}`, wantNames: []string{"x", "a", "b"}, wantStream: true},
		{name: "null model", body: `{"model":null}`},
		{name: "no model", body: `{"messages":[]}`},
		{name: "escaped key", body: `{"mod\u0065l":"x"}`, wantNames: []string{"x"}},
		{name: "stream options", body: `{"model":"x","stream":true,"stream_options":{"include_usage":true}}`, wantNames: []string{"x"}, wantStream: true, wantUsage: true},
		{name: "model number", body: `{"model":4}`, wantKind: KindInvalidRequest, wantParam: "model"},
		{name: "model object", body: `{"model":{}}`, wantKind: KindInvalidRequest, wantParam: "model"},
		{name: "models string", body: `{"models":"a"}`, wantKind: KindInvalidRequest, wantParam: "models"},
		{name: "models mixed", body: `{"models":["a",1]}`, wantKind: KindInvalidRequest, wantParam: "models"},
		{name: "stream string", body: `{"model":"x","stream":"yes"}`, wantKind: KindInvalidRequest, wantParam: "stream"},
		{name: "duplicate models", body: `{"models":["a"],"models":["b"]}`, wantKind: KindInvalidRequest, wantParam: "models"},
		{name: "duplicate model", body: `{"model":"a","model":"b"}`, wantKind: KindInvalidRequest, wantParam: "model"},
		{name: "not json", body: `model=x`, wantKind: KindInvalidJSON},
		{name: "array", body: `[{"model":"x"}]`, wantKind: KindInvalidJSON},
		{name: "truncated", body: `{"model":"x"`, wantKind: KindInvalidJSON},
		{name: "empty", body: ``, wantKind: KindInvalidJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parseBody([]byte(tc.body))
			if tc.wantKind != KindInternal {
				require.NotNil(t, err)
				require.Equal(t, tc.wantKind, err.Kind)
				require.Equal(t, tc.wantParam, err.Param)
				return
			}
			require.Nil(t, err)
			require.Equal(t, tc.wantNames, p.names())
			require.Equal(t, tc.wantStream, p.stream)
			require.Equal(t, tc.wantUsage, p.wantsUsage)
		})
	}
}

func TestRewrite(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   string
		model  string
		inject bool
		want   string
	}{
		{name: "replace model", body: `{"model":"gpt-4o","messages":[1]}`, model: "gpt-4o-2024", want: `{"model":"gpt-4o-2024","messages":[1]}`},
		{name: "drop models last", body: `{"model":"a","x":1,"models":["b"]}`, model: "a", want: `{"model":"a","x":1}`},
		{name: "drop models first", body: `{"models":["b"], "model":"a"}`, model: "b", want: `{ "model":"b"}`},
		{name: "drop models middle", body: `{"a":1,"models":[],"b":2}`, model: "m", want: `{"model":"m","a":1,"b":2}`},
		{name: "insert model", body: `{"messages":[]}`, model: "m", want: `{"model":"m","messages":[]}`},
		{name: "insert into models only", body: `{"models":["x"]}`, model: "x", want: `{"model":"x"}`},
		{name: "insert into empty", body: ` {} `, model: "x", want: ` {"model":"x"} `},
		{name: "null model", body: `{"model":null,"n":1}`, model: "x", want: `{"model":"x","n":1}`},
		{name: "quote model", body: `{"model":"a"}`, model: `we"ird`, want: `{"model":"we\"ird"}`},
		{name: "inject usage", body: `{"model":"a","stream":true}`, model: "a", inject: true, want: `{"stream_options":{"include_usage":true},"model":"a","stream":true}`},
		{name: "merge usage", body: `{"model":"a","stream_options":{"include_usage":false,"x":1}}`, model: "a", inject: true, want: `{"model":"a","stream_options":{"include_usage":true,"x":1}}`},
		{name: "keep usage", body: `{"model":"a","stream_options":{"include_usage":true}}`, model: "a", inject: true, want: `{"model":"a","stream_options":{"include_usage":true}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parseBody([]byte(tc.body))
			require.Nil(t, err)
			got := p.rewrite([]byte(tc.body), tc.model, tc.inject)
			require.Equal(t, tc.want, string(got))
			require.True(t, json.Valid(got))
		})
	}
}

func FuzzParseAndRewrite(f *testing.F) {
	for _, s := range []string{
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`,
		`{"models":["a","b"],"stream":true}`,
		`{"model":"a","models":["b"],"stream_options":{"include_usage":false}}`,
		`{}`, `[]`, `{"model":1}`, `{"models":[1]}`,
	} {
		f.Add([]byte(s), "m", true)
	}
	f.Fuzz(func(t *testing.T, body []byte, model string, inject bool) {
		p, perr := parseBody(body)
		if perr != nil {
			require.NotEmpty(t, perr.Message)
			return
		}
		out := p.rewrite(body, model, inject)
		var m map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(out, &m), "rewrite of %q gave %q", body, out)
		var got string
		require.NoError(t, json.Unmarshal(m["model"], &got))
		require.Equal(t, []rune(model), []rune(got))
		_, hasModels := m["models"]
		require.False(t, hasModels)
		if inject {
			var so struct {
				IncludeUsage bool `json:"include_usage"`
			}
			require.NoError(t, json.Unmarshal(m["stream_options"], &so))
			require.True(t, so.IncludeUsage)
		}
	})
}
