// Package prommetrics exports an llmgate gateway's metrics to Prometheus.
// It is the only part of llmgate that imports the Prometheus client: a
// host that does not import it pays nothing for it.
//
// An [Exporter] is a gateway.EventSink, fed one event per request, and a
// prometheus.Collector, which reads the gateway's live state on each
// scrape. Wire it in three steps:
//
//	exp, err := prommetrics.New(prommetrics.Options{})
//	gw, err := gateway.New(..., gateway.WithEventSink(exp))
//	exp.Bind(gw)
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(exp)
//	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// # Metrics
//
// Names follow the OpenTelemetry semantic conventions for generative AI
// where they define one (dots become underscores and durations carry the
// _seconds unit suffix, as OpenTelemetry's Prometheus exporter writes
// them), with their attributes as labels and their advised histogram
// buckets; the gateway's own metrics are named llmgate_*.
//
// From each request's event:
//
//	llmgate_requests_total{status, code}          client requests by HTTP status and error code ("" on success)
//	llmgate_gateway_overhead_seconds              histogram: time spent in the gateway itself (API requests)
//	llmgate_attempts_total{provider, model, result}
//	                                              upstream requests: result "ok" or the attempt's error class
//	llmgate_attempts_skipped_total{provider, model, reason}
//	                                              candidates passed over without a request (key_cooldown, ...)
//	llmgate_failovers_total{provider, model}      failed upstream requests followed by another attempt
//	llmgate_cost_usd_total{provider, model}       list price of the reported usage of the model that served
//	gen_ai_client_operation_duration_seconds{gen_ai_operation_name, gen_ai_provider_name, gen_ai_request_model, error_type}
//	                                              histogram: each upstream request's duration
//	gen_ai_client_token_usage{gen_ai_operation_name, gen_ai_provider_name, gen_ai_request_model, gen_ai_token_type}
//	                                              histogram: input and output tokens of each served request
//	gen_ai_server_request_duration_seconds{gen_ai_operation_name, gen_ai_provider_name, gen_ai_response_model, error_type}
//	                                              histogram: each client request's duration, by the model that served
//	gen_ai_server_time_to_first_token_seconds{gen_ai_operation_name, gen_ai_provider_name, gen_ai_response_model}
//	                                              histogram: arrival to first content sent, for streams
//
// Read from the gateway on each scrape:
//
//	llmgate_inflight_requests, llmgate_inflight_streams    requests and streams being served
//	llmgate_provider_keys{provider}                         configured upstream keys
//	llmgate_key_cooldowns{provider, scope}                  keys cooling down: scope "key" (whole key) or "model"
//	llmgate_upstream_inflight{provider, model}              upstream requests in flight
//	llmgate_upstream_window_requests{provider, model}       the metrics recorder's rolling window (what model
//	llmgate_upstream_window_error_ratio{provider, model}    selection and key balancing read): requests, share
//	llmgate_upstream_window_latency_p95_seconds{...}        failed, p95 of durations and of the time to first
//	llmgate_upstream_window_ttft_p95_seconds{...}           content of streams
//	llmgate_key_upstream_inflight{provider, key_id}         the same per configured key: in flight,
//	llmgate_key_upstream_window_error_ratio{provider, key_id}   and share failed
//
// gen_ai_operation_name is "chat" for chat completions, messages and
// responses, and "embeddings". On the client-side gen_ai_client_* metrics
// (the gateway calling a provider) the model is gen_ai_request_model, the
// model the gateway asked the provider for; on the server-side
// gen_ai_server_* metrics (the gateway answering its client) it is
// gen_ai_response_model, the model that served the client, empty with
// gen_ai_provider_name when none did. error_type is empty on success; on
// the client side it is the upstream status of an HTTP error ("429") or
// else the attempt's error class ("timeout"), on the server side the
// gateway's error code ("all_providers_failed"). Input tokens count the
// whole prompt, cached tokens included.
//
// The cost is what the provider-reported usage costs at the catalog's
// list price of the model that served (cached prompt tokens at the cache
// prices), as floating-point US dollars: it leaves out processing fees
// and the gateway's own token counts for providers that report no usage,
// which metering (gateway.WithMetering) charges; the ledger, not this
// counter, is the account of money.
//
// # Cardinality
//
// Every label has a bounded set of values. provider and model come from
// the gateway's catalog (its built-in providers and models extended with
// the configured ones): a provider it does not know is "other", and so
// is a model it does not know (say a fine-tune passed through with an
// "openai:" prefix). A model is labelled by the name sent upstream when
// the catalog knows it by that ID or alias, ASCII lower-cased as the
// metrics recorder keeps it; at most Options.MaxModels such pairs get
// labels of their own, later ones share (provider, "other"). Window
// figures are exported only for pairs with labels of their own. Key IDs
// are those of configured keys only. Statuses are HTTP statuses, codes
// and error types come from closed sets.
//
// # Cost per request
//
// HandleEvent runs on the request's goroutine after its response: it
// takes no lock once the event's labels have been seen, performs no I/O
// and does not allocate. BenchmarkHandleEvent measures it (the target is
// at most 1 µs per request). A scrape costs one pass over the
// recorder's series and the configured keys.
package prommetrics
