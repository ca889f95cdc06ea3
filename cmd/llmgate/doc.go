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
//	llmgate -metrics-listen 127.0.0.1:9464
//	                                serve GET /metrics, /healthz and /readyz on
//	                                a listener of their own
//	llmgate -version                print the version
//	llmgate keys create -config llmgate.yaml [-description D] [-account A]
//	        [-expires 720h] [-allow-providers a,b] [-allow-models x,y]
//	                                create a gateway API key; its token is the
//	                                last line of stdout
//	llmgate keys list -config llmgate.yaml [-limit N]
//	                                list the keys (never their tokens)
//	llmgate keys revoke -config llmgate.yaml ID
//	                                delete a key
//	llmgate credits buy -config llmgate.yaml -account A -amount 10.00 [-id ID] [-note N]
//	                                buy credits for an account; prints the lot
//	llmgate credits balance -config llmgate.yaml [-account A]
//	                                one account's balance, or every account's
//	llmgate credits transactions -config llmgate.yaml -account A [-limit N]
//	                                an account's purchases, spends and expiries
//	llmgate usage -config llmgate.yaml [-account A] [-key K] [-from T] [-to T]
//	        [-group-by day,provider,model,key,account]
//	                                usage totals (requests, tokens, cost, fee)
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
// # Gateway API keys
//
// A file with store: (sqlite:PATH, or a postgres:// URL for several
// replicas) requires a gateway API key on every request, sent as
// Authorization: Bearer lg-… or x-api-key, and created for the file's
// endpoint (endpoint:, default "default"); gateway_keys: optional lets
// requests without one through. Requests without a valid key get 401
// invalid_api_key; a key of another endpoint gets 403
// key_endpoint_mismatch. The token is never sent upstream or logged.
//
// The keys subcommands manage the store the file names, without a running
// server (other problems of the file, such as an unset provider key, do not
// stop them):
//
//	TOKEN=$(llmgate keys create -config llmgate.yaml -description ci | tail -1)
//	llmgate keys list -config llmgate.yaml
//	llmgate keys revoke -config llmgate.yaml key_...
//
// create writes the key's ID and redacted form on stderr and the token,
// shown once, alone on the last line of stdout. A running server caches
// keys for up to 30 seconds, so a key revoked with the command stops
// working within that time (at once with a PostgreSQL store, which
// notifies every replica).
//
// With admin: the server also serves the admin API (package
// github.com/llmgate/gateway/admin) on a listener of its own, under
// /admin/ (POST /admin/v1/keys, GET /admin/v1/keys, PATCH and DELETE
// /admin/v1/keys/{id}, provider keys under /admin/v1/keys/{id}/provider_keys;
// credits under /admin/v1/credits/... and usage under /admin/v1/usage when
// the store keeps credits, else they answer 501), authenticated by
// Authorization: Bearer and the admin token, beside GET /healthz, /readyz
// and /metrics (see Metrics), which need no token. Changes made through it apply to this server at once. Provider
// keys attached to a gateway key are sealed with the first of
// key_encryption_keys and replace the configured keys of their provider for
// requests with that key. Keep the admin listener on a private address.
//
// # Credits and usage
//
// When the store keeps credits (credits.Store), every request leaves a
// usage record in it, and with credits: enabled: true in the file requests
// served with the operator's provider keys pay with the credits of their
// gateway key's account (see package github.com/llmgate/gateway/config).
// A file that enables credits on a store that keeps none is refused, at
// start and on reload. The credits and usage subcommands read and buy in
// the store the file names; they need only its store: field, so the
// variables of provider keys, key-encryption keys and the admin token need
// not be set:
//
//	llmgate credits buy -config llmgate.yaml -account team-a -amount 25.00 -id payment-8812
//	llmgate credits balance -config llmgate.yaml
//	llmgate credits transactions -config llmgate.yaml -account team-a
//	llmgate usage -config llmgate.yaml -from 2026-03-01 -group-by day,provider,model
//
// buy's -id makes the purchase idempotent (buying again with it buys
// nothing); the admin listener serves the same operations as JSON under
// /admin/v1/credits/... and /admin/v1/usage (package admin).
//
// The store and the admin listener's address apply at start: a reload
// that changes the store keeps the open one and logs that a restart is
// needed, and one that adds or removes the store is refused. The endpoint,
// gateway_keys, the key-encryption keys and the admin token apply on
// reload.
//
// # Metrics and probes
//
// The server exports Prometheus metrics (package
// github.com/llmgate/gateway/metrics/prommetrics: requests, attempts,
// failovers, tokens, cost, latencies, streams in flight, keys cooling
// down, with the Go runtime's and the process's) at GET /metrics on the
// listener of metrics.listen (or -metrics-listen), else on the admin
// listener, else nowhere; that listener also answers GET /healthz and
// /readyz, and 404 to anything else. It is unauthenticated: keep it on a
// private address.
//
// GET /healthz answers 200 "ok" while the process runs. GET /readyz
// answers 200 "ready" when the server should be sent requests, else 503
// "not ready: " and why: it is shutting down, the gateway has no provider
// it may call, or the key store does not answer a ping within 2 seconds.
// Both are also served on the API listener.
//
// # Server
//
// Every request but GET /healthz and /readyz, whatever its path,
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
// log.level, shutdown_timeout, everything but listen, max_connections,
// log.format, store, admin.listen and metrics.listen, which apply at
// start). The log says what changed (providers added, removed and
// changed, the number of keys of each provider, the default models, the
// other settings changed) and what is now reachable; key values are never
// logged. A file with problems is refused, with every problem and its line
// in the log, and the configuration in force stays. Requests in flight are
// not disturbed either way. In environment and demo modes there is no file
// to reload, which SIGHUP logs.
//
// SIGHUP also reopens the files of the jsonl event sinks (events:), so
// that a log rotator can rename them first; the events sinks themselves
// are opened at start, and a change of events takes a restart.
//
// SIGINT and SIGTERM shut the server down gracefully: /readyz answers 503
// at once, the API listener stops accepting connections, and the requests
// in flight, streams included, get up to shutdown_timeout (default 30s,
// applied as of the last reload) to finish; the connections of those
// still running then are closed, which cancels their upstream requests.
// The log says how many requests and streams were in flight at each step.
// The admin and metrics listeners serve until the drain ends, so it can be
// watched; then they stop, the gateway flushes the keys' last-used times,
// the event sinks write and send what they queued (for up to 10
// seconds) and log their counts, and the key store is closed. A second signal during the drain kills the
// process.
//
// # Request events
//
// Every request's event (request ID, principal, models, attempts, status,
// error code, usage, latencies; never a key nor a body) is logged on
// stderr, one line per request, and goes to every destination of the
// file's events: a JSON-lines file or standard output (type: jsonl) and
// HTTP collectors that receive {"events":[...]} in batches (type:
// webhook); see package github.com/llmgate/gateway/config. A destination
// never slows requests down: when it falls behind, its bounded queue
// fills and further events are dropped, counted in the log line written
// at shutdown.
//
// # Traces
//
// With a tracing section (tracing.otlp_endpoint), every request gets an
// OpenTelemetry span and every upstream attempt a child span (package
// github.com/llmgate/gateway/tracing/oteltracing), batched and POSTed as
// OTLP protobuf to the endpoint's /v1/traces. A client's W3C traceparent
// makes the request's span its child, and each attempt sends its own
// traceparent upstream. Spans still queued at shutdown are sent (for up
// to 10 seconds) after the last request; export failures are logged and
// never slow requests down. Tracing is set up at start: a change takes a
// restart.
package main
