package catalog_test

import (
	"errors"
	"fmt"

	"github.com/llmgate/gateway/catalog"
)

func ExampleDefault() {
	cat, err := catalog.Default()
	if err != nil {
		panic(err)
	}
	for _, p := range cat.Providers() {
		fmt.Printf("%-14s %-9s %s\n", p.ID, p.Format, p.BaseURL)
	}
	gpt4o, _ := cat.Provider("openai")
	m, _ := gpt4o.Model("gpt-4o")
	fmt.Printf("%s: %d tokens, $%.2f per 1M input tokens\n", m.ID, m.ContextWindow, float64(m.Pricing.Input)/1e6)
	// Output:
	// openai         openai    https://api.openai.com/v1/
	// anthropic      anthropic https://api.anthropic.com/v1/
	// google         openai    https://generativelanguage.googleapis.com/v1beta/openai/
	// groq           openai    https://api.groq.com/openai/v1/
	// deepseek       openai    https://api.deepseek.com/v1/
	// openrouter     openai    https://openrouter.ai/api/v1/
	// hyperbolic     openai    https://api.hyperbolic.xyz/v1/
	// inceptionlabs  openai    https://api.inceptionlabs.ai/v1/
	// inference-net  openai    https://api.inference.net/v1/
	// gpt-4o: 128000 tokens, $2.50 per 1M input tokens
}

func ExampleCatalog_Resolve() {
	cat, err := catalog.Default()
	if err != nil {
		panic(err)
	}
	for _, name := range []string{
		"gpt-4o-2024-08-06",                      // alias of a catalog model
		"OpenAI:openai/gpt-4o",                   // pinned provider, author form
		"meta-llama/llama-3.3-70b-versatile",     // author form of a Groq model
		"openrouter:anthropic/claude-sonnet-4.5", // unknown model, passed through
		"my-ollama:llama3.2",                     // unknown provider
		"gpt-9",                                  // unknown model
	} {
		matches, err := cat.Resolve(name)
		switch {
		case errors.Is(err, catalog.ErrUnknownProvider):
			fmt.Printf("%-40s unknown provider\n", name)
		case errors.Is(err, catalog.ErrUnknownModel):
			fmt.Printf("%-40s unknown model\n", name)
		case err != nil:
			fmt.Printf("%-40s %v\n", name, err)
		default:
			for _, m := range matches {
				fmt.Printf("%-40s %s → %s (known: %t)\n", name, m.Provider.ID, m.UpstreamID, m.Known())
			}
		}
	}
	// Output:
	// gpt-4o-2024-08-06                        openai → gpt-4o-2024-08-06 (known: true)
	// OpenAI:openai/gpt-4o                     openai → gpt-4o (known: true)
	// meta-llama/llama-3.3-70b-versatile       groq → llama-3.3-70b-versatile (known: true)
	// openrouter:anthropic/claude-sonnet-4.5   openrouter → anthropic/claude-sonnet-4.5 (known: false)
	// my-ollama:llama3.2                       unknown provider
	// gpt-9                                    unknown model
}

func ExampleCatalog_Extend() {
	base, err := catalog.Default()
	if err != nil {
		panic(err)
	}
	cat, err := base.Extend(
		// A custom OpenAI-compatible provider: a local Ollama server.
		catalog.ProviderSpec{
			ID:      "my-ollama",
			BaseURL: "http://localhost:11434/v1",
			Models:  []catalog.Model{{ID: "llama3.2:latest", Aliases: []string{"llama3.2"}, ContextWindow: 131072}},
		},
		// Send OpenAI traffic through a proxy, and drop Google entirely.
		catalog.ProviderSpec{ID: "openai", BaseURL: "https://llm-proxy.internal.example/v1/"},
		catalog.ProviderSpec{ID: "google", Disabled: true},
	)
	if err != nil {
		panic(err)
	}
	m, _ := cat.Resolve("my-ollama:llama3.2")
	fmt.Println(m[0].Provider.BaseURL, m[0].UpstreamID, m[0].Model.Custom)
	p, _ := cat.Provider("openai")
	fmt.Println(p.BaseURL)
	_, ok := cat.Provider("google")
	fmt.Println(ok)
	p, _ = base.Provider("openai") // the receiver is unchanged
	fmt.Println(p.BaseURL)
	// Output:
	// http://localhost:11434/v1/ llama3.2:latest true
	// https://llm-proxy.internal.example/v1/
	// false
	// https://api.openai.com/v1/
}

func ExampleCatalog_Suggest() {
	cat, err := catalog.Default()
	if err != nil {
		panic(err)
	}
	for _, name := range []string{"gpt-4o-mnii", "OpenAI:gpt4o", "claude-sonet-4-5", "completely-different-thing"} {
		s, ok := cat.Suggest(name)
		fmt.Printf("%-28s %q %t\n", name, s, ok)
	}
	// Output:
	// gpt-4o-mnii                  "gpt-4o-mini" true
	// OpenAI:gpt4o                 "OpenAI:gpt-4o" true
	// claude-sonet-4-5             "claude-sonnet-4-5" true
	// completely-different-thing   "" false
}

func ExampleCatalog_MayOwnKey() {
	cat, err := catalog.Default()
	if err != nil {
		panic(err)
	}
	for _, key := range []string{"sk-ant-api03-…", "sk-proj-…", "gsk_…", "xyz"} {
		var owners []string
		for _, p := range cat.Providers() {
			if cat.MayOwnKey(p, key) {
				owners = append(owners, p.ID)
			}
		}
		fmt.Println(key, owners)
	}
	// Output:
	// sk-ant-api03-… [anthropic]
	// sk-proj-… [openai deepseek]
	// gsk_… [groq]
	// xyz []
}
