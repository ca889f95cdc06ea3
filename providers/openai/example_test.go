package openai_test

import (
	"fmt"
	"net/url"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/openai"
)

// An Azure OpenAI deployment: the base URL is the deployment, the API
// version is a query parameter and the key goes in the api-key header.
func ExampleNew_azure() {
	p, err := openai.New(openai.Config{
		Name:       "azure-eu",
		BaseURL:    "https://my-resource.openai.azure.com/openai/deployments/gpt-4o",
		Query:      url.Values{"api-version": {"2024-10-21"}},
		AuthHeader: "api-key",
		Surfaces:   []providers.Surface{providers.SurfaceChatCompletions},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Name(), p.Surfaces())
	fmt.Println(p.URL(providers.SurfaceChatCompletions))
	// Output:
	// azure-eu [chat-completions]
	// https://my-resource.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21
}

// New reports every configuration problem at once.
func ExampleNew_validation() {
	_, err := openai.New(openai.Config{BaseURL: "ftp://example.com", AuthHeader: "api key"})
	fmt.Println(err)
	// Output:
	// openai: name is required
	// openai: base URL "ftp://example.com": scheme must be http or https
	// openai: auth header "api key" is not a valid header name
}
