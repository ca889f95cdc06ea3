package catalog_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/catalog"
)

func TestDefaultKeyPrefixes(t *testing.T) {
	c := defaultCatalog(t)
	want := map[string][]string{
		"openai":     {"sk-"},
		"anthropic":  {"sk-ant-"},
		"google":     {"AIza"},
		"groq":       {"gsk_"},
		"deepseek":   {"sk-"},
		"openrouter": {"sk-or-"},
		// No documented key format (see key_prefixes_note in catalog.json).
		"hyperbolic":    nil,
		"inceptionlabs": nil,
		"inference-net": nil,
	}
	require.Len(t, c.Providers(), len(want))
	for _, p := range c.Providers() {
		require.Equal(t, want[p.ID], p.KeyPrefixes, p.ID)
	}
}

func TestMayOwnKey(t *testing.T) {
	c := defaultCatalog(t)
	all := []string{"openai", "anthropic", "google", "groq", "deepseek", "openrouter", "hyperbolic", "inceptionlabs", "inference-net"}
	tests := []struct {
		credential string
		owners     []string
	}{
		{"sk-ant-api03-x", []string{"anthropic"}},
		{"sk-ant-", []string{"anthropic"}},
		{"sk-or-v1-x", []string{"openrouter"}},
		{"sk-proj-x", []string{"openai", "deepseek"}},
		{"sk-svcacct-x", []string{"openai", "deepseek"}},
		{"sk-admin-x", []string{"openai", "deepseek"}},
		{"sk-x", []string{"openai", "deepseek"}},
		{"sk-an", []string{"openai", "deepseek"}},
		{"gsk_x", []string{"groq"}},
		{"AIzaSyX", []string{"google"}},
		{"aizasyx", nil}, // prefixes are case-sensitive
		{"SK-x", nil},
		{"sk_x", nil},
		{"xyz", nil},
		{"", nil},
	}
	for _, tt := range tests {
		t.Run(tt.credential, func(t *testing.T) {
			for _, id := range all {
				p, ok := c.Provider(id)
				require.True(t, ok)
				want := false
				for _, o := range tt.owners {
					want = want || o == id
				}
				require.Equal(t, want, c.MayOwnKey(p, tt.credential), "provider %s", id)
			}
		})
	}
	t.Run("nil", func(t *testing.T) {
		var nilCat *catalog.Catalog
		p, _ := c.Provider("openai")
		require.False(t, nilCat.MayOwnKey(p, "sk-x"))
		require.False(t, c.MayOwnKey(nil, "sk-x"))
	})
}

// TestMayOwnKeyExtend: operators declare prefixes for custom providers, and
// replace those of catalog providers; a longer prefix of another provider
// takes credentials away from a shorter one.
func TestMayOwnKeyExtend(t *testing.T) {
	base := defaultCatalog(t)
	c, err := base.Extend(
		catalog.ProviderSpec{ID: "lab", BaseURL: "https://lab.test", KeyPrefixes: []string{"sk-lab-", "lab_"}},
		catalog.ProviderSpec{ID: "deepseek", KeyPrefixes: []string{"sk-ds-"}},
	)
	require.NoError(t, err)
	tests := []struct {
		provider, credential string
		want                 bool
	}{
		{"lab", "sk-lab-1", true},
		{"lab", "lab_1", true},
		{"openai", "sk-lab-1", false}, // lab's prefix is longer than openai's
		{"lab", "sk-1", false},
		{"deepseek", "sk-proj-1", false}, // deepseek's prefixes were replaced
		{"deepseek", "sk-ds-1", true},
		{"openai", "sk-ds-1", false},
		{"openai", "sk-proj-1", true},
	}
	for _, tt := range tests {
		p, ok := c.Provider(tt.provider)
		require.True(t, ok)
		require.Equal(t, tt.want, c.MayOwnKey(p, tt.credential), "%s %s", tt.provider, tt.credential)
	}
	// The receiver is unchanged.
	p, _ := base.Provider("deepseek")
	require.Equal(t, []string{"sk-"}, p.KeyPrefixes)
	require.True(t, base.MayOwnKey(p, "sk-proj-1"))
}

func BenchmarkMayOwnKey(b *testing.B) {
	c := defaultCatalog(b)
	openai, _ := c.Provider("openai")
	anthropic, _ := c.Provider("anthropic")
	b.ReportAllocs()
	for b.Loop() {
		c.MayOwnKey(openai, "sk-proj-abcdefghijklmnopqrstuvwxyz")
		c.MayOwnKey(anthropic, "sk-proj-abcdefghijklmnopqrstuvwxyz")
	}
}
