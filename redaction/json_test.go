package redaction

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestJSON(t *testing.T) {
	r := allPresets(t)
	for _, tc := range []struct {
		name, in, want string
		total          int
	}{
		{"nothing", `{"a": "hello", "b": [1, 2.5, true, null]}`, `{"a": "hello", "b": [1, 2.5, true, null]}`, 0},
		{"a value", `{"messages":[{"role":"user","content":"I am john@example.com"}]}`,
			`{"messages":[{"role":"user","content":"I am [EMAIL]"}]}`, 1},
		{"an escaped @", `{"c":"john\u0040example.com"}`, `{"c":"[EMAIL]"}`, 1},
		{"a match across an escape", `{"c":"call 415\u002d555-2671\n"}`, `{"c":"call [PHONE]\n"}`, 1},
		{"escapes elsewhere are re-encoded", `{"c":"\"q\" \/ a@b.io \u00e9\t"}`, `{"c":"\"q\" / [EMAIL] é\t"}`, 1},
		{"keys are not touched", `{"a@b.io": "a@b.io"}`, `{"a@b.io": "[EMAIL]"}`, 1},
		{"layout is kept", "{\n  \"x\" : [ \"a@b.io\" , 7 ]\n}", "{\n  \"x\" : [ \"[EMAIL]\" , 7 ]\n}", 1},
		{"nested", `[[{"k":[{"v":"123-45-6789"}]}],"4111 1111 1111 1111"]`, `[[{"k":[{"v":"[SSN]"}]}],"[CARD]"]`, 2},
		{"a bare string", `"sk-proj-Ab3dEfGhIjKlMnOpQrStUvWx"`, `"[API_KEY]"`, 1},
		{"a deletion", `{"c":"x"}`, `{"c":"x"}`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, c, err := r.JSON([]byte(tc.in))
			require.NoError(t, err)
			require.Equal(t, tc.want, string(out))
			require.Equal(t, tc.total, c.Total())
			require.True(t, json.Valid(out))
		})
	}
}

func TestJSONReturnsBodyItself(t *testing.T) {
	r := allPresets(t)
	body := []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"Say hello"}]}`)
	out, c, err := r.JSON(body)
	require.NoError(t, err)
	require.Nil(t, c)
	require.Same(t, &body[0], &out[0])
	allocs := testing.AllocsPerRun(50, func() {
		_, _, _ = r.JSON(body)
	})
	require.Zero(t, allocs)
}

func TestJSONInvalid(t *testing.T) {
	r := allPresets(t)
	for _, in := range []string{``, `{`, `{"a":}`, `{"a":"b",}`, `[1 2]`, `{"a":"b"} x`, `{1:2}`, `"\x"`, "\"a\x01\""} {
		t.Run(in, func(t *testing.T) {
			_, _, err := r.JSON([]byte(in))
			require.ErrorIs(t, err, ErrInvalidJSON)
		})
	}
}

// FuzzJSON checks that JSON keeps documents valid, and that each string
// value decodes to Text of the input's decoded value.
func FuzzJSON(f *testing.F) {
	f.Add(`{"a":"mail a@b.io","b":["4111 1111 1111 1111",{"c":"x\u0040y.io"}],"d":1}`)
	f.Add(`["\ud83d\ude00 123-45-6789", "\u2028 +44 20 7946 0958", "\xff a@b.io"]`)
	r := allPresets(f)
	f.Fuzz(func(t *testing.T, doc string) {
		out, _, err := r.JSON([]byte(doc))
		if err != nil {
			if json.Valid([]byte(doc)) {
				t.Fatalf("valid JSON rejected: %v", err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid output %q", out)
		}
		in, got := decode(t, []byte(doc)), decode(t, out)
		require.Equal(t, redactValues(r, in), got)
	})
}

// decode decodes a JSON document, keeping numbers as written.
func decode(t *testing.T, b []byte) any {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	require.NoError(t, d.Decode(&v))
	return v
}

// redactValues applies Text to every string value of v, decoded.
func redactValues(r *Redactor, v any) any {
	switch v := v.(type) {
	case string:
		s, _ := r.Text(v)
		return s
	case []any:
		for i := range v {
			v[i] = redactValues(r, v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = redactValues(r, v[k])
		}
	}
	return v
}
