// Package config reads the llmgate configuration file, a YAML file with
// snake_case field names, and turns it into gateway options. The
// standalone server (cmd/llmgate) and host services that embed the gateway
// load the same file:
//
//	opts, err := config.Load("llmgate.yaml")
//	if err != nil {
//		log.Fatal(err) // every problem at once: "llmgate.yaml: invalid configuration (2 problems): ..."
//	}
//	gw, err := gateway.New(append(opts, gateway.WithLogger(logger))...)
//
// The package only maps the file to options and places problems in the
// file; the rules about the values are gateway.New's. Load reads the file,
// expands ${env:NAME} from the process environment and checks the result
// with a throwaway gateway.New (File.Check). The pieces are public for a
// host that builds or reloads the gateway itself: Parse (or ReadFile) gives
// a *File, File.Options its options, and File.Explain turns an error of
// gateway.New or Gateway.Reload into an *Error whose problems name the
// file's field path and line:
//
//	f, err := config.ReadFile(path, os.Getenv)
//	if f == nil {
//		return err // unreadable, or not YAML
//	}
//	if err != nil {
//		return f.Check(hostOptions...) // the file's own problems and New's, gateway untouched
//	}
//	return f.Explain(gw.Reload(append(f.Options(), hostOptions...)...)) // nil: applied
//
// When Parse reports problems it still returns the File, whose Options
// leave the faulty fields out, so that Check (or New followed by Explain)
// reports the problems of the rest in the same list. Do not apply such a
// File: Reload or New may well accept what is left.
//
// # Syntax
//
// Unknown fields are errors (with a suggestion for a misspelt name); so
// are values of the wrong YAML type, unknown log levels and formats,
// pass_through modes and modalities, and unset variables. Every string
// value may contain ${env:NAME} references, expanded after the YAML is
// parsed (so a secret may hold any character); an unset or empty variable
// is an error, except inside a provider with disabled: true. Values taken
// from the environment are never printed: problems show the reference.
// Anchors, aliases and merge keys (<<: *defaults) work. Durations use Go
// syntax (90s, 3m, 1h30m). Every problem is reported at once, each as
// "path: problem (line N)". Key values are never printed.
//
// # Reference
//
// Every field is optional. A field left out keeps the gateway's default
// (see the gateway.With* function named in brackets).
//
//	listen: "127.0.0.1:8080"        # server: host:port (llmgate -listen overrides it)
//	max_connections: 4096           # server: connections served at once; more wait to be accepted
//	log: {level: info, format: text}   # server: debug|info|warn|error; text|json
//	metrics:                        # server: Prometheus metrics (package metrics/prommetrics)
//	  listen: 127.0.0.1:9464        # serves GET /metrics, /healthz and /readyz; default: on admin.listen, if set
//	shutdown_timeout: 30s           # server: on SIGTERM, wait this long for requests in flight (streams too)
//
//	store: sqlite:./llmgate.db      # key store of gateway API keys; or postgres://user@host/db?sslmode=disable [WithKeyStore]
//	endpoint: prod                  # this gateway's name in the store; keys work only here; default "default"
//	gateway_keys: required          # required (default with a store) | optional: requests without a key pass
//	key_encryption_keys:            # seal provider keys attached to gateway keys; first = current, rest = old
//	  - {id: kek-2026-12, key: "${env:LLMGATE_KEK}"}   # 32 bytes: base64 (std or url) or 64 hex characters
//	admin:                          # server: the admin API on a listener of its own (needs store)
//	  listen: 127.0.0.1:9090        # serves /admin/v1/keys... and GET /healthz
//	  token: "${env:LLMGATE_ADMIN_TOKEN}"   # bearer token, at least 16 bytes
//	credits:                        # usage records (always, with a store) and prepaid credits [WithMetering]
//	  enabled: true                 # requests served with the operator's keys pay with their account's credits
//	  fee_percent: 2.5              # processing fee, % of the model cost; at most two decimals, 0 to 1000
//	  fee_per_million_tokens: 0.05  # processing fee in dollars per million tokens; at most six decimals, $0 to $1000
//	  min_output_tokens: 16         # refuse (403 credits_exhausted) when the prompt and this many output tokens cannot be paid
//	  default_max_output_tokens: 4096   # max output set on paid requests that name none, for models without one
//	  hold_ttl: 1h                  # a crashed gateway's holds are released after this; at least twice total_timeout
//	  sweep_interval: 1m            # release expired holds and expire lots this often; 0s: never (another replica sweeps)
//	  lease:                        # hold requests in memory from per-replica leases of the account's credits (credits.Leasing)
//	    enabled: true               # default true; false: every request holds, settles and records in the store
//	    size: 1.00                  # what one lease holds, $0.01 to $1000
//	    flush_interval: 1s          # spends and usage records are written back this often (a crash loses at most this much)
//	    ttl: 2m                     # a crashed replica's lease is swept after this; at least three flush intervals
//	    idle: 30s                   # an unused lease is given back after this
//	    min_balance: 10             # accounts with less than this many leases' worth hold each request in the store
//	limits:                         # every request's tokens; 0 or absent: no limit [WithTokenLimits]
//	  max_input_tokens: 100000      # longer prompts get 413 input_too_large
//	  max_output_tokens: 8192       # lowers (or sets) the request's maximum output tokens
//	events:                         # where every request's event goes [WithEventSink, one per entry; see OpenEventSinks]
//	  - type: jsonl                 # one JSON line per request (sinks/jsonl)
//	    path: /var/log/llmgate/events.jsonl   # appended to; "-" for standard output
//	    queue_size: 4096            # events waiting to be written; more are dropped
//	    flush_interval: 1s          # longest an event waits in the write buffer
//	  - type: webhook               # POST {"events":[...]} in batches (sinks/webhook)
//	    url: https://collector.example/ingest   # http or https; never printed
//	    headers: {Authorization: "Bearer ${env:COLLECTOR_TOKEN}"}   # sent with every request; never printed
//	    batch_size: 100             # most events per request
//	    flush_interval: 1s          # longest the first event of a batch waits for it to fill
//	    queue_size: 10000           # events waiting to be sent; more are dropped
//	    timeout: 10s                # each request
//	    max_attempts: 10            # requests per batch (retries on errors, 408, 429, 5xx); 0: until shutdown
//	    max_backoff: 30s            # longest wait between retries (from 500ms, doubling, with jitter)
//	    concurrency: 1              # batches sent at once; above 1, out of order
//	inspector:                      # request and response bodies, redacted, as JSON lines; off by default [WithInspector; see OpenEventSinks]
//	  enabled: true
//	  path: /var/log/llmgate/capture.jsonl   # appended to; "-" for standard output; not an events path
//	  max_bytes: 65536              # kept of each body (1 to 16777216); the rest is cut and marked truncated
//	  queue_size: 4096              # captures waiting to be written; more are dropped
//	  flush_interval: 1s            # longest a capture waits in the write buffer
//	tracing:                        # OpenTelemetry traces over OTLP/HTTP; off without otlp_endpoint [WithTracer, tracing/oteltracing]
//	  otlp_endpoint: http://127.0.0.1:4318   # the receiver's base URL: spans go to its path + /v1/traces
//	  service_name: llmgate         # the resource's service.name
//	  sample_ratio: 1.0             # share of new traces recorded, 0 to 1; a client's sampled trace context is followed
//	  headers: {Authorization: "Bearer ${env:OTLP_TOKEN}"}   # sent with every export; never printed
//	  public_endpoint: false        # true: a new trace per request, linked to the client's span
//
//	per_request_timeout: 3m         # one upstream attempt, until the response is committed [WithTimeouts]
//	total_timeout: 6m               # all attempts of a request [WithTimeouts]
//	stream_idle_timeout: 3m         # cut a committed stream silent this long; default per_request_timeout [WithStreamIdleTimeout]
//	stream_keep_alive: 15s          # keep-alives in translated streams; 0s disables [WithStreamKeepAlive]
//	body_read_timeout: 1m           # reading a request body (408 after) [WithClientTimeouts]
//	write_timeout: 30s              # each write to a client, e.g. one stream event [WithClientTimeouts]
//	only_allow_configured_providers: true   # default: true when providers lists an enabled entry [WithOnlyConfiguredProviders]
//	only_allow_configured_models: false     # refuse models not listed under providers[].models [WithOnlyConfiguredModels]
//	default_models: [openai:gpt-4o-mini]    # for "auto"; default: each provider's default model [WithDefaultModels]
//	max_request_bytes: 33554432     # larger bodies get 413 [WithMaxRequestBytes]
//	max_response_bytes: 67108864    # upstream JSON bodies [WithMaxResponseBytes]
//	max_event_bytes: 8388608        # one upstream SSE event [WithMaxEventBytes]
//	stream_holdback: {events: 64, bytes: 262144}   # stream preamble held back for failover [WithStreamHoldback]
//	fail_fast_statuses: [400, 422]  # upstream statuses relayed instead of failed over [WithFailFastStatuses]
//	key_cooldowns: {auth: 5m, rate_limit: 10s, max_retry_after: 2m}   # [WithKeyCooldowns]
//	max_models: 16                  # models one request may name [WithMaxModels]
//	max_attempts: 20                # upstream requests per client request [WithMaxAttempts]
//	pass_through: scoped            # scoped|off|any: where clients' own keys may go [WithPassThrough]
//	error_detail: false             # key IDs and upstream reasons in client error bodies [WithErrorDetail]
//	cors_origins: ["https://app.example.com"]   # or ["*"] [WithCORS]
//	forward_headers: [X-Trace-Id]   # client headers sent upstream beyond the built-in list [WithForwardHeaders]
//	allowed_hosts: [localhost, 127.0.0.1, ::1]   # Host names served; ["*"] for every Host [WithAllowedHosts]
//	model_selection:                # CEL strategies, first non-empty wins [WithModelSelection]
//	  strategy:
//	    - "request.input_tokens > 100000 ? ai.models.filter(m, m.max_context_window >= 400000) : []"
//	    - ai.models.sortBy(m, m.metrics.error_rate.total)
//	api_key_selection:              # how each provider's keys are ordered [WithKeySelection]
//	  strategy: [round_robin]       # ordered|round_robin|weighted|least_in_flight|least_latency, or CEL over ai.keys
//	request_policy:
//	  allow:                        # per surface, the only top-level body members sent upstream [WithParamAllowList]
//	    chat-completions: [temperature, top_p, max_tokens, max_completion_tokens, tools, tool_choice]
//	    embeddings: []              # only what the gateway needs (model, input)
//	redaction:                      # find and replace in request bodies and answers [WithRedaction]
//	  mode: across_chunks           # across_chunks|per_chunk: catch matches split across stream events or not
//	  rules:                        # presets: email, phone, us_ssn, payment_card, ip_address, api_key
//	    - preset: email             # replaced by its marker, [EMAIL]
//	    - {name: ticket, from: 'TICKET-(\d+)', to: 'ticket #$1'}   # an RE2 pattern and its replacement
//	providers:                      # one entry per provider [WithProvider]
//	  - id: openai                  # a catalog provider (changes it) or a new ID (a custom provider)
//	    aliases: [oai]              # other names clients may use
//	    base_url: https://api.openai.com/v1/   # required for custom providers
//	    format: openai              # openai|anthropic; custom providers, default openai
//	    surfaces: [chat-completions, responses, embeddings]   # or messages; default: all of the format
//	    api_keys:                   # tried in order; none: see pass_through
//	      - value: ${env:OPENAI_API_KEY}
//	        id: primary             # non-secret name in logs; default key-1, key-2, ...
//	        weight: 1               # share under the weighted key selection
//	    headers: {X-Custom: v}      # sent upstream on every request
//	    query_params: {api-version: "2024-10-21"}
//	    auth_header: api-key        # send the raw key in this header instead of the default
//	    default_model: gpt-4o-mini
//	    stream_usage: true          # accepts stream_options.include_usage
//	    key_prefixes: ["sk-"]       # scoped pass-through: the client keys this provider owns; default the catalog's
//	    pass_through: false         # a keyless custom provider receives clients' own keys (scoped mode)
//	    disabled: false             # remove the provider; its ${env:...} need not be set
//	    api_key_selection: {strategy: [weighted]}   # this provider's keys; default the file's
//	    policy:                     # every request to the provider [ProviderConfig.Policy, gateway.RequestPolicy]
//	      headers: {X-Team: platform}   # replace configured and client headers of the same name
//	      query_params: {api-version: "2024-10-21"}
//	      set: {temperature: 0.2}   # top-level body members replacing the client's (YAML values, sent as JSON)
//	      deny: [logit_bias]        # top-level body members removed (Llmgate-Removed-Params)
//	      max_output_tokens: 4096   # caps the answer; 0: no cap
//	    models:                     # override catalog models or add new ones; IDs unique per provider
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
//	        policy: {set: {temperature: 0}, deny: [seed], max_output_tokens: 1024}   # over the provider's [ModelPolicies]
//
// Fields in detail:
//
//   - per_request_timeout and total_timeout: if only one is given, the
//     other keeps its default (3m, 6m); per_request_timeout must not
//     exceed total_timeout. body_read_timeout and write_timeout likewise
//     (1m, 30s); so do the fields of stream_holdback (64 events, 256 KiB)
//     and key_cooldowns (auth 5m, rate_limit 10s, max_retry_after 2m).
//   - only_allow_configured_providers: with it, requests naming another
//     provider get 403 provider_not_allowed. A file that lists no enabled
//     provider can only pass clients' own keys through to the catalog's
//     providers, so there it defaults to false.
//   - pass_through: a provider with no api_keys receives the client's own
//     credential: under scoped (the default) only a catalog provider whose
//     key prefixes match it ("sk-ant-" for Anthropic, ...; a provider's
//     key_prefixes replace the catalog's) or a custom provider with
//     pass_through: true; under off none; under any every keyless provider
//     (unsafe: on failover one provider's key can reach another).
//   - allowed_hosts: requests with another Host get 403 host_not_allowed,
//     which protects a gateway on a loopback address from DNS rebinding.
//     When it is left out, the server allows only localhost, 127.0.0.1,
//     ::1 and its listen host if it listens on a loopback address, and
//     every Host otherwise. A list replaces that default; ["*"] serves
//     every Host.
//   - store: "sqlite:PATH" (a file, relative to the working directory,
//     created when missing; store/sqlite) or a "postgres://" or
//     "postgresql://" URL (store/postgres, for several replicas). This
//     package imports no database driver: File.StoreDSN gives what to
//     open and File.KeyStoreOptions the rest of gateway.WithKeyStore
//     (cmd/llmgate does both). With a store, every request needs a
//     gateway API key (Authorization: Bearer lg-… or x-api-key) created
//     for endpoint, unless gateway_keys is optional; a token that looks
//     like a gateway key is checked either way. endpoint, gateway_keys,
//     key_encryption_keys and admin need a store.
//   - key_encryption_keys: AES-256 keys (openssl rand -base64 32) that seal
//     the provider keys attached to gateway keys through the admin API.
//     To rotate, put the new key first and keep the old ones after it
//     until their entries are rewrapped. Without any, attaching is
//     refused and keys already attached are skipped. IDs must be unique
//     printable ASCII (at most 64 bytes).
//   - admin (server): the admin API (package admin) on its own listener,
//     under /admin/ (POST /admin/v1/keys creates a key and returns its
//     token once; /admin/v1/credits/... buys credits and reads balances,
//     /admin/v1/usage reads usage records), authenticated with
//     Authorization: Bearer <token>. Keep it off public networks.
//   - credits: the store keeps a usage record of every request (tokens,
//     cost, fee, attempts) whenever a store is configured; with
//     enabled: true, a request served with the operator's provider keys
//     and whose gateway key has an account (else the key's ID) holds its
//     worst-case cost before going upstream and pays what it cost when it
//     ends: the catalog price plus fee_percent of it plus
//     fee_per_million_tokens. Requests with the client's own provider keys
//     never pay. Accounts buy credits (at least $5, lasting 365 days)
//     through the admin API or llmgate credits buy. fee_percent and
//     fee_per_million_tokens are exact decimals, read as written and
//     never through a float. Every credits field needs a store. This
//     package opens no store: File.MeteringOptions gives the options of
//     gateway.WithMetering, whose ledger is the opened store (cmd/llmgate
//     does both).
//   - limits: the prompt is counted with the model's tokenizer (package
//     tokens); max_output_tokens lowers a larger maximum a request asks
//     for and sets it when the request names none.
//   - events: every entry is a sink that receives the event of every
//     request (gateway.Event: request ID, path, principal, models,
//     attempts, status, error code, usage, latencies; never a key nor a
//     body). A sink never slows a request down: events wait in a bounded
//     queue, and when it is full new events are dropped and counted.
//     jsonl writes one line of JSON per event (the encoding/json form of
//     gateway.Event); several entries may not share a path. webhook POSTs
//     {"events":[EVENT,...]} with Content-Type: application/json; any 2xx
//     acknowledges a batch; network errors, timeouts, 408, 429 and 5xx
//     are retried with exponential backoff and jitter (Retry-After is
//     honoured, up to 2m), other statuses reject the batch. A retried
//     batch may arrive twice: receivers deduplicate on request_id. The
//     sinks are opened at start and closed at shutdown, after the last
//     request, sending what they queued (cmd/llmgate allows them 10
//     seconds); a reload keeps them (changing events takes a restart),
//     and SIGHUP reopens jsonl files for log rotation.
//   - inspector: nothing of a body is stored unless it is enabled; then
//     every request's gateway.Capture (its request body after redaction
//     and the bytes its client received, each cut at max_bytes) is
//     written as one JSON line (gateway.Capture.MarshalJSON), through the
//     same bounded queue as a jsonl event sink. It is opened, reopened and
//     closed with the events' sinks.
//   - tracing: a span per request and per upstream attempt, with the
//     OpenTelemetry semantic conventions' gen_ai.* attributes (see package
//     tracing/oteltracing), batched and sent as OTLP protobuf over HTTP;
//     the client's W3C trace context is joined (or, with public_endpoint,
//     linked) and each attempt's is sent upstream as traceparent. This
//     package imports no OpenTelemetry module: cmd/llmgate builds the
//     exporter from Tracing. It is created at start and flushed at
//     shutdown (cmd/llmgate allows it 10 seconds); changing tracing takes
//     a restart.
//   - policy (providers[] and models[]): what the upstream receives;
//     see gateway.RequestPolicy. A model's policy overrides its
//     provider's: headers, query_params and set are merged (the model's
//     value wins), deny lists add up, max_output_tokens replaces. Body
//     members are top-level ones, matched case-insensitively, in the body
//     the upstream gets (after translation); model, stream,
//     stream_options, messages and input are never removed or set, and
//     max_tokens/max_completion_tokens/max_output_tokens cannot be set
//     (use max_output_tokens). A model listed only for its policy
//     keeps its catalog values but counts as configured for
//     only_allow_configured_models. request_policy.allow keys are surface
//     names as in surfaces.
//   - max_connections (server): connections beyond it are not accepted
//     until one closes; they wait in the kernel's accept queue. Default
//     4096.
//   - metrics (server): GET /metrics (Prometheus text format), /healthz
//     (the process is alive) and /readyz (the gateway has a provider to
//     call and its store answers a ping; 503 while shutting down) on a
//     listener of their own, unauthenticated: keep it off public
//     networks. Without metrics.listen, the admin listener serves them.
//     llmgate -metrics-listen overrides it.
//   - shutdown_timeout (server): on SIGTERM or SIGINT the server stops
//     accepting connections, reports not ready, and waits this long for
//     the requests in flight, streams included, to finish; then it
//     closes their connections. Default 30s.
//
// The listen address, max_connections, log.format, store, admin.listen,
// metrics.listen, events and tracing apply at start; a reload (SIGHUP to the
// server) applies everything else, log.level, endpoint, gateway_keys, the
// key-encryption keys, the admin token, credits, limits and
// shutdown_timeout included.
package config
