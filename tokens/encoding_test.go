package tokens

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/catalog"
)

func TestEncodingFor(t *testing.T) {
	for _, tc := range []struct{ model, want string }{
		{"gpt-4o", EncodingO200K},
		{"gpt-4o-mini-2024-07-18", EncodingO200K},
		{"GPT-4.1-nano", EncodingO200K},
		{"gpt-4.5-preview", EncodingO200K},
		{"gpt-5", EncodingO200K},
		{"gpt-5.1-codex-max", EncodingO200K},
		{"chatgpt-4o-latest", EncodingO200K},
		{"o1", EncodingO200K},
		{"o3-mini", EncodingO200K},
		{"o4-mini-deep-research", EncodingO200K},
		{"codex-mini-latest", EncodingO200K},
		{"gpt-oss-120b", EncodingO200K},
		{"openai/gpt-oss-20b", EncodingO200K},
		{"accounts/fireworks/models/gpt-oss-120b", EncodingO200K},
		{"ft:gpt-4o-mini-2024-07-18:acme::9abc", EncodingO200K},
		{"gpt-4", EncodingCL100K},
		{"gpt-4-turbo", EncodingCL100K},
		{"gpt-3.5-turbo", EncodingCL100K},
		{"ft:gpt-3.5-turbo:acme::1", EncodingCL100K},
		{"text-embedding-3-small", EncodingCL100K},
		{"claude-sonnet-4-5", EncodingCL100K},
		{"meta-llama/llama-3.3-70b-instruct", EncodingCL100K},
		{"gemini-2.5-pro", EncodingCL100K},
		{"ft:", EncodingCL100K},
		{"", EncodingCL100K},
	} {
		t.Run(tc.model, func(t *testing.T) {
			require.Equal(t, tc.want, EncodingFor(tc.model))
		})
	}
	require.Zero(t, testing.AllocsPerRun(10, func() { EncodingFor("Meta/GPT-4O") }))
}

// TestEncodingForMatchesCatalog: the catalog's models, whose encodings are
// given or defaulted by the catalog, get the same encoding from
// EncodingFor, so a model counts the same known or passed through.
func TestEncodingForMatchesCatalog(t *testing.T) {
	c, err := catalog.Default()
	require.NoError(t, err)
	require.NotEmpty(t, c.Models())
	for _, m := range c.Models() {
		require.Equal(t, m.Encoding, EncodingFor(m.ID), "model %s", m.ID)
	}
}
