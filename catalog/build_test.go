package catalog_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/anthropic"
	"github.com/llmgate/gateway/providers/openai"
)

// TestBaseURLRuleMatchesProviders: the catalog accepts exactly the base URLs
// the provider implementations accept, with the same error text, so a
// configuration that builds a catalog never fails later when the gateway
// creates its providers.
func TestBaseURLRuleMatchesProviders(t *testing.T) {
	base := defaultCatalog(t)
	for _, raw := range []string{
		"https://api.openai.com/v1/",
		"http://localhost:11434/v1",
		"https://res.openai.azure.com/openai/deployments/gpt-4o?api-version=2024-10-21",
		"https://lab.test/a%2Fb/v1",
		"ftp://lab.test/v1",
		"lab.test/v1",
		"https:///v1",
		"mailto:someone@example.com",
		"https://user:hunter2@lab.test/v1",
		"https://lab.test/v1#frag",
		"https://lab.test/v1#",
		"https://la b.test/",
		"custom://echo",
	} {
		t.Run(raw, func(t *testing.T) {
			c, catErr := base.Extend(catalog.ProviderSpec{ID: "lab", BaseURL: raw})
			_, oaErr := openai.New(openai.Config{Name: "lab", BaseURL: raw})
			_, anErr := anthropic.New(anthropic.Config{BaseURL: raw})
			if oaErr == nil {
				require.NoError(t, catErr)
				require.NoError(t, anErr)
				// The normalised catalog URL reaches the same endpoint.
				p, ok := c.Provider("lab")
				require.True(t, ok)
				fromCat, err := openai.New(openai.Config{Name: "lab", BaseURL: p.BaseURL})
				require.NoError(t, err)
				want, _ := openai.New(openai.Config{Name: "lab", BaseURL: raw})
				require.Equal(t, want.URL(providers.SurfaceChatCompletions), fromCat.URL(providers.SurfaceChatCompletions))
				return
			}
			require.Error(t, catErr)
			require.Error(t, anErr)
			want := strings.TrimPrefix(oaErr.Error(), "openai: ")
			require.Equal(t, want, strings.TrimPrefix(anErr.Error(), "anthropic: "))
			require.Equal(t, `catalog: provider "lab": `+want, catErr.Error())
			require.NotContains(t, catErr.Error(), "hunter2")
		})
	}
}
