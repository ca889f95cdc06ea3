package openai_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/openai"
	"github.com/llmgate/gateway/providers/providertest"
)

func TestConformance(t *testing.T) {
	providertest.RunConformance(t, providers.FormatOpenAI, func(t *testing.T, baseURL string) providers.Provider {
		p, err := openai.New(openai.Config{Name: "openai", BaseURL: baseURL})
		require.NoError(t, err)
		t.Cleanup(p.CloseIdleConnections)
		return p
	})
}

func TestConformanceChatOnly(t *testing.T) {
	providertest.RunConformance(t, providers.FormatOpenAI, func(t *testing.T, baseURL string) providers.Provider {
		p, err := openai.New(openai.Config{
			Name:     "my-ollama",
			BaseURL:  baseURL,
			Surfaces: []providers.Surface{providers.SurfaceChatCompletions},
		})
		require.NoError(t, err)
		t.Cleanup(p.CloseIdleConnections)
		return p
	})
}
