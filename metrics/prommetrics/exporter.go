package prommetrics

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/metrics"
)

// DefaultMaxModels is the default of Options.MaxModels.
const DefaultMaxModels = 500

// Options configures an [Exporter]. The zero Options is valid and selects
// the defaults.
type Options struct {
	// MaxModels bounds the (provider, model) label pairs of catalog models
	// that get labels of their own; later ones are labelled
	// (provider, "other"). Default DefaultMaxModels; it must not be
	// negative.
	MaxModels int
}

// Exporter exports a gateway's metrics to Prometheus. It is both the
// gateway's [gateway.EventSink], from whose events it counts requests,
// attempts, failovers, tokens and cost and observes latencies, and a
// [prometheus.Collector], which also reads the gateway's live state on
// each scrape: requests and streams in flight, cooled-down keys, and the
// rolling upstream figures of its metrics recorder (what model selection
// and key balancing read).
//
// Create one with [New], pass it to gateway.WithEventSink, [Exporter.Bind]
// it to the gateway built with it, and register it with a
// prometheus.Registerer. HandleEvent takes no lock on its hot path,
// performs no I/O and does not allocate once a model's labels are known.
// All methods are safe for concurrent use. The zero Exporter is not
// usable.
type Exporter struct {
	gw     atomic.Pointer[gateway.Gateway]
	labels *labels

	requests         *prometheus.CounterVec   // {status, code}
	attempts         *prometheus.CounterVec   // {provider, model, result}
	skipped          *prometheus.CounterVec   // {provider, model, reason}
	failovers        *prometheus.CounterVec   // {provider, model}
	cost             *prometheus.CounterVec   // {provider, model}
	tokenUsage       *prometheus.HistogramVec // {operation, provider, request model, token type}
	operation        *prometheus.HistogramVec // {operation, provider, request model, error type}
	serverDuration   *prometheus.HistogramVec // {operation, provider, response model, error type}
	timeToFirstToken *prometheus.HistogramVec // {operation, provider, response model}
	overhead         prometheus.Histogram

	requestChildren codeChildren // children of requests by status and error kind
	none            *modelSeries // the labels ("", "") of requests no model served

	inFlightRequests, inFlightStreams *prometheus.Desc
	keys, keyCooldowns                *prometheus.Desc
	upstreamInFlight                  *prometheus.Desc
	windowRequests, windowErrorRatio  *prometheus.Desc
	windowLatencyP95, windowTTFTP95   *prometheus.Desc
	keyInFlight, keyWindowErrorRatio  *prometheus.Desc
}

// Label names of the gateway's own metrics; the GenAI metrics use the
// OpenTelemetry attribute names.
const (
	labelProvider = "provider"
	labelModel    = "model"
	labelKeyID    = "key_id"

	attrOperation     = "gen_ai_operation_name"
	attrProvider      = "gen_ai_provider_name"
	attrRequestModel  = "gen_ai_request_model"
	attrResponseModel = "gen_ai_response_model"
	attrTokenType     = "gen_ai_token_type"
	attrErrorType     = "error_type"
)

// New returns an exporter configured by o, reporting every problem with o
// at once. It exports nothing from the gateway's live state until
// [Exporter.Bind].
func New(o Options) (*Exporter, error) {
	var errs []error
	switch {
	case o.MaxModels < 0:
		errs = append(errs, fmt.Errorf("prommetrics: negative MaxModels %d", o.MaxModels))
	case o.MaxModels == 0:
		o.MaxModels = DefaultMaxModels
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	pm := []string{labelProvider, labelModel}
	e := &Exporter{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmgate_requests_total",
			Help: "Client requests served, by the HTTP status sent and the error code (empty on success; stream_failed for a stream that failed after a 200).",
		}, []string{"status", "code"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmgate_attempts_total",
			Help: "Upstream requests sent, by provider, model and result (ok, or the attempt's error class: timeout, connection, http_status, bad_response, stream_error, stream_failed, canceled).",
		}, []string{labelProvider, labelModel, "result"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmgate_attempts_skipped_total",
			Help: "Candidate (provider, model, key) combinations passed over without a request, by reason (key_cooldown, format_unsupported, translation_refused, credential_not_owned, attempt_limit, no_key_selected).",
		}, []string{labelProvider, labelModel, "reason"}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmgate_failovers_total",
			Help: "Failed upstream requests after which the gateway tried another key or model, by the provider and model that failed.",
		}, pm),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmgate_cost_usd_total",
			Help: "List price in US dollars of the usage providers reported, at the catalog's prices of the model that served (no fees; unpriced models and unreported usage add nothing).",
		}, pm),
		tokenUsage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gen_ai_client_token_usage",
			Help:    "Tokens used per served request as the provider reported them, by token type (input: the whole prompt, cached tokens included; output).",
			Buckets: tokenBuckets(),
		}, []string{attrOperation, attrProvider, attrRequestModel, attrTokenType}),
		operation: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gen_ai_client_operation_duration_seconds",
			Help:    "Duration of each upstream request, from sending it to the end of its body or stream; error_type is empty on success, the upstream status for an HTTP error, else the error class.",
			Buckets: durationBuckets(),
		}, []string{attrOperation, attrProvider, attrRequestModel, attrErrorType}),
		serverDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gen_ai_server_request_duration_seconds",
			Help:    "Duration of each client API request, from arrival to the end of the response, by the model that served it (empty when none did) and the error code (empty on success).",
			Buckets: durationBuckets(),
		}, []string{attrOperation, attrProvider, attrResponseModel, attrErrorType}),
		timeToFirstToken: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gen_ai_server_time_to_first_token_seconds",
			Help:    "Time from a streaming request's arrival to the first content sent to the client, by the model that served it.",
			Buckets: ttftBuckets(),
		}, []string{attrOperation, attrProvider, attrResponseModel}),
		overhead: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "llmgate_gateway_overhead_seconds",
			Help:    "Time each API request spent in the gateway itself: its whole duration minus the time of its upstream requests.",
			Buckets: overheadBuckets(),
		}),
		inFlightRequests: prometheus.NewDesc("llmgate_inflight_requests", "Client requests being served.", nil, nil),
		inFlightStreams:  prometheus.NewDesc("llmgate_inflight_streams", "Streaming API requests being served.", nil, nil),
		keys:             prometheus.NewDesc("llmgate_provider_keys", "Configured upstream API keys, by provider.", []string{labelProvider}, nil),
		keyCooldowns: prometheus.NewDesc("llmgate_key_cooldowns",
			"Configured upstream API keys cooling down after a refusal or a rate limit, by provider and scope (key: the whole key is skipped; model: the key is skipped for some models only).",
			[]string{labelProvider, "scope"}, nil),
		upstreamInFlight: prometheus.NewDesc("llmgate_upstream_inflight", "Upstream requests in flight, by provider and model.", pm, nil),
		windowRequests: prometheus.NewDesc("llmgate_upstream_window_requests",
			"Upstream requests that ended within the metrics recorder's rolling window (what model selection reads), by provider and model.", pm, nil),
		windowErrorRatio: prometheus.NewDesc("llmgate_upstream_window_error_ratio",
			"Share of the upstream requests in the rolling window that failed, by provider and model.", pm, nil),
		windowLatencyP95: prometheus.NewDesc("llmgate_upstream_window_latency_p95_seconds",
			"95th percentile of upstream request durations in the rolling window, by provider and model (within 19%).", pm, nil),
		windowTTFTP95: prometheus.NewDesc("llmgate_upstream_window_ttft_p95_seconds",
			"95th percentile of the time to first content of successful upstream streams in the rolling window, by provider and model (within 19%).", pm, nil),
		keyInFlight: prometheus.NewDesc("llmgate_key_upstream_inflight", "Upstream requests in flight, by provider and configured key ID.",
			[]string{labelProvider, labelKeyID}, nil),
		keyWindowErrorRatio: prometheus.NewDesc("llmgate_key_upstream_window_error_ratio",
			"Share of the upstream requests in the rolling window that failed, by provider and configured key ID.", []string{labelProvider, labelKeyID}, nil),
	}
	e.labels = newLabels(e, o.MaxModels)
	e.none = newModelSeries(e, pair{})
	return e, nil
}

// Bind makes the exporter read gw: its catalog, which labels providers
// and models, and its live state on each scrape. Events that arrive
// before Bind are labelled "other". Bind again (say after building a new
// gateway) to switch gateways; a gateway's Reload needs no new Bind.
func (e *Exporter) Bind(gw *gateway.Gateway) { e.gw.Store(gw) }

// Describe sends the descriptors of every metric the exporter exports;
// part of prometheus.Collector.
func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range e.collectors() {
		c.Describe(ch)
	}
	for _, d := range []*prometheus.Desc{e.inFlightRequests, e.inFlightStreams, e.keys, e.keyCooldowns, e.upstreamInFlight,
		e.windowRequests, e.windowErrorRatio, e.windowLatencyP95, e.windowTTFTP95, e.keyInFlight, e.keyWindowErrorRatio} {
		ch <- d
	}
}

func (e *Exporter) collectors() []prometheus.Collector {
	return []prometheus.Collector{e.requests, e.attempts, e.skipped, e.failovers, e.cost,
		e.tokenUsage, e.operation, e.serverDuration, e.timeToFirstToken, e.overhead}
}

// Collect sends the current value of every metric; part of
// prometheus.Collector. It reads the bound gateway's live state: its
// in-flight counts, its keys' cooldowns and its metrics recorder.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	for _, c := range e.collectors() {
		c.Collect(ch)
	}
	gw := e.gw.Load()
	if gw == nil {
		return
	}
	in := gw.InFlight()
	ch <- prometheus.MustNewConstMetric(e.inFlightRequests, prometheus.GaugeValue, float64(in.Requests))
	ch <- prometheus.MustNewConstMetric(e.inFlightStreams, prometheus.GaugeValue, float64(in.Streams))
	configured := e.collectKeys(ch, gw.KeyStates())
	e.collectRecorder(ch, gw, configured)
}

// collectKeys exports the keys and their cooldowns per provider, and
// returns the configured keys, by lower-case provider and key ID.
func (e *Exporter) collectKeys(ch chan<- prometheus.Metric, states []gateway.KeyState) map[pair]bool {
	type counts struct{ keys, key, model int }
	byProvider := map[string]*counts{}
	var order []string
	configured := make(map[pair]bool, len(states))
	for _, s := range states {
		p := strings.ToLower(s.Provider)
		configured[pair{p, strings.ToLower(s.KeyID)}] = true
		c := byProvider[p]
		if c == nil {
			c = &counts{}
			byProvider[p] = c
			order = append(order, p)
		}
		c.keys++
		switch {
		case !s.CooldownUntil.IsZero():
			c.key++
		case s.CoolingModels > 0:
			c.model++
		}
	}
	for _, p := range order {
		c := byProvider[p]
		ch <- prometheus.MustNewConstMetric(e.keys, prometheus.GaugeValue, float64(c.keys), p)
		ch <- prometheus.MustNewConstMetric(e.keyCooldowns, prometheus.GaugeValue, float64(c.key), p, "key")
		ch <- prometheus.MustNewConstMetric(e.keyCooldowns, prometheus.GaugeValue, float64(c.model), p, "model")
	}
	return configured
}

// collectRecorder exports the recorder's series: in-flight requests of
// every model (unknown ones summed into "other"), the rolling figures of
// the models with labels of their own, and those of the configured keys.
func (e *Exporter) collectRecorder(ch chan<- prometheus.Metric, gw *gateway.Gateway, configured map[pair]bool) {
	t := e.labels.current(gw.Catalog())
	inFlight := map[pair]int64{}
	var order []pair
	rec := gw.Metrics()
	rec.Each(func(kind metrics.Kind, provider, name string, st *metrics.Stats) bool {
		// st.InFlight may be a second old: the gauges read the series' live
		// count (a lookup that neither locks nor allocates).
		if kind == metrics.KindKey {
			if configured[pair{provider, name}] {
				live := rec.Key(provider, name).InFlight()
				ch <- prometheus.MustNewConstMetric(e.keyInFlight, prometheus.GaugeValue, float64(live), provider, name)
				ch <- prometheus.MustNewConstMetric(e.keyWindowErrorRatio, prometheus.GaugeValue, st.ErrorRate.Total, provider, name)
			}
			return true
		}
		k, own := e.labels.label(t, provider, name)
		_, seen := inFlight[k]
		if !seen {
			order = append(order, k)
		}
		if provider == "" && name == "_other" { // the recorder's overflow series
			inFlight[k] += st.InFlight
		} else {
			inFlight[k] += rec.Model(provider, name).InFlight()
		}
		if own && !seen { // two series never share labels of their own; if they did, the first one's figures win
			l := []string{k.provider, k.model}
			ch <- prometheus.MustNewConstMetric(e.windowRequests, prometheus.GaugeValue, float64(st.Requests), l...)
			ch <- prometheus.MustNewConstMetric(e.windowErrorRatio, prometheus.GaugeValue, st.ErrorRate.Total, l...)
			ch <- prometheus.MustNewConstMetric(e.windowLatencyP95, prometheus.GaugeValue, st.Latency.UpstreamP95.Seconds(), l...)
			ch <- prometheus.MustNewConstMetric(e.windowTTFTP95, prometheus.GaugeValue, st.Latency.TTFTP95.Seconds(), l...)
		}
		return true
	})
	for _, k := range order {
		ch <- prometheus.MustNewConstMetric(e.upstreamInFlight, prometheus.GaugeValue, float64(inFlight[k]), k.provider, k.model)
	}
}

// The histogram buckets: the OpenTelemetry GenAI semantic conventions'
// advice for the gen_ai metrics.
func tokenBuckets() []float64 {
	return []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864}
}

func durationBuckets() []float64 {
	return []float64{0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92}
}

func ttftBuckets() []float64 {
	return []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0}
}

func overheadBuckets() []float64 {
	return []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}
}

var (
	_ gateway.EventSink    = (*Exporter)(nil)
	_ prometheus.Collector = (*Exporter)(nil)
)
