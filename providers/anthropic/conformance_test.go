package anthropic_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/anthropic"
	"github.com/llmgate/gateway/providers/providertest"
)

func TestConformance(t *testing.T) {
	providertest.RunConformance(t, providers.FormatAnthropic, func(t *testing.T, baseURL string) providers.Provider {
		p, err := anthropic.New(anthropic.Config{BaseURL: baseURL})
		require.NoError(t, err)
		t.Cleanup(p.CloseIdleConnections)
		return p
	})
}

func TestConformanceBearer(t *testing.T) {
	providertest.RunConformance(t, providers.FormatAnthropic, func(t *testing.T, baseURL string) providers.Provider {
		p, err := anthropic.New(anthropic.Config{Name: "claude-proxy", BaseURL: baseURL, AuthHeader: "Authorization"})
		require.NoError(t, err)
		t.Cleanup(p.CloseIdleConnections)
		return p
	})
}
