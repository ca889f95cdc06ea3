// Command llmgate runs the llmgate AI gateway as a standalone HTTP server:
// one OpenAI- and Anthropic-compatible API (POST /v1/chat/completions,
// /v1/messages, /v1/responses, /v1/embeddings, GET /v1/models) in front of
// many model providers, with failover across models and keys.
//
// Usage:
//
//	llmgate -config llmgate.yaml    serve what a YAML file configures
//	llmgate                         serve the providers whose API keys are set
//	                                in the environment, or run in demo mode
//	llmgate -listen 0.0.0.0:9000    override the listen address
//	llmgate -version                print the version
//
// # Modes
//
// With -config, exactly the file is used. Without it, llmgate serves every
// provider whose key is set in the environment, and only those:
// OPENAI_API_KEY (openai), ANTHROPIC_API_KEY (anthropic), GEMINI_API_KEY or
// GOOGLE_API_KEY (google), GROQ_API_KEY (groq), DEEPSEEK_API_KEY
// (deepseek), OPENROUTER_API_KEY (openrouter), HYPERBOLIC_API_KEY
// (hyperbolic), INCEPTION_API_KEY (inceptionlabs) and INFERENCE_API_KEY
// (inference-net). With no key either, llmgate runs in demo mode: the
// providers openai and anthropic are pointed at a demo upstream started in
// the same process on a loopback port, which answers every request with a
// marked, canned text ("[llmgate demo upstream — no real model was called]
// You said: ..."), so the server can be tried offline with curl or the
// official SDKs; the banner printed at start shows how.
//
// GET /healthz answers 200 "ok". SIGINT and SIGTERM shut the server down
// gracefully: in-flight requests, streams included, get up to 30 seconds
// to finish. Request events are logged on stderr, one line per request.
//
// # Configuration
//
// The file is YAML with snake_case field names, after the ai-gateway
// configuration llmgate models. Unknown fields are errors. Every string
// value may contain ${env:NAME} references, expanded after the YAML is
// parsed (so a secret may hold any character); an unset or empty variable
// is an error. Every problem is reported at once, with the path and line of
// its field. Key values are never printed. llmgate.example.yaml next to
// this file is a complete example.
//
//	listen: "127.0.0.1:8080"        # host:port; -listen overrides it
//	per_request_timeout: 3m         # one upstream attempt (Go duration)
//	total_timeout: 6m               # all attempts of a request
//	stream_idle_timeout: 3m         # cut a stream silent this long; default per_request_timeout
//	only_allow_configured_providers: false
//	only_allow_configured_models: false
//	default_models: [openai:gpt-4o-mini]   # for "auto"; default: each provider's default model
//	max_request_bytes: 33554432     # default 32 MiB
//	fail_fast_statuses: [400, 422]  # statuses that end a request instead of failing over
//	log: {level: info, format: text}   # debug|info|warn|error; text|json
//	providers:
//	  - id: openai                  # a catalog provider (changes it) or a new ID (custom provider)
//	    aliases: [oai]              # other names clients may use
//	    base_url: https://api.openai.com/v1/   # required for custom providers
//	    format: openai              # openai|anthropic; custom providers, default openai
//	    surfaces: [chat-completions, responses, embeddings]   # or messages; default: all of the format
//	    api_keys:                   # tried in order; none: clients' own keys pass through
//	      - value: ${env:OPENAI_API_KEY}
//	        id: primary             # non-secret name in logs; default key-1, key-2, ...
//	    headers: {X-Custom: v}      # sent upstream on every request
//	    query_params: {api-version: "2024-10-21"}
//	    auth_header: api-key        # send the raw key in this header instead of the default
//	    default_model: gpt-4o-mini
//	    stream_usage: true          # accepts stream_options.include_usage
//	    disabled: false
//	    models:                     # override catalog models or add new ones
//	      - id: gpt-4o
//	        aliases: [four-o]
//	        author: openai
//	        display_name: GPT-4o
//	        context_window: 128000
//	        max_output_tokens: 16384
//	        input_modalities: [text, image]   # text|image|audio|video|file|embedding
//	        output_modalities: [text]
//	        features: [tool-calling]
//	        metadata: {tier: premium}
//	        pricing: {input: 2500000, output: 10000000, cache_read: 1250000, cache_write: 0}
//	        # integer micro-USD per million tokens: 2500000 is $2.50 per 1M
package main
