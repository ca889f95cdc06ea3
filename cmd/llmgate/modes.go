package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/llmgate/gateway/config"
	"github.com/llmgate/gateway/internal/demo"
	"github.com/llmgate/gateway/providers"
)

// envKey maps environment variables holding an API key to a catalog
// provider; the first variable that is set wins.
type envKey struct {
	provider string
	vars     []string
}

// envKeys lists the provider keys read from the environment when no
// configuration file is given.
func envKeys() []envKey {
	return []envKey{
		{"openai", []string{"OPENAI_API_KEY"}},
		{"anthropic", []string{"ANTHROPIC_API_KEY"}},
		{"google", []string{"GEMINI_API_KEY", "GOOGLE_API_KEY"}},
		{"groq", []string{"GROQ_API_KEY"}},
		{"deepseek", []string{"DEEPSEEK_API_KEY"}},
		{"openrouter", []string{"OPENROUTER_API_KEY"}},
		{"hyperbolic", []string{"HYPERBOLIC_API_KEY"}},
		{"inceptionlabs", []string{"INCEPTION_API_KEY"}},
		{"inference-net", []string{"INFERENCE_API_KEY"}},
	}
}

func envKeyNames() string {
	var names []string
	for _, k := range envKeys() {
		names = append(names, k.vars...)
	}
	return strings.Join(names, ", ")
}

// envProvider is a provider found in the environment.
type envProvider struct {
	ID, Var string
	Key     providers.Secret
}

// envProviders returns the providers whose API key is set in env, in
// catalog order.
func envProviders(env func(string) string) []envProvider {
	var out []envProvider
	for _, k := range envKeys() {
		for _, v := range k.vars {
			if val := strings.TrimSpace(env(v)); val != "" {
				out = append(out, envProvider{ID: k.provider, Var: v, Key: providers.Secret(val)})
				break
			}
		}
	}
	return out
}

// envFile returns the configuration of environment mode: each provider
// with its key (named after its variable). As in a file that lists
// providers, only those are served.
func envFile(found []envProvider) *config.File {
	f := &config.File{}
	for _, p := range found {
		f.Providers = append(f.Providers, config.Provider{ID: p.ID, APIKeys: []config.APIKey{{ID: p.Var, Value: p.Key}}})
	}
	return f
}

func setupEnv(found []envProvider, stderr io.Writer) *server {
	s := newServer(modeEnv, envFile(found), stderr)
	ids, vars := make([]string, len(found)), make([]string, len(found))
	for i, p := range found {
		ids[i], vars[i] = p.ID, p.Var
	}
	s.logger.Info("serving the providers whose API keys are set in the environment",
		"providers", strings.Join(ids, ","), "from", strings.Join(vars, ","))
	return s
}

// Demo mode.
//
// Design: the demo upstream (internal/demo) runs as a real HTTP server on
// an ephemeral loopback port (127.0.0.1:0) inside this process, and the
// catalog providers openai and anthropic are pointed at it by base URL.
// Requests thus take exactly the path they take to a real provider (the
// gateway's HTTP client, connection pool, SSE reader and failover), which
// is what a demo should show; an in-process RoundTripper would be one port
// fewer but would skip that path. The upstream is shut down after the
// gateway on exit.

// demoKey is the upstream credential of demo mode; the demo upstream
// ignores it, and clients need none.
const demoKey = providers.Secret("llmgate-demo")

// demoFile returns the configuration of demo mode for a demo upstream at
// base ("http://127.0.0.1:port").
func demoFile(base string) *config.File {
	keys := []config.APIKey{{ID: "demo", Value: demoKey}}
	return &config.File{Providers: []config.Provider{
		{ID: "openai", BaseURL: base + "/openai/v1/", APIKeys: keys},
		{ID: "anthropic", BaseURL: base + "/anthropic/v1/", APIKeys: keys},
	}}
}

func setupDemo(stderr io.Writer) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo upstream: %w", err)
	}
	base := "http://" + ln.Addr().String()
	s := newServer(modeDemo, demoFile(base), stderr)
	up := &http.Server{
		Handler:           demo.New(demo.Options{}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = up.Serve(ln)
	}()
	s.closes = append(s.closes, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if up.Shutdown(ctx) != nil {
			_ = up.Close()
		}
		<-done
	})
	s.logger.Warn("DEMO MODE: no provider key and no -config; answers come from the built-in demo upstream, no real model is called",
		"demo_upstream", base)
	return s, nil
}

// demoBanner is printed on stdout in demo mode; base is the server's own
// URL ("http://127.0.0.1:8080"). Every command in it works offline.
func demoBanner(base string) string {
	rule := strings.Repeat("=", 78)
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("%s", rule)
	p("  llmgate is running in DEMO MODE on %s", base)
	p("%s", rule)
	p("  No provider key was found and no -config was given, so the providers")
	p("  openai and anthropic are served by a built-in demo upstream.")
	p("  NO REAL MODEL IS CALLED: every answer starts with")
	p("    %s", demo.Marker)
	p("  and echoes your last message. Real model names work, offline.")
	p("")
	p("  Try it:")
	p("")
	p("  # OpenAI chat completions")
	p("  curl -s %s/v1/chat/completions -H 'Content-Type: application/json' -d '{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}'", base)
	p("")
	p("  # The same, streamed word by word")
	p("  curl -sN %s/v1/chat/completions -H 'Content-Type: application/json' -d '{\"model\":\"gpt-4o-mini\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}'", base)
	p("")
	p("  # Anthropic Messages")
	p("  curl -s %s/v1/messages -H 'Content-Type: application/json' -d '{\"model\":\"claude-haiku-4-5\",\"max_tokens\":256,\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}'", base)
	p("")
	p("  # The models you may use")
	p("  curl -s %s/v1/models", base)
	p("")
	p("  # Python (pip install openai)")
	p("  python3 -c 'from openai import OpenAI; c = OpenAI(base_url=\"%s/v1\", api_key=\"demo\"); print(c.chat.completions.create(model=\"gpt-4o-mini\", messages=[{\"role\": \"user\", \"content\": \"Hello\"}]).choices[0].message.content)'", base)
	p("")
	p("  # Node.js (npm install openai)")
	p("  node -e 'const OpenAI = require(\"openai\"); new OpenAI({baseURL: \"%s/v1\", apiKey: \"demo\"}).chat.completions.create({model: \"gpt-4o-mini\", messages: [{role: \"user\", content: \"Hello\"}]}).then(r => console.log(r.choices[0].message.content))'", base)
	p("")
	p("  To call real models, stop llmgate and either")
	p("    - export a provider key and run llmgate again:")
	p("        export OPENAI_API_KEY=...    (or %s)", strings.Join(otherEnvVars(), ", "))
	p("    - or run llmgate -config llmgate.yaml (providers, keys, models, timeouts;")
	p("      reference: go doc github.com/llmgate/gateway/config).")
	p("%s", rule)
	return b.String()
}

func otherEnvVars() []string {
	var out []string
	for _, k := range envKeys()[1:] {
		out = append(out, k.vars[0])
	}
	return out
}
