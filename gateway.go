// Package gateway is llmgate: an AI gateway as an embeddable Go library.
//
// A Gateway is an http.Handler that serves one OpenAI- and
// Anthropic-compatible API in front of many model providers:
//
//	POST /v1/chat/completions   OpenAI chat completions (JSON and SSE)
//	POST /v1/messages           Anthropic messages (JSON and SSE)
//	POST /v1/responses          OpenAI responses (native providers only)
//	POST /v1/embeddings         OpenAI embeddings (native providers only)
//	GET  /v1/models             every model the caller may use (OpenAI list shape)
//
// Clients pick models with "model" and an ordered "models" fallback array,
// in the grammar [provider:][author/]model (see package catalog). For each
// request the gateway plans an ordered list of candidate models and tries
// them, and for each its provider's keys in order, failing over on
// timeouts, connection failures and HTTP errors until one answers.
// Streams are passed through event by event; the first content event
// commits the response, after which failures are reported in-stream.
//
// Mount it anywhere in a host mux:
//
//	gw, err := gateway.New(gateway.WithProvider(gateway.ProviderConfig{
//		ID:   "openai",
//		Keys: []gateway.ProviderKey{{Value: providers.Secret(os.Getenv("OPENAI_API_KEY"))}},
//	}))
//	if err != nil { ... }
//	defer gw.Close()
//	mux.Handle("/ai/", http.StripPrefix("/ai", gw))
//
// A Gateway is safe for concurrent use. All of its state belongs to it: it
// has no package-level state and starts no goroutine that outlives Close.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/internal/httpx"
	"github.com/llmgate/gateway/metrics"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/tokens"
)

// Response headers set on every response, errors included.
const (
	// HeaderRequestID carries the gateway's request ID ("req_...").
	HeaderRequestID = "Llmgate-Request-Id"
	// HeaderAttempts carries the number of upstream requests made.
	HeaderAttempts = "Llmgate-Attempts"
	// HeaderModel carries the "provider:model" that produced the response.
	HeaderModel = "Llmgate-Model"
	// HeaderRejectedModels lists requested models that were refused by the
	// gateway's restrictions and never tried.
	HeaderRejectedModels = "Llmgate-Rejected-Models"
	// HeaderRemovedParams lists the request fields dropped because the
	// request was translated to a provider whose format has no counterpart,
	// or removed by the request policy (RequestPolicy.Deny,
	// WithParamAllowList).
	HeaderRemovedParams = "Llmgate-Removed-Params"
)

// Gateway is the AI gateway: an http.Handler. Create one with New; the zero
// value is not usable. Safe for concurrent use.
type Gateway struct {
	routing   atomic.Pointer[routing] // the current snapshot; swapped by Reload
	reloadMu  sync.Mutex              // serialises Reload
	client    *http.Client            // the default upstream client (WithHTTPClient replaces it per snapshot)
	transport *http.Transport         // the default client's transport, closed by Close
	closed    atomic.Bool
	closeOnce sync.Once
	counter   *tokens.Counter // tiktoken, for prompts and answers metering must count
	inFlight  atomic.Int64    // requests being served (InFlight)
	streams   atomic.Int64    // streaming API requests among them
	bodies    bodyPool        // reused buffers of large request bodies (bodypool.go)
}

// New builds a Gateway from options. It applies every option, then checks
// the rules between them, and returns every problem at once (errors.Join
// of *OptionError values; see OptionErrors); nothing is left to fail at
// request time.
func New(opts ...Option) (*Gateway, error) {
	g := &Gateway{client: httpx.NewClient(), counter: tokens.NewCounter()}
	g.transport, _ = g.client.Transport.(*http.Transport)
	rt, err := g.build(opts, nil)
	if err != nil {
		g.transport.CloseIdleConnections()
		return nil, err
	}
	g.routing.Store(rt)
	rt.auth.start()
	rt.meter.start()
	return g, nil
}

// Reload replaces the gateway's whole configuration with opts, as New
// would build it from them: providers, keys, models, defaults, timeouts,
// sinks and the rest. It validates everything first and changes nothing
// when any option is invalid, returning every problem as New does.
// Requests in flight finish with the configuration they started with; new
// requests use the new one from the moment Reload returns. Keys that stay
// (same provider, key ID and value) keep their cooldowns. Safe for
// concurrent use with requests; concurrent Reloads are serialised.
func (g *Gateway) Reload(opts ...Option) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	if g.closed.Load() {
		return errors.New("llmgate: reload of a closed gateway")
	}
	prev := g.routing.Load()
	rt, err := g.build(opts, prev)
	if err != nil {
		return err
	}
	g.routing.Store(rt)
	rt.auth.start()
	rt.meter.start()
	prev.meter.stop(rt.meter)
	if prev.auth != rt.auth {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		prev.auth.stop(ctx)
		cancel()
	}
	return nil
}

// build applies opts to the defaults and builds the routing snapshot,
// reporting every problem at once.
func (g *Gateway) build(opts []Option, prev *routing) (*routing, error) {
	cfg := defaultConfig()
	var errs []error
	for _, o := range opts {
		if o == nil {
			errs = append(errs, &OptionError{Err: errors.New("nil Option")})
			continue
		}
		if err := o.apply(&cfg); err != nil {
			errs = append(errs, err)
		}
	}
	if err := cfg.validate(); err != nil {
		errs = append(errs, err)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	if cfg.streamIdleTimeout == 0 {
		cfg.streamIdleTimeout = cfg.perAttemptTimeout
	}
	hc := cfg.httpClient
	if hc == nil {
		// A dedicated transport that never follows redirects: a
		// redirected POST would replay the body and the credential
		// (x-api-key is not a header net/http strips) to another URL. The
		// 3xx answer fails the attempt instead.
		hc = g.client
	}
	// Build even when options failed, so that catalog and provider problems
	// are reported in the same error.
	rec := cfg.metrics
	switch {
	case rec != nil:
	case prev != nil:
		rec = prev.metrics
	default:
		// The gateway's own recorder, on its clock; the options are the
		// defaults, which are valid.
		rec, _ = metrics.NewRecorder(metrics.Options{Now: cfg.now})
	}
	rt, err := buildRouting(&cfg, hc, rec, prev)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("llmgate: invalid configuration: %w", errors.Join(oneProblemPerField(errs)...))
	}
	return rt, nil
}

// oneProblemPerField flattens the option errors and keeps one per (option,
// provider entry, field): the options' own checks and the catalog's may
// find the same problem, and a provider with an unknown format needs no
// second report about its surfaces.
func oneProblemPerField(errs []error) []error {
	type at struct {
		option, field string
		index         int
	}
	var out []error
	seen := map[at]bool{}
	badFormat := map[int]bool{}
	for _, oe := range OptionErrors(errors.Join(errs...)) {
		if oe.Field == "Format" {
			badFormat[oe.Index] = true
		}
	}
	for _, oe := range OptionErrors(errors.Join(errs...)) {
		k := at{oe.Option, oe.Field, oe.Index}
		if seen[k] || oe.Option == "WithProvider" && oe.Field == "Surfaces" && badFormat[oe.Index] {
			continue
		}
		seen[k] = true
		out = append(out, oe)
	}
	return out
}

// Close releases the gateway's resources: idle upstream connections of the
// transport it created, and with WithKeyStore the key cache's watch and
// the last-used writer, whose pending times it flushes (for at most 5s). Requests arriving after Close get 503
// gateway_closed; requests in flight finish. Close is idempotent.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() {
		g.reloadMu.Lock()
		defer g.reloadMu.Unlock()
		g.closed.Store(true)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		g.routing.Load().auth.stop(ctx)
		cancel()
		g.routing.Load().meter.stop(nil)
		g.transport.CloseIdleConnections()
	})
	return nil
}

// Catalog returns the gateway's current catalog: the built-in one extended
// with the configured providers and models.
func (g *Gateway) Catalog() *catalog.Catalog { return g.routing.Load().catalog }

// Providers returns the IDs of the providers requests may reach: every
// enabled catalog provider, or only the configured ones under
// WithOnlyConfiguredProviders, configured first.
func (g *Gateway) Providers() []string {
	rt := g.routing.Load()
	var out []string
	for _, up := range rt.ordered {
		if !rt.cfg.onlyProviders || up.configured {
			out = append(out, up.id)
		}
	}
	return out
}

// PassThrough returns the pass-through mode in force.
func (g *Gateway) PassThrough() PassThroughMode { return g.routing.Load().cfg.passThrough }

// Metrics returns the recorder of the gateway's live upstream metrics (per
// provider model and per key): the one WithMetrics gave, or the gateway's
// own. Exporters read it with Each.
func (g *Gateway) Metrics() *metrics.Recorder { return g.routing.Load().metrics }

// endpoint describes one client API path.
type endpoint struct {
	surface providers.Surface // "" for GET /v1/models and /v1/models/{id}
	method  string
	model   string // the {id} of GET /v1/models/{id}
}

func lookupRoute(path string) (endpoint, bool) {
	switch path {
	case "/v1/chat/completions":
		return endpoint{surface: providers.SurfaceChatCompletions, method: http.MethodPost}, true
	case "/v1/messages":
		return endpoint{surface: providers.SurfaceMessages, method: http.MethodPost}, true
	case "/v1/responses":
		return endpoint{surface: providers.SurfaceResponses, method: http.MethodPost}, true
	case "/v1/embeddings":
		return endpoint{surface: providers.SurfaceEmbeddings, method: http.MethodPost}, true
	case "/v1/models":
		return endpoint{method: http.MethodGet}, true
	}
	if id, ok := strings.CutPrefix(path, "/v1/models/"); ok && id != "" {
		return endpoint{method: http.MethodGet, model: id}, true
	}
	return endpoint{}, false
}

// formatForPath guesses the client's API format from a path, for errors on
// paths that have no route.
func formatForPath(path string) providers.Format {
	if strings.HasPrefix(path, "/v1/messages") {
		return providers.FormatAnthropic
	}
	return providers.FormatOpenAI
}

// ServeHTTP serves the client API. Every response, errors included,
// carries Llmgate-Request-Id and Llmgate-Attempts, and every request emits
// one Event.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.inFlight.Add(1)
	defer g.inFlight.Add(-1)
	c := g.newCall(w, r)
	c.startTrace()   // with WithTracer: the request's span, its context the request's
	defer c.finish() // on every path: success, failure, disconnect, panic
	defer c.recoverPanic()
	if c.dispatch() {
		c.run()
	}
}

var attemptsZero = []string{"0"}

// dispatch answers what is not an API call (unknown routes, wrong methods,
// CORS preflights, model lists) and reports whether the request is an API
// call for run.
func (c *call) dispatch() bool {
	r := c.r
	// Routes match the path as sent, escapes included: "/v1/chat%2Fcompletions"
	// is not chat completions.
	path := r.URL.EscapedPath()
	ep, ok := lookupRoute(path)
	c.format = formatForPath(path)
	if len(c.cfg.allowedHosts) > 0 && !c.hostAllowed() {
		c.fail(errorf(KindHostNotAllowed, "requests for host %q are not served here (see WithAllowedHosts)", jsonSafe(truncate(r.Host, 256))))
		return false
	}
	if len(c.cfg.corsOrigins) > 0 && r.Header.Get("Origin") != "" {
		if !c.cors(ok) {
			return false
		}
	}
	switch {
	case !ok:
		c.fail(errorf(KindNotFound, "no route for %s %s; llmgate serves POST /v1/chat/completions, /v1/messages, /v1/responses, /v1/embeddings and GET /v1/models", r.Method, jsonSafe(path)))
		return false
	case r.Method != ep.method && !(ep.method == http.MethodGet && r.Method == http.MethodHead):
		c.w.Header().Set("Allow", ep.method)
		c.fail(errorf(KindMethodNotAllowed, "%s %s is not allowed; use %s", jsonSafe(r.Method), jsonSafe(path), ep.method))
		return false
	case c.g.closed.Load():
		c.fail(errorf(KindUnavailable, "the gateway is shutting down"))
		return false
	case ep.surface == "":
		c.w.Header()[HeaderAttempts] = attemptsZero
		if c.rt.auth != nil {
			// Where requests need a key, so does the model list.
			if e := c.authenticate(); e != nil {
				c.fail(e)
				return false
			}
		}
		if ep.model != "" {
			c.serveModel(ep.model)
		} else {
			c.serveModels()
		}
		return false
	}
	c.surface, c.format = ep.surface, ep.surface.Format()
	return true
}

// hostAllowed reports whether the request's Host, without its port, is
// one WithAllowedHosts lists.
func (c *call) hostAllowed() bool {
	host := c.r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	for _, h := range c.cfg.allowedHosts {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

var _ http.Handler = (*Gateway)(nil)

// contextErr distinguishes why a context ended.
var (
	errAttemptTimeout = errors.New("llmgate: per-attempt timeout")
	errTotalTimeout   = errors.New("llmgate: total timeout")
	errIdleTimeout    = errors.New("llmgate: stream idle timeout")
)
