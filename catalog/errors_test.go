package catalog_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/providers"
)

// specErrors returns every *SpecError of a joined error, requiring that
// every joined error is one.
func specErrors(t *testing.T, err error) []catalog.SpecError {
	t.Helper()
	require.Error(t, err)
	joined, ok := err.(interface{ Unwrap() []error })
	require.True(t, ok, "errors are joined: %T", err)
	var out []catalog.SpecError
	for _, e := range joined.Unwrap() {
		var se *catalog.SpecError
		require.True(t, errors.As(e, &se), "%T: %v", e, e)
		require.Same(t, se, e, "joined flat, unwrapped")
		out = append(out, *se)
	}
	return out
}

// where is the part of a SpecError a configuration layer uses to find the
// line.
type where struct {
	Index           int
	Provider, Model string
	Field           string
}

func wheres(errs []catalog.SpecError) []where {
	out := make([]where, len(errs))
	for i, e := range errs {
		out[i] = where{e.Index, e.Provider, e.Model, e.Field}
	}
	return out
}

func TestSpecErrorParse(t *testing.T) {
	_, err := catalog.Parse([]byte(`{"providers": [
		{"id": "ok", "base_url": "https://ok.test/", "format": "openai", "surfaces": ["chat-completions"]},
		{"id": "a", "aliases": ["a1", "a:2"], "base_url": "ftp://a.test/", "format": "openai", "surfaces": ["chat-completions", "messages"],
		 "key_prefixes": ["k", ""], "default_model": "nope", "models": [
			{"id": "m0"},
			{"id": "m1", "aliases": ["x", "M0"], "context_window": -1, "encoding": "bogus", "deprecation_date": "soon", "replacement": "zz"},
			{"id": "m2", "max_output_tokens": 1.5, "pricing": {"input": 2.5, "cache_write": -1}}]},
		{"id": "", "format": "soap", "surfaces": []}]}`))
	got := specErrors(t, err)
	require.Equal(t, []where{
		// Number decoding comes first.
		{1, "a", "m2", "Models[2].MaxOutputTokens"},
		{1, "a", "m2", "Models[2].Pricing.Input"},
		{1, "a", "", "Aliases[1]"},
		{1, "a", "", "Surfaces[1]"},
		{1, "a", "", "BaseURL"},
		{1, "a", "", "KeyPrefixes[1]"},
		{1, "a", "m1", "Models[1].Aliases[1]"},
		{1, "a", "m1", "Models[1].ContextWindow"},
		{1, "a", "m1", "Models[1].Encoding"},
		{1, "a", "m1", "Models[1].DeprecationDate"},
		{1, "a", "m2", "Models[2].Pricing.CacheWrite"},
		{1, "a", "m1", "Models[1].Replacement"},
		{1, "a", "", "DefaultModel"},
		{2, "", "", "ID"},
		{2, "", "", "Format"},
		{2, "", "", "Surfaces"},
		{2, "", "", "BaseURL"},
	}, wheres(got))
	// The text keeps the provider and model for people.
	require.Equal(t, `catalog: provider "a": model "m1": alias "M0" is already used by model "m0"`, got[6].Error())
	require.Equal(t, `catalog: provider 2: id "": empty`, got[13].Error())
	require.Equal(t, `catalog: provider "a": default_model "nope" is not a model of this provider`, got[12].Error())
}

func TestSpecErrorExtend(t *testing.T) {
	base := defaultCatalog(t)
	_, err := base.Extend(
		catalog.ProviderSpec{ID: "lab", BaseURL: "https://lab.test", Surfaces: []providers.Surface{"chat-completions", "messages"}},
		catalog.ProviderSpec{ID: "Open-AI", Aliases: []string{"oai", "groqcloud"}, Models: []catalog.Model{
			{ID: "my-model", Pricing: catalog.Pricing{Output: -1}},
			// An alias of gpt-4o: the error names the spec's spelling.
			{ID: "gpt-4o-2024-08-06", Aliases: []string{"ok", "gpt-4o-mini"}, Pricing: catalog.Pricing{Input: -1}},
			{ID: "gpt-4.1", Replacement: "nope"},
			// Models[1] made "gpt-4o-mini" a name of gpt-4o.
			{ID: "gpt-4o-mini"},
		}},
		catalog.ProviderSpec{},
		catalog.ProviderSpec{ID: "openai"},
		catalog.ProviderSpec{ID: "x", BaseURL: "https://x.test", DefaultModel: "m", KeyPrefixes: []string{"x", "x"}},
	)
	got := specErrors(t, err)
	// Problems with the specs themselves come first, in spec order, then
	// those of the merged catalog, in provider order (catalog providers,
	// then custom ones).
	require.Equal(t, []where{
		{1, "Open-AI", "gpt-4o-mini", "Models[3].ID"},
		{2, "", "", "ID"},
		{3, "openai", "", "ID"},
		{1, "Open-AI", "gpt-4o-2024-08-06", "Models[1].Pricing.Input"},
		// gpt-4o-mini's own ID was there first, but the spec made the
		// alias: the problem is the spec's.
		{1, "Open-AI", "gpt-4o-2024-08-06", "Models[1].Aliases[1]"},
		{1, "Open-AI", "my-model", "Models[0].Pricing.Output"},
		{1, "Open-AI", "gpt-4.1", "Models[2].Replacement"},
		// The alias "groqcloud" collides with a provider no spec changed:
		// it is reported against the spec that added it.
		{1, "Open-AI", "", "Aliases[1]"},
		{0, "lab", "", "Surfaces[1]"},
		{4, "x", "", "KeyPrefixes[1]"},
		{4, "x", "", "DefaultModel"},
	}, wheres(got))
	require.Equal(t, `catalog: provider "Open-AI": model "gpt-4o-mini": names the same model as Models[1] ("gpt-4o-2024-08-06"): list each model once`, got[0].Error())
	require.Equal(t, `catalog: provider spec 2: empty id`, got[1].Error())
	require.Equal(t, `catalog: provider "openai": provider spec 3: provider already configured by spec 1`, got[2].Error())
	require.Equal(t, `catalog: provider "Open-AI": model "gpt-4o-2024-08-06": negative input price -1`, got[3].Error())
	require.Equal(t, `catalog: provider "Open-AI": model "gpt-4o-2024-08-06": alias "gpt-4o-mini" is already used by model "gpt-4o-mini"`, got[4].Error())
	require.Equal(t, `catalog: provider "Open-AI": alias "groqcloud" is already used by provider "groq"`, got[7].Error())

	var se *catalog.SpecError
	require.ErrorAs(t, err, &se)
	require.Equal(t, "Models[3].ID", se.Field, "errors.As finds the first")
}

func TestSpecErrorText(t *testing.T) {
	cause := errors.New("boom")
	tests := []struct {
		err  *catalog.SpecError
		want string
	}{
		{&catalog.SpecError{Provider: "p", Field: "BaseURL", Err: cause}, `catalog: provider "p": boom`},
		{&catalog.SpecError{Provider: "p", Model: "m", Field: "Models[0].ID", Err: cause}, `catalog: provider "p": model "m": boom`},
		{&catalog.SpecError{Index: 3, Field: "ID", Err: cause}, `catalog: provider 3: boom`},
		{&catalog.SpecError{Provider: "p", Field: "Models[2]", Err: cause}, `catalog: provider "p": boom`},
		{&catalog.SpecError{Provider: "p"}, `catalog: provider "p"`},
	}
	for _, tt := range tests {
		require.EqualError(t, tt.err, tt.want)
		require.Equal(t, tt.err.Err, errors.Unwrap(tt.err))
	}
}
