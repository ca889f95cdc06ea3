package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

// Mount the gateway under /ai/ of an application's own mux.
func Example_mount() {
	upstream := providertest.NewServer(providers.FormatOpenAI) // stands in for api.openai.com
	defer upstream.Close()

	gw, err := gateway.New(gateway.WithProvider(gateway.ProviderConfig{
		ID:      "openai",
		BaseURL: upstream.URL,
		Keys:    []gateway.ProviderKey{{Value: "sk-your-key"}},
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer gw.Close()

	mux := http.NewServeMux()
	mux.Handle("/ai/", http.StripPrefix("/ai", gw))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/ai/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}`))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	fmt.Println(resp.StatusCode, resp.Header.Get(gateway.HeaderModel), resp.Header.Get(gateway.HeaderAttempts))
	// Output: 200 openai:gpt-4o-mini 1
}

// Fail over from one model to another: the client names a "models" list,
// and the first model's provider fails.
func Example_failover() {
	upstream := providertest.NewServer(providers.FormatOpenAI)
	defer upstream.Close()
	upstream.Enqueue(providertest.Error(providers.FormatOpenAI, 503, "overloaded"))

	var attempts []gateway.Attempt
	gw, err := gateway.New(
		gateway.WithProvider(gateway.ProviderConfig{ID: "openai", BaseURL: upstream.URL, Keys: []gateway.ProviderKey{{Value: "sk-a"}}}),
		gateway.WithEventSink(gateway.EventSinkFunc(func(_ context.Context, e *gateway.Event) { attempts = e.Attempts })),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer gw.Close()

	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o","models":["gpt-4o-mini"],"messages":[{"role":"user","content":"Hi"}]}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	gw.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Header().Get(gateway.HeaderModel))
	for _, a := range attempts {
		fmt.Println(a.Provider, a.Model, a.KeyID, a.Status, a.Error)
	}
	// Output:
	// 200 openai:gpt-4o-mini
	// openai gpt-4o key-1 503 http_status
	// openai gpt-4o-mini key-1 200
}

// A custom provider: a self-hosted OpenAI-compatible server such as Ollama
// or vLLM, with its own models.
func Example_customProvider() {
	local := providertest.NewServer(providers.FormatOpenAI) // stands in for http://localhost:11434/v1/
	defer local.Close()

	gw, err := gateway.New(
		gateway.WithProvider(gateway.ProviderConfig{
			ID:      "my-ollama",
			BaseURL: local.URL,
			Models:  []catalog.Model{{ID: "llama3.2:latest", Aliases: []string{"llama3.2"}, ContextWindow: 128000}},
		}),
		gateway.WithOnlyConfiguredProviders(true),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer gw.Close()

	post := func(body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		gw.ServeHTTP(rec, req)
		return rec
	}
	rec := post(`{"model":"llama3.2","messages":[{"role":"user","content":"Hi"}]}`)
	fmt.Println(rec.Code, rec.Header().Get(gateway.HeaderModel))
	rec = post(`{"model":"gpt-4o","messages":[]}`)
	fmt.Println(rec.Code, gateway.KindProviderNotAllowed.Code())
	// Output:
	// 200 my-ollama:llama3.2:latest
	// 403 provider_not_allowed
}

// Options are validated together: New reports every problem at once.
func ExampleNew_validation() {
	_, err := gateway.New(
		gateway.WithTimeouts(10*60e9, 60e9), // per attempt longer than total
		gateway.WithProvider(gateway.ProviderConfig{ID: "custom-without-url"}),
	)
	fmt.Println(err != nil)
	// Output: true
}

// Route with CEL: long prompts to a long-context model, everything else to
// the cheapest model of the configured providers, and see the plan a
// request would follow with Explain, without calling a provider.
func ExampleWithModelSelection() {
	gw, err := gateway.New(
		gateway.WithProvider(gateway.ProviderConfig{ID: "openai", Keys: []gateway.ProviderKey{{Value: "sk-a"}}}),
		gateway.WithOnlyConfiguredProviders(true),
		gateway.WithModelSelection(
			"request.input_tokens > 50000 ? [ai.models.get('openai', 'gpt-4.1')] : []",
			"ai.models.filter(m, m.pricing.input > 0.0 && m.id.startsWith('gpt-4')).sortBy(m, m.pricing.input)",
		),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer gw.Close()

	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions",
		strings.NewReader(`{"model":"auto","messages":[{"role":"user","content":"Hello"}]}`))
	r.Header.Set("Content-Type", "application/json")
	plan, err := gw.Explain(context.Background(), r)
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range plan.Selection {
		fmt.Printf("strategy %d: %d returned\n", s.Index, s.Returned)
	}
	fmt.Println("first:", plan.Candidates[0].Provider+":"+plan.Candidates[0].Model)
	// Output:
	// strategy 0: 0 returned
	// strategy 1: 7 returned
	// first: openai:gpt-4.1-nano
}

// Share traffic between three keys in turn.
func ExampleWithKeySelection() {
	upstream := providertest.NewServer(providers.FormatOpenAI)
	defer upstream.Close()
	gw, err := gateway.New(
		gateway.WithProvider(gateway.ProviderConfig{ID: "openai", BaseURL: upstream.URL,
			Keys: []gateway.ProviderKey{{ID: "a", Value: "sk-a"}, {ID: "b", Value: "sk-b"}, {ID: "c", Value: "sk-c"}}}),
		gateway.WithKeySelection("round_robin"),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer gw.Close()
	srv := httptest.NewServer(gw)
	defer srv.Close()
	for range 4 {
		resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json",
			strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}`))
		if err != nil {
			log.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for _, rec := range upstream.Requests() {
		fmt.Print(rec.Header.Get("Authorization"), " ")
	}
	fmt.Println()
	// Output: Bearer sk-a Bearer sk-b Bearer sk-c Bearer sk-a
}

// Force a temperature, remove a parameter and cap the answer for one model
// of a provider: the upstream receives the changed body.
func ExampleRequestPolicy() {
	upstream := providertest.NewServer(providers.FormatOpenAI)
	defer upstream.Close()

	gw, err := gateway.New(gateway.WithProvider(gateway.ProviderConfig{
		ID:      "openai",
		BaseURL: upstream.URL,
		Keys:    []gateway.ProviderKey{{Value: "sk-your-key"}},
		Policy:  gateway.RequestPolicy{Headers: map[string]string{"X-Team": "platform"}},
		ModelPolicies: map[string]gateway.RequestPolicy{"gpt-4o": {
			Set:             map[string]json.RawMessage{"temperature": json.RawMessage("0")},
			Deny:            []string{"logit_bias"},
			MaxOutputTokens: 1024,
		}},
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer gw.Close()

	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(
		`{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"temperature":1.2,"logit_bias":{"50256":-100},"max_tokens":4000}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	gw.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Header().Get(gateway.HeaderRemovedParams), "|", rec.Header().Get(gateway.HeaderMaxOutputTokens))
	sent := upstream.Requests()[0]
	fmt.Println(sent.Header.Get("X-Team"), string(sent.Body))
	// Output:
	// 200 logit_bias | 1024; reason=policy
	// platform {"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"temperature":0,"max_tokens":1024}
}
