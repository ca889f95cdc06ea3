// Custom-provider shows the two ways to put something that is not a
// built-in provider behind llmgate:
//
//   - "local": a self-hosted OpenAI-compatible server (Ollama by default;
//     vLLM, LM Studio and llama.cpp's server work the same way), configured
//     by base URL and served by the built-in OpenAI transport, wrapped in a
//     hand-written providers.Provider that logs every upstream call;
//   - "echo": a providers.Provider written by hand that answers locally,
//     registered under a new ID with no base URL at all.
//
//	ollama pull llama3.2 && ollama serve     # in another terminal (for "local")
//	go run ./examples/custom-provider
//
//	curl -s localhost:8080/v1/chat/completions -H 'Content-Type: application/json' \
//	  -d '{"model":"echo:parrot","messages":[{"role":"user","content":"Hello"}]}'
//	curl -s localhost:8080/v1/chat/completions -H 'Content-Type: application/json' \
//	  -d '{"model":"local:llama3.2","models":["echo:parrot"],"messages":[{"role":"user","content":"Hello"}]}'
//
// The second request falls back to the echo provider when the local server
// is down. Flags: -base-url (default http://localhost:11434/v1/), -model
// (default llama3.2), -listen (default localhost:8080). Set LOCAL_API_KEY
// if the server requires a key; Ollama needs none.
package main

import (
	"flag"
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/openai"
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
	gw, err := newGateway(baseURL, model, os.Getenv("LOCAL_API_KEY"), slog.Default())
	if err != nil {
		return err
	}
	defer gw.Close()
	srv := &http.Server{Addr: listen, Handler: gw, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("listening on http://%s; models local:%s (at %s) and echo:parrot", listen, model, baseURL)
	return srv.ListenAndServe()
}

// newGateway builds the gateway with both custom providers.
func newGateway(baseURL, model, key string, logger *slog.Logger) (*gateway.Gateway, error) {
	transport, err := openai.New(openai.Config{Name: "local", BaseURL: baseURL})
	if err != nil {
		return nil, err
	}
	local := gateway.ProviderConfig{
		ID:       "local",
		Provider: logged{Provider: transport, logger: logger},
		Models:   []catalog.Model{{ID: model}},
	}
	if key != "" {
		local.Keys = []gateway.ProviderKey{{ID: "local", Value: providers.Secret(key)}}
	}
	return gateway.New(
		gateway.WithProvider(local),
		gateway.WithProvider(gateway.ProviderConfig{
			ID:       "echo",
			Provider: echo{},
			Models:   []catalog.Model{{ID: "parrot"}},
		}),
		gateway.WithOnlyConfiguredProviders(true), // serve these two only
		gateway.WithLogger(logger),
	)
}
