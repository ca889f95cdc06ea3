// Custom-provider puts llmgate in front of a self-hosted OpenAI-compatible
// model server (Ollama by default; vLLM, LM Studio and llama.cpp's server
// work the same way), configured as the custom provider "local".
//
//	ollama pull llama3.2 && ollama serve     # in another terminal
//	go run ./examples/custom-provider
//
//	curl -s localhost:8080/v1/chat/completions -H 'Content-Type: application/json' \
//	  -d '{"model":"local:llama3.2","messages":[{"role":"user","content":"Hello"}]}'
//
// Flags: -base-url (default http://localhost:11434/v1/), -model (default
// llama3.2), -listen (default localhost:8080). Set LOCAL_API_KEY if the
// server requires a key; Ollama needs none.
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
	"time"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/providers"
)

func main() {
	baseURL := flag.String("base-url", "http://localhost:11434/v1/", "API root of the OpenAI-compatible server")
	model := flag.String("model", "llama3.2", "model served by it")
	listen := flag.String("listen", "localhost:8080", "address to serve on")
	flag.Parse()
	if err := run(*baseURL, *model, *listen); err != nil {
		log.Fatal(err)
	}
}

func run(baseURL, model, listen string) error {
	local := gateway.ProviderConfig{
		ID:      "local",
		BaseURL: baseURL,
		Models:  []catalog.Model{{ID: model}},
	}
	if key := os.Getenv("LOCAL_API_KEY"); key != "" {
		local.Keys = []gateway.ProviderKey{{ID: "local", Value: providers.Secret(key)}}
	}
	gw, err := gateway.New(
		gateway.WithProvider(local),
		gateway.WithOnlyConfiguredProviders(true), // serve the local model only
	)
	if err != nil {
		return err
	}
	defer gw.Close()

	srv := &http.Server{Addr: listen, Handler: gw, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("listening on http://%s; model local:%s at %s", listen, model, baseURL)
	return srv.ListenAndServe()
}
