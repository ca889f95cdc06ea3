// Quickstart embeds llmgate in an ordinary net/http server: the gateway
// serves the OpenAI- and Anthropic-compatible API under /ai/, next to the
// application's own routes.
//
// Run it with the provider keys you have (OPENAI_API_KEY and/or
// ANTHROPIC_API_KEY). With neither, llmgate passes each client's own key
// through to the provider it calls.
//
//	OPENAI_API_KEY=sk-... go run ./examples/quickstart
//
// Call it with curl:
//
//	curl -s localhost:8080/ai/v1/chat/completions -H 'Content-Type: application/json' \
//	  -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'
//
// or with an SDK: OpenAI SDKs take the base URL http://localhost:8080/ai/v1,
// Anthropic SDKs http://localhost:8080/ai. Without a real key, try the
// standalone server's demo mode instead: go run ./cmd/llmgate.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/providers"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	var opts []gateway.Option
	// A slice, not a map: the configuration order is the default order of
	// "auto", and it must not change between runs.
	for _, p := range []struct{ id, env string }{{"openai", "OPENAI_API_KEY"}, {"anthropic", "ANTHROPIC_API_KEY"}} {
		id, env := p.id, p.env
		if key := os.Getenv(env); key != "" {
			opts = append(opts, gateway.WithProvider(gateway.ProviderConfig{
				ID:   id,
				Keys: []gateway.ProviderKey{{ID: env, Value: providers.Secret(key)}},
			}))
		}
	}
	gw, err := gateway.New(opts...)
	if err != nil {
		return err
	}
	defer gw.Close()

	mux := http.NewServeMux()
	mux.Handle("/ai/", http.StripPrefix("/ai", gw))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "Hello from the app. The AI gateway is at /ai/v1/.")
	})

	srv := &http.Server{Addr: "localhost:8080", Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("listening on http://%s; AI gateway under /ai/", srv.Addr)
	return srv.ListenAndServe()
}
