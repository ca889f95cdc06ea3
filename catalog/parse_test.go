package catalog_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/providers"
)

// doc builds a one-provider catalog file whose provider and model JSON
// fragments are given (without braces).
func doc(provider, model string) []byte {
	p := `"id": "acme", "base_url": "https://api.acme.test/v1", "format": "openai", "surfaces": ["chat-completions"]`
	if provider != "" {
		p = provider
	}
	m := `"id": "m1", "context_window": 1000, "pricing": {"input": 1, "output": 2}`
	if model != "" {
		m = model
	}
	return []byte(`{"providers": [{` + p + `, "models": [{` + m + `}]}]}`)
}

func TestParseValid(t *testing.T) {
	c, err := catalog.Parse([]byte(`{
		"comment": "x", "prices_as_of": "2026-01-01", "sources": ["https://example.test"],
		"providers": [{
			"id": "acme", "aliases": ["ACME-AI", "acme.ai"], "display_name": "Acme", "website": "https://acme.test",
			"base_url": "https://api.acme.test/v1", "format": "OpenAI", "surfaces": ["Chat-Completions", "embeddings"],
			"stream_usage": true, "default_model": "Small", "default_model_note": "cheap", "comment": "c",
			"key_prefixes": ["acme-", "ak_"], "key_prefixes_note": "documented at https://acme.test/keys",
			"models": [
				{"id": "acme-small", "aliases": ["small", "acme-small-2026-01-01"], "author": "acme", "display_name": "Small",
				 "context_window": 8192, "max_output_tokens": 1024, "input_modalities": ["text"], "output_modalities": ["text"],
				 "features": ["tool-calling"], "encoding": "o200k_base",
				 "pricing": {"input": 100000, "output": 400000, "cache_read": 10000, "cache_write": 0},
				 "pricing_note": "n", "note": "n", "metadata": {"tier": "cheap"}},
				{"id": "acme-old", "author": "acme", "deprecated": true, "deprecation_date": "2026-12-31", "replacement": "SMALL",
				 "context_window": "4096", "pricing": {"input": 1}}
			]
		}]
	}`))
	require.NoError(t, err)
	p, ok := c.Provider("acme.ai")
	require.True(t, ok)
	require.Equal(t, "https://api.acme.test/v1/", p.BaseURL, "a trailing slash is added")
	require.Equal(t, providers.FormatOpenAI, p.Format)
	require.Equal(t, []providers.Surface{"chat-completions", "embeddings"}, p.Surfaces)
	require.Equal(t, "acme-small", p.DefaultModel, "default model is canonicalised to the ID")
	require.True(t, p.StreamUsage)
	require.Equal(t, []string{"acme-", "ak_"}, p.KeyPrefixes)
	require.True(t, c.MayOwnKey(p, "ak_123"))
	require.False(t, p.OwnTransport)

	small := p.Models[0]
	require.Equal(t, "acme", small.Provider)
	require.Equal(t, catalog.Pricing{Input: 100000, Output: 400000, CacheRead: 10000}, small.Pricing)
	require.Equal(t, map[string]any{"tier": "cheap"}, small.Metadata)
	require.Equal(t, 8192, small.ContextWindow)

	old := p.Models[1]
	require.Equal(t, "acme-small", old.Replacement)
	require.Equal(t, 4096, old.ContextWindow, "a quoted integer is accepted")
	require.Equal(t, catalog.EncodingCL100K, old.Encoding, "empty encoding defaults")
}

func TestParseEmpty(t *testing.T) {
	c, err := catalog.Parse([]byte(`{}`))
	require.NoError(t, err)
	require.Empty(t, c.Providers())
	_, err = c.Resolve("gpt-4o")
	require.ErrorIs(t, err, catalog.ErrUnknownModel)
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want []string // substrings of the error
	}{
		{"not json", []byte(`{"providers": [`), []string{"catalog: decoding"}},
		{"trailing data", []byte(`{} {}`), []string{"trailing data"}},
		{"unknown field", []byte(`{"providerz": []}`), []string{"unknown field"}},
		{"unknown model field", doc("", `"id": "m1", "context": 5`), []string{"unknown field"}},
		{"fractional price", doc("", `"id": "m1", "pricing": {"input": 2.5}`), []string{`model "m1": pricing.input 2.5 is not an integer`}},
		{"exponent price", doc("", `"id": "m1", "pricing": {"output": 1e6}`), []string{"pricing.output 1e6 is not an integer"}},
		{"fractional limit", doc("", `"id": "m1", "context_window": 1000.5`), []string{"context_window 1000.5 is not an integer"}},
		{"huge price", doc("", `"id": "m1", "pricing": {"cache_read": 99999999999999999999}`), []string{"cache_read 99999999999999999999 is not an integer"}},
		{"negative price", doc("", `"id": "m1", "pricing": {"cache_write": -1}`), []string{"negative cache_write price -1"}},
		{"negative limits", doc("", `"id": "m1", "context_window": -1, "max_output_tokens": -2`), []string{"negative context_window -1", "negative max_output_tokens -2"}},
		{"empty provider id", doc(`"id": "", "base_url": "https://a.test/", "format": "openai", "surfaces": ["chat-completions"]`, ""), []string{`provider 0: id "": empty`}},
		{"colon in provider id", doc(`"id": "a:b", "base_url": "https://a.test/", "format": "openai", "surfaces": ["chat-completions"]`, ""), []string{`id "a:b": contains ':'`}},
		{"space in provider alias", doc(`"id": "a", "aliases": ["a b"], "base_url": "https://a.test/", "format": "openai", "surfaces": ["chat-completions"]`, ""), []string{`alias "a b": contains white space`}},
		{"unknown format", doc(`"id": "a", "base_url": "https://a.test/", "format": "gemini", "surfaces": ["chat-completions"]`, ""), []string{`unknown format "gemini"`}},
		{"no surfaces", doc(`"id": "a", "base_url": "https://a.test/", "format": "openai"`, ""), []string{"no API surfaces"}},
		{"unknown surface", doc(`"id": "a", "base_url": "https://a.test/", "format": "openai", "surfaces": ["completions"]`, ""), []string{`unknown surface "completions"`}},
		{"surface of another format", doc(`"id": "a", "base_url": "https://a.test/", "format": "anthropic", "surfaces": ["chat-completions"]`, ""), []string{`surface "chat-completions" is not served in format "anthropic"`}},
		{"duplicate surface", doc(`"id": "a", "base_url": "https://a.test/", "format": "openai", "surfaces": ["responses", "Responses"]`, ""), []string{`duplicate surface "responses"`}},
		{"missing base url", doc(`"id": "a", "format": "openai", "surfaces": ["chat-completions"]`, ""), []string{`provider "a": base URL is required`}},
		{"relative base url", doc(`"id": "a", "base_url": "api.a.test/v1", "format": "openai", "surfaces": ["chat-completions"]`, ""), []string{"scheme must be http or https"}},
		{"base url with fragment", doc(`"id": "a", "base_url": "https://a.test/v1#x", "format": "openai", "surfaces": ["chat-completions"]`, ""), []string{"fragment is not allowed"}},
		{"base url with credentials", doc(`"id": "a", "base_url": "https://u:hunter2@a.test/v1", "format": "openai", "surfaces": ["chat-completions"]`, ""), []string{"credentials are not allowed in the URL"}},
		{"unknown default model", doc(`"id": "a", "base_url": "https://a.test/", "format": "openai", "surfaces": ["chat-completions"], "default_model": "m2"`, ""), []string{`default_model "m2" is not a model of this provider`}},
		{"empty model id", doc("", `"id": ""`), []string{`model "": id "": empty`}},
		{"spaced model id", doc("", `"id": " m1"`), []string{"has surrounding white space"}},
		{"control char in alias", doc("", `"id": "m1", "aliases": ["a\u0001"]`), []string{"contains a control character"}},
		{"unknown encoding", doc("", `"id": "m1", "encoding": "gpt2"`), []string{`unknown encoding "gpt2"`}},
		{"bad deprecation date", doc("", `"id": "m1", "deprecation_date": "soon"`), []string{`deprecation_date "soon" is not YYYY-MM-DD`}},
		{"unknown replacement", doc("", `"id": "m1", "replacement": "m9"`), []string{`replacement "m9" is not a model of this provider`}},
		{
			"duplicate provider alias",
			[]byte(`{"providers": [
				{"id": "a", "aliases": ["shared"], "base_url": "https://a.test/", "format": "openai", "surfaces": ["chat-completions"]},
				{"id": "b", "aliases": ["SHARED", "A"], "base_url": "https://b.test/", "format": "openai", "surfaces": ["chat-completions"]}]}`),
			[]string{`provider "b": alias "SHARED" is already used by provider "a"`, `provider "b": alias "A" is already used by provider "a"`},
		},
		{
			"duplicate provider id",
			[]byte(`{"providers": [
				{"id": "a", "base_url": "https://a.test/", "format": "openai", "surfaces": ["chat-completions"]},
				{"id": "A", "base_url": "https://b.test/", "format": "openai", "surfaces": ["chat-completions"]}]}`),
			[]string{`provider "A": id "A" is already used by provider "a"`},
		},
		{
			"duplicate model id and alias",
			[]byte(`{"providers": [{"id": "a", "base_url": "https://a.test/", "format": "openai", "surfaces": ["chat-completions"], "models": [
				{"id": "m1", "aliases": ["one"]}, {"id": "M1"}, {"id": "m2", "aliases": ["ONE"]}]}]}`),
			[]string{`model "M1": id "M1" is already used by model "m1"`, `model "m2": alias "ONE" is already used by model "m1"`},
		},
		{
			"every problem at once",
			[]byte(`{"providers": [
				{"id": "a", "base_url": "ftp://a.test/", "format": "soap", "surfaces": ["chat-completions"], "models": [
					{"id": "m1", "pricing": {"input": 2.5, "output": -3}}]},
				{"id": "b", "base_url": "https://b.test/", "format": "openai", "surfaces": ["messages"], "default_model": "zzz"}]}`),
			[]string{"pricing.input 2.5 is not an integer", "negative output price -3", `unknown format "soap"`, "scheme must be http or https",
				`surface "messages" is not served in format "openai"`, `default_model "zzz"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := catalog.Parse(tt.data)
			require.Error(t, err)
			require.Nil(t, c)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				require.True(t, strings.HasPrefix(line, "catalog: "), "line %q", line)
			}
			require.NotContains(t, err.Error(), "hunter2", "a URL password never reaches error text")
		})
	}
}

// TestParseRedundantAliases: an alias equal to the provider's own ID or to the
// model's own ID under case folding is redundant, not a conflict.
func TestParseRedundantAliases(t *testing.T) {
	c, err := catalog.Parse([]byte(`{"providers": [{"id": "acme", "aliases": ["ACME", "Acme"], "base_url": "https://a.test/",
		"format": "openai", "surfaces": ["chat-completions"], "models": [{"id": "m1", "aliases": ["M1"]}]}]}`))
	require.NoError(t, err)
	ms, err := c.Resolve("ACME:m1")
	require.NoError(t, err)
	require.Len(t, ms, 1)
}
