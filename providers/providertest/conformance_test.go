package providertest_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/anthropic"
	"github.com/llmgate/gateway/providers/openai"
	"github.com/llmgate/gateway/providers/providertest"
)

// The suite is also run here, against the built-in providers, so that a
// change to it is checked in its own package.
func TestRunConformance(t *testing.T) {
	tests := []struct {
		format providers.Format
		build  func(t *testing.T, baseURL string) providers.Provider
	}{
		{providers.FormatOpenAI, func(t *testing.T, baseURL string) providers.Provider {
			p, err := openai.New(openai.Config{Name: "openai", BaseURL: baseURL})
			require.NoError(t, err)
			t.Cleanup(p.CloseIdleConnections)
			return p
		}},
		{providers.FormatAnthropic, func(t *testing.T, baseURL string) providers.Provider {
			p, err := anthropic.New(anthropic.Config{BaseURL: baseURL})
			require.NoError(t, err)
			t.Cleanup(p.CloseIdleConnections)
			return p
		}},
	}
	for _, tt := range tests {
		t.Run(string(tt.format), func(t *testing.T) {
			providertest.RunConformance(t, tt.format, tt.build)
		})
	}
}
