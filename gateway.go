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
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/internal/httpx"
	"github.com/llmgate/gateway/internal/jsonx"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/anthropic"
	"github.com/llmgate/gateway/providers/openai"
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
	// request was translated to a provider whose format has no counterpart.
	HeaderRemovedParams = "Llmgate-Removed-Params"
)

const passThroughKeyID = "client"

// Gateway is the AI gateway: an http.Handler. Create one with New; the zero
// value is not usable. Safe for concurrent use.
type Gateway struct {
	cfg            config
	catalog        *catalog.Catalog
	upstreams      map[string]*upstream // by lower-case provider ID
	ordered        []*upstream          // configured first (config order), then catalog order
	defaults       []catalog.Match      // the plan for "auto"
	configuredList string
	secrets        []string // every configured key value, for redaction
	counter        *tokens.Counter
	logger         *slog.Logger
	ownTransport   *http.Transport // closed by Close when the gateway created it
	closed         atomic.Bool
	closeOnce      sync.Once
}

// New builds a Gateway from options. It applies every option, then checks
// the rules between them, and returns every problem at once (errors.Join);
// nothing is left to fail at request time.
func New(opts ...Option) (*Gateway, error) {
	cfg := defaultConfig()
	var errs []error
	for _, o := range opts {
		if o == nil {
			errs = append(errs, errors.New("nil Option"))
			continue
		}
		if err := o.apply(&cfg); err != nil {
			errs = append(errs, err)
		}
	}
	if err := cfg.validate(); err != nil {
		errs = append(errs, err)
	}
	g := &Gateway{cfg: cfg, upstreams: map[string]*upstream{}, logger: cfg.logger, counter: tokens.NewCounter()}
	if g.logger == nil {
		g.logger = slog.Default()
	}
	if g.cfg.streamIdleTimeout == 0 {
		g.cfg.streamIdleTimeout = g.cfg.perAttemptTimeout
	}
	// Build even when options failed, so that catalog and provider problems
	// are reported in the same error.
	if err := g.build(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		if g.ownTransport != nil {
			g.ownTransport.CloseIdleConnections()
		}
		return nil, fmt.Errorf("llmgate: invalid configuration: %w", errors.Join(errs...))
	}
	return g, nil
}

// build assembles the catalog, the upstreams and the default plan.
func (g *Gateway) build() error {
	cfg := &g.cfg
	base := cfg.catalog
	if base == nil {
		var err error
		if base, err = catalog.Default(); err != nil {
			return fmt.Errorf("built-in catalog: %w", err)
		}
	}
	specs := make([]catalog.ProviderSpec, 0, len(cfg.providers))
	for _, p := range cfg.providers {
		spec := catalog.ProviderSpec{
			ID: p.ID, Aliases: p.Aliases, BaseURL: p.BaseURL, Format: p.Format, Surfaces: p.Surfaces,
			StreamUsage: p.StreamUsage, DefaultModel: p.DefaultModel, Models: p.Models, Disabled: p.Disabled,
			OwnTransport: p.Provider != nil,
		}
		specs = append(specs, spec)
	}
	cat, err := base.Extend(specs...)
	if err != nil {
		return err
	}
	g.catalog = cat

	hc := cfg.httpClient
	if hc == nil {
		// A dedicated transport that never follows redirects: a
		// redirected POST would replay the body and the credential
		// (x-api-key is not a header net/http strips) to another URL. The
		// 3xx answer fails the attempt instead.
		hc = httpx.NewClient()
		g.ownTransport, _ = hc.Transport.(*http.Transport)
	}

	var errs []error
	configured := map[string]*ProviderConfig{}
	var names []string
	for i := range cfg.providers {
		p := &cfg.providers[i]
		if p.Disabled {
			continue
		}
		cp, ok := cat.Provider(p.ID)
		if !ok {
			errs = append(errs, fmt.Errorf("provider %q missing after catalog merge", p.ID))
			continue
		}
		configured[lower(cp.ID)] = p
		names = append(names, cp.ID)
	}
	g.configuredList = strings.Join(names, ", ")
	pos := 0
	for _, cp := range cat.Providers() {
		pc := configured[lower(cp.ID)]
		up, err := g.newUpstream(cp, pc, hc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		up.order = len(names) + pos
		pos++
		if pc != nil {
			for j, n := range names {
				if strings.EqualFold(n, cp.ID) {
					up.order = j
				}
			}
		}
		g.upstreams[lower(cp.ID)] = up
		g.ordered = append(g.ordered, up)
	}
	sort.SliceStable(g.ordered, func(i, j int) bool { return g.ordered[i].order < g.ordered[j].order })
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return g.buildDefaults()
}

func (g *Gateway) newUpstream(cp *catalog.Provider, pc *ProviderConfig, hc *http.Client) (*upstream, error) {
	up := &upstream{id: cp.ID, cat: cp, format: cp.Format, streamUsage: cp.StreamUsage, listed: map[string]bool{}}
	up.surfaces = append(up.surfaces, cp.Surfaces...)
	var headers map[string]string
	var query map[string]string
	var authHeader string
	if pc != nil {
		up.configured = true
		headers, query, authHeader = pc.Headers, pc.QueryParams, pc.AuthHeader
		for i, k := range pc.Keys {
			id := k.ID
			if id == "" {
				id = "key-" + strconv.Itoa(i+1)
			}
			up.keys = append(up.keys, &keyState{key: providers.Key{ID: id, Secret: k.Value}})
			g.secrets = append(g.secrets, k.Value.Reveal())
		}
		for _, m := range pc.Models {
			if mm, ok := cp.Model(m.ID); ok {
				up.listed[lower(mm.ID)] = true
			}
		}
		if pc.Provider != nil {
			up.impl = pc.Provider
			if pc.Surfaces == nil {
				up.surfaces = pc.Provider.Surfaces()
			}
			return up, nil
		}
	}
	h := http.Header{}
	for k, v := range headers {
		h.Set(k, v)
	}
	q := map[string][]string{}
	for k, v := range query {
		q[k] = []string{v}
	}
	var err error
	switch up.format {
	case providers.FormatAnthropic:
		up.impl, err = anthropic.New(anthropic.Config{Name: cp.ID, BaseURL: cp.BaseURL, Header: h, Query: q, AuthHeader: authHeader, Client: hc})
	default:
		up.impl, err = openai.New(openai.Config{Name: cp.ID, BaseURL: cp.BaseURL, Surfaces: up.surfaces, Header: h, Query: q, AuthHeader: authHeader, Client: hc})
	}
	if err != nil {
		return nil, fmt.Errorf("provider %q: %w", cp.ID, err)
	}
	return up, nil
}

// buildDefaults resolves the plan used for "auto".
func (g *Gateway) buildDefaults() error {
	names := g.cfg.defaultModels
	if len(names) == 0 {
		for _, up := range g.ordered {
			if !up.configured || up.cat.DefaultModel == "" {
				continue
			}
			names = append(names, up.id+":"+up.cat.DefaultModel)
		}
	}
	if len(names) == 0 {
		for _, id := range []string{"openai", "anthropic"} {
			if up := g.upstreams[id]; up != nil && up.cat.DefaultModel != "" {
				names = append(names, up.id+":"+up.cat.DefaultModel)
			}
		}
	}
	var errs []error
	for _, n := range names {
		ms, err := g.catalog.Resolve(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("default model %q: %w", n, err))
			continue
		}
		g.defaults = append(g.defaults, ms...)
	}
	return errors.Join(errs...)
}

// Close releases the gateway's resources: idle upstream connections of the
// transport it created. Requests arriving after Close get 503
// gateway_closed; requests in flight finish. Close is idempotent.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() {
		g.closed.Store(true)
		if g.ownTransport != nil {
			g.ownTransport.CloseIdleConnections()
		}
	})
	return nil
}

// Catalog returns the gateway's catalog: the built-in one extended with the
// configured providers and models.
func (g *Gateway) Catalog() *catalog.Catalog { return g.catalog }

// endpoint describes one client API path.
type endpoint struct {
	surface providers.Surface // "" for GET /v1/models
	method  string
}

func lookupRoute(path string) (endpoint, bool) {
	switch path {
	case "/v1/chat/completions":
		return endpoint{providers.SurfaceChatCompletions, http.MethodPost}, true
	case "/v1/messages":
		return endpoint{providers.SurfaceMessages, http.MethodPost}, true
	case "/v1/responses":
		return endpoint{providers.SurfaceResponses, http.MethodPost}, true
	case "/v1/embeddings":
		return endpoint{providers.SurfaceEmbeddings, http.MethodPost}, true
	case "/v1/models":
		return endpoint{"", http.MethodGet}, true
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

// ServeHTTP serves the client API.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &call{g: g, w: w, r: r, reqID: newRequestID(), start: g.cfg.now()}
	// One backing array for the three per-request diagnostic headers.
	c.hdr = make([]string, 3)
	c.hdr[0] = c.reqID
	w.Header()[HeaderRequestID] = c.hdr[0:1:1]
	defer c.finish()
	defer c.recoverPanic()
	path := r.URL.Path
	rt, ok := lookupRoute(path)
	c.format = formatForPath(path)
	switch {
	case !ok:
		c.fail(errorf(KindNotFound, "no route for %s %s; llmgate serves POST /v1/chat/completions, /v1/messages, /v1/responses, /v1/embeddings and GET /v1/models", r.Method, path))
		return
	case r.Method != rt.method && !(rt.method == http.MethodGet && r.Method == http.MethodHead):
		w.Header().Set("Allow", rt.method)
		c.fail(errorf(KindMethodNotAllowed, "%s %s is not allowed; use %s", r.Method, path, rt.method))
		return
	case g.closed.Load():
		c.fail(errorf(KindUnavailable, "the gateway is shutting down"))
		return
	case rt.surface == "":
		c.status = http.StatusOK
		c.firstWrite = time.Now()
		w.Header()[HeaderAttempts] = attemptsZero
		g.serveModels(w, r)
		return
	}
	c.surface, c.format = rt.surface, rt.surface.Format()
	c.serve()
}

var attemptsZero = []string{"0"}

// recoverPanic turns a panic in the gateway into a 500 internal_error (or,
// once the response has started, an aborted connection), so one bad
// request never takes the host process down. http.ErrAbortHandler passes
// through.
func (c *call) recoverPanic() {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	c.g.logger.Error("llmgate: panic serving request", "request_id", c.reqID, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	if c.firstWrite.IsZero() {
		c.fail(&Error{Kind: KindInternal, Message: "internal error", Attempts: c.attempts, Err: fmt.Errorf("panic: %v", v)})
		return
	}
	c.err = &Error{Kind: KindInternal, Message: "internal error after the response started", Err: fmt.Errorf("panic: %v", v)}
	panic(http.ErrAbortHandler)
}

// newRequestID returns "req_" and 26 random base32 characters.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	var out [4 + 26]byte
	copy(out[:], "req_")
	base32.StdEncoding.WithPadding(base32.NoPadding).Encode(out[4:], b[:])
	for i := 4; i < len(out); i++ {
		if c := out[i]; c >= 'A' && c <= 'Z' {
			out[i] = c + ('a' - 'A')
		}
	}
	return string(out[:])
}

// serveModels answers GET /v1/models with every model the caller may use:
// in the OpenAI list shape with llmgate's metadata as extra fields, or, for
// a client that sends anthropic-version (the Anthropic SDKs), in Anthropic's
// shape. IDs are "provider:model", which every model grammar accepts.
func (g *Gateway) serveModels(w http.ResponseWriter, r *http.Request) {
	anthropicShape := r.Header.Get("Anthropic-Version") != ""
	buf := make([]byte, 0, 64<<10)
	if anthropicShape {
		buf = append(buf, `{"data":[`...)
	} else {
		buf = append(buf, `{"object":"list","data":[`...)
	}
	var firstID, lastID string
	for _, up := range g.ordered {
		if g.cfg.onlyProviders && !up.configured {
			continue
		}
		for _, m := range up.cat.Models {
			if g.cfg.onlyModels && !up.listed[lower(m.ID)] {
				continue
			}
			if firstID != "" {
				buf = append(buf, ',')
			} else {
				firstID = up.id + ":" + m.ID
			}
			lastID = up.id + ":" + m.ID
			if anthropicShape {
				buf = appendAnthropicModel(buf, up, m)
			} else {
				buf = appendModel(buf, up, m)
			}
		}
	}
	if anthropicShape {
		buf = append(buf, `],"has_more":false,"first_id":`...)
		buf = jsonx.AppendQuote(buf, firstID)
		buf = append(buf, `,"last_id":`...)
		buf = jsonx.AppendQuote(buf, lastID)
		buf = append(buf, '}')
	} else {
		buf = append(buf, "]}"...)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(buf)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf)
	}
}

func appendAnthropicModel(dst []byte, up *upstream, m *catalog.Model) []byte {
	name := m.DisplayName
	if name == "" {
		name = m.ID
	}
	dst = append(dst, `{"type":"model","id":`...)
	dst = jsonx.AppendQuote(dst, up.id+":"+m.ID)
	dst = append(dst, `,"display_name":`...)
	dst = jsonx.AppendQuote(dst, name)
	return append(dst, `,"created_at":"1970-01-01T00:00:00Z"}`...)
}

func appendModel(dst []byte, up *upstream, m *catalog.Model) []byte {
	owner := m.Author
	if owner == "" {
		owner = up.id
	}
	dst = append(dst, `{"id":`...)
	dst = jsonx.AppendQuote(dst, up.id+":"+m.ID)
	dst = append(dst, `,"object":"model","created":0,"owned_by":`...)
	dst = jsonx.AppendQuote(dst, owner)
	dst = append(dst, `,"provider":`...)
	dst = jsonx.AppendQuote(dst, up.id)
	dst = append(dst, `,"model":`...)
	dst = jsonx.AppendQuote(dst, m.ID)
	if m.DisplayName != "" {
		dst = append(dst, `,"display_name":`...)
		dst = jsonx.AppendQuote(dst, m.DisplayName)
	}
	if len(m.Aliases) > 0 {
		dst = append(dst, `,"aliases":[`...)
		for i, a := range m.Aliases {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonx.AppendQuote(dst, a)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"context_window":`...)
	dst = strconv.AppendInt(dst, int64(m.ContextWindow), 10)
	dst = append(dst, `,"max_output_tokens":`...)
	dst = strconv.AppendInt(dst, int64(m.MaxOutputTokens), 10)
	dst = append(dst, `,"surfaces":[`...)
	for i, s := range up.surfaces {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonx.AppendQuote(dst, string(s))
	}
	dst = append(dst, ']')
	if !m.Pricing.IsZero() {
		dst = append(dst, `,"pricing":{"input":`...)
		dst = strconv.AppendInt(dst, m.Pricing.Input, 10)
		dst = append(dst, `,"output":`...)
		dst = strconv.AppendInt(dst, m.Pricing.Output, 10)
		dst = append(dst, `,"cache_read":`...)
		dst = strconv.AppendInt(dst, m.Pricing.CacheRead, 10)
		dst = append(dst, `,"cache_write":`...)
		dst = strconv.AppendInt(dst, m.Pricing.CacheWrite, 10)
		dst = append(dst, `,"unit":"micro_usd_per_million_tokens"}`...)
	}
	if m.Deprecated {
		dst = append(dst, `,"deprecated":true`...)
	}
	return append(dst, '}')
}

// redact removes every configured secret and the client's credential from
// s, for reasons that quote upstream error text.
func (g *Gateway) redact(s string, clientKey providers.Secret) string {
	for _, sec := range g.secrets {
		if len(sec) >= 4 && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	if ck := clientKey.Reveal(); len(ck) >= 4 && strings.Contains(s, ck) {
		s = strings.ReplaceAll(s, ck, "[redacted]")
	}
	return s
}

var _ http.Handler = (*Gateway)(nil)

// contextErr distinguishes why a context ended.
var (
	errAttemptTimeout = errors.New("llmgate: per-attempt timeout")
	errTotalTimeout   = errors.New("llmgate: total timeout")
	errIdleTimeout    = errors.New("llmgate: stream idle timeout")
)
