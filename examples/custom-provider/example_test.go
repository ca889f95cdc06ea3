package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	gateway "github.com/llmgate/gateway"
)

// The hand-written echo provider answers an OpenAI-format client, and an
// Anthropic-format one through translation; a request for the local
// server, which is not running here, falls back to it.
func Example() {
	gw, err := newGateway("http://127.0.0.1:1/v1/", "llama3.2", "", slog.New(slog.DiscardHandler))
	if err != nil {
		panic(err)
	}
	defer gw.Close()
	post := func(path, body string) {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		gw.ServeHTTP(rec, req)
		b, _ := io.ReadAll(rec.Body)
		fmt.Println(rec.Code, rec.Header().Get(gateway.HeaderModel), rec.Header().Get(gateway.HeaderAttempts))
		fmt.Println(strings.Contains(string(b), "You said: Hello"))
	}
	post("/v1/chat/completions", `{"model":"echo:parrot","messages":[{"role":"user","content":"Hello"}]}`)
	post("/v1/messages", `{"model":"parrot","max_tokens":64,"messages":[{"role":"user","content":"Hello"}]}`)
	post("/v1/chat/completions", `{"model":"local:llama3.2","models":["echo:parrot"],"messages":[{"role":"user","content":"Hello"}]}`)
	// Output:
	// 200 echo:parrot 1
	// true
	// 200 echo:parrot 1
	// true
	// 200 echo:parrot 2
	// true
}
