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
// With -config, exactly the file is used; its reference is the
// documentation of package github.com/llmgate/gateway/config, and
// llmgate.example.yaml next to this file is a complete example. Without
// it, llmgate serves every provider whose key is set in the environment:
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
// In every mode only the configured providers are reachable (a file may
// set only_allow_configured_providers: false). The start log line names
// them and the pass-through mode.
//
// # Server
//
// GET /healthz answers 200 "ok"; every other request, whatever its path,
// goes to the gateway, so that unknown and unclean paths ("//v1/...",
// "/v1/x/../...") get a JSON 404 in the client's dialect with the
// gateway's headers rather than a redirect. On a loopback address the
// server serves only requests for the Host names localhost, 127.0.0.1,
// ::1 and its listen host (others get 403 host_not_allowed), so that web
// pages cannot reach it through DNS rebinding; allowed_hosts replaces that
// list, and ["*"] lifts it.
//
// With -explain, POST /v1/explain answers with the plan a request would
// follow, without calling a provider: the body is the request's body, the
// query parameter path its API path (default /v1/chat/completions, e.g.
// /v1/explain?path=/v1/messages), and the answer {"plan": ...} with the
// model selection trace, the candidates in failover order and the keys
// each would try, plus "error" and the error's status when the request
// would fail before any upstream call. The plan names models and key IDs,
// never a key; it is off by default until an admin listener exists.
//
// The HTTP server allows 10 seconds for a request's headers (at most 64
// KiB), 1 minute for a request to arrive (the gateway bounds the body with
// body_read_timeout; a response may stream for as long as it needs), and 2
// minutes of idleness between requests on a connection. At most
// max_connections (default 4096) connections are served at once; more
// wait in the kernel's accept queue until one closes.
//
// # Signals
//
// SIGHUP reloads the configuration file: it is read and checked again,
// and applied to the running gateway (providers, keys, models, timeouts,
// log.level, everything but listen, max_connections and log.format, which
// apply at start). The log says what changed (providers added, removed and
// changed, the number of keys of each provider, the default models, the
// other settings changed) and what is now reachable; key values are never
// logged. A file with problems is refused, with every problem and its line
// in the log, and the configuration in force stays. Requests in flight are
// not disturbed either way. In environment and demo modes there is no file
// to reload, which SIGHUP logs.
//
// SIGINT and SIGTERM shut the server down gracefully: in-flight requests,
// streams included, get up to 30 seconds to finish. Request events are
// logged on stderr, one line per request.
package main
