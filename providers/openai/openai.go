// Package openai implements providers.Provider for every upstream that
// speaks OpenAI's wire format: OpenAI itself and the OpenAI-compatible APIs
// of Google, Groq, DeepSeek, OpenRouter, Ollama, vLLM, LM Studio, Azure-style
// deployments and others. It is a thin transport: it POSTs the prepared body
// to the base URL plus the surface path with the key and returns the raw
// response, without retrying, parsing or translating anything.
//
// Typical configurations:
//
//	openai.Config{Name: "openai", BaseURL: "https://api.openai.com/v1/"}
//	openai.Config{Name: "deepseek", BaseURL: "https://api.deepseek.com"}
//	openai.Config{Name: "ollama", BaseURL: "http://localhost:11434/v1",
//		Surfaces: []providers.Surface{providers.SurfaceChatCompletions, providers.SurfaceEmbeddings}}
//	openai.Config{Name: "azure", BaseURL: "https://res.openai.azure.com/openai/deployments/gpt-4o",
//		Query: url.Values{"api-version": {"2024-10-21"}}, AuthHeader: "api-key",
//		Surfaces: []providers.Surface{providers.SurfaceChatCompletions}}
package openai

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode"

	"github.com/llmgate/gateway/internal/httpx"
	"github.com/llmgate/gateway/providers"
)

// DefaultUserAgent is the User-Agent sent when Config.UserAgent is empty.
const DefaultUserAgent = "llmgate"

// Config configures a Provider. The zero value is not valid: Name and
// BaseURL are required. New copies everything it keeps, so the Config may be
// reused or modified after New returns.
type Config struct {
	// Name is the provider ID used in attempts and events (for example
	// "openai", "groq" or "my-ollama"). Required; no spaces or control
	// characters.
	Name string

	// BaseURL is the API root, http or https, for example
	// "https://api.openai.com/v1/" or "http://localhost:11434/v1". A missing
	// trailing "/" is added and the surface path (providers.Surface.Path,
	// such as "chat/completions") is appended. It may carry a query string
	// (merged with Query) but no credentials and no fragment. Required.
	BaseURL string

	// Surfaces lists the surfaces the upstream serves natively. Nil means
	// chat-completions, responses and embeddings; an empty non-nil slice is
	// an error. Every entry must be an OpenAI-format surface.
	Surfaces []providers.Surface

	// Header holds extra headers set on every request, for example custom
	// authentication for a keyless upstream or OpenRouter's HTTP-Referer
	// and X-Title. They take precedence over the client headers Do
	// forwards, and the key's authentication header (when the key is not
	// empty) takes precedence over them. Headers that Do or the transport
	// manage (Content-Type, Accept, User-Agent, Content-Length, Host,
	// hop-by-hop headers) are rejected.
	Header http.Header

	// Query holds extra query parameters added to every request URL (for
	// example Azure's api-version); a parameter here replaces one of the
	// same name in BaseURL. Query values never appear in error text.
	Query url.Values

	// AuthHeader names the header that carries the key. "" (or
	// "Authorization") sends "Authorization: Bearer <key>"; any other name
	// (Azure: "api-key") sends the raw key in that header.
	AuthHeader string

	// Client sends the requests. Nil means a dedicated *http.Client with a
	// tuned *http.Transport (HTTP/2, larger idle pools, 30s dial and 10s TLS
	// handshake timeouts), no Client.Timeout and no redirect following. A
	// Client.Timeout would cut off long streams: bound attempts with the
	// request context instead. A client of your own should not follow
	// redirects for the same reason the default does not: a redirected POST
	// replays the body and the credential to another URL.
	Client *http.Client

	// UserAgent is the User-Agent header; "" means DefaultUserAgent.
	UserAgent string
}

// Provider sends requests to one OpenAI-compatible upstream. It is
// immutable after New and safe for concurrent use.
type Provider struct {
	name      string
	surfaces  []providers.Surface
	targets   map[providers.Surface]httpx.Target
	header    http.Header // canonical keys, validated; values shared read-only by every request
	authName  string      // canonical header name carrying the key (Bearer scheme when Authorization)
	userAgent []string    // the one User-Agent value, shared read-only by every request
	client    *http.Client
	traceable bool
}

var _ providers.LeasesBody = (*Provider)(nil)

// defaultSurfaces are the surfaces a Provider serves when Config.Surfaces is
// nil.
var defaultSurfaces = []providers.Surface{
	providers.SurfaceChatCompletions,
	providers.SurfaceResponses,
	providers.SurfaceEmbeddings,
}

// Client headers forwarded from providers.Request.Header.
var (
	// forwarded whenever the client sent them (beta opt-ins and OpenRouter
	// attribution), unless Config.Header sets the same name.
	forwardAlways = []string{"Openai-Beta", "Http-Referer", "X-Title"}
	// forwarded only with a key passed through from the client: they name
	// the account that owns the key.
	forwardClientKey = []string{"Openai-Organization", "Openai-Project"}
)

// New validates cfg and returns a Provider. It reports every problem at
// once, joined with errors.Join, each prefixed "openai: ".
func New(cfg Config) (*Provider, error) {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("openai: "+format, args...))
	}

	if cfg.Name == "" {
		fail("name is required")
	} else if strings.ContainsFunc(cfg.Name, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) {
		fail("name %q must not contain spaces or control characters", cfg.Name)
	}

	base, err := httpx.ParseBaseURL(cfg.BaseURL)
	if err != nil {
		fail("%v", err)
	}

	surfaces := defaultSurfaces
	if cfg.Surfaces != nil {
		surfaces = cfg.Surfaces
		if len(surfaces) == 0 {
			fail("surfaces must not be empty (nil means the default surfaces)")
		}
	}
	seen := make(map[providers.Surface]bool, len(surfaces))
	for _, s := range surfaces {
		switch {
		case s.Format() != providers.FormatOpenAI:
			fail("surface %q is not an OpenAI-format surface", s)
		case seen[s]:
			fail("surface %q is listed twice", s)
		}
		seen[s] = true
	}

	header := httpx.ConfigHeader(cfg.Header, nil, fail)

	httpx.CheckQuery(cfg.Query, fail)
	authName := httpx.AuthHeader(cfg.AuthHeader, "Authorization", nil, fail)
	userAgent := httpx.UserAgent(cfg.UserAgent, DefaultUserAgent, fail)

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	client := cfg.Client
	if client == nil {
		client = httpx.NewClient()
	}
	p := &Provider{
		name:      cfg.Name,
		surfaces:  slices.Clone(surfaces),
		targets:   make(map[providers.Surface]httpx.Target, len(surfaces)),
		header:    header,
		authName:  authName,
		userAgent: userAgent,
		client:    client,
		traceable: httpx.Traceable(client),
	}
	for _, s := range surfaces {
		p.targets[s] = httpx.JoinURL(base, cfg.Query, s.Path())
	}
	return p, nil
}

// Name returns the provider ID from Config.Name.
func (p *Provider) Name() string { return p.name }

// LeasesBody marks the Provider as honouring providers.Request.BodyLease:
// the request body it hands to its transport holds the lease until the
// transport closes it.
func (p *Provider) LeasesBody() {}

// Surfaces returns the surfaces the upstream serves natively, in
// configuration order. The caller may modify the returned slice.
func (p *Provider) Surfaces() []providers.Surface { return slices.Clone(p.surfaces) }

// URL returns the request URL Do uses for surface s (with the configured
// query), or "" if the provider does not serve s. It is meant for
// diagnostics and tests; it never contains the key.
func (p *Provider) URL(s providers.Surface) string { return p.targets[s].URL }

// CloseIdleConnections closes the idle keep-alive connections of the
// provider's HTTP client. It does not interrupt requests in flight.
func (p *Provider) CloseIdleConnections() { p.client.CloseIdleConnections() }

// Do POSTs req.Body to the surface's URL with key and returns the upstream
// response of any status, with its Body unread (the caller closes it).
//
// The request carries Content-Type: application/json, Accept
// (text/event-stream when req.Stream, else application/json), User-Agent,
// Config.Header, the key in the configured header (no credential at all
// when key.Secret is empty), and from req.Header only OpenAI-Beta,
// HTTP-Referer and X-Title, plus OpenAI-Organization and OpenAI-Project
// when the key was passed through from the client
// (key.Source == providers.KeyClient), then req.TraceHeader and
// req.ExtraHeader (each replacing any of those), and req.ExtraQuery merged
// into the URL's query.
// Credentials in req.Header are never forwarded.
//
// The error wraps providers.ErrNotSent when the request provably never
// reached the upstream: it could not be built, ctx was done before it was
// sent, or no connection could be made (DNS, dial, proxy, TLS handshake).
// Error text never contains the key or the configured query.
func (p *Provider) Do(ctx context.Context, req *providers.Request, key providers.Key) (*providers.Response, error) {
	if req == nil {
		return nil, fmt.Errorf("openai: %s: nil request: %w", p.name, providers.ErrNotSent)
	}
	t, ok := p.targets[req.Surface]
	if !ok {
		return nil, fmt.Errorf("openai: %s does not serve surface %q: %w", p.name, req.Surface, providers.ErrNotSent)
	}
	secret := key.Secret.Reveal()
	if !httpx.ValidHeaderValue(secret) {
		return nil, fmt.Errorf("openai: %s %s: key %q cannot be sent in a header (control characters): %w",
			p.name, req.Surface, key.ID, providers.ErrNotSent)
	}
	if len(req.ExtraQuery) > 0 {
		var err error
		if t, err = httpx.WithQuery(t, req.ExtraQuery); err != nil {
			return nil, fmt.Errorf("openai: %s %s: %w: %w", p.name, req.Surface, providers.ErrNotSent, err)
		}
	}
	resp, notSent, err := httpx.Send(ctx, p.client, p.traceable, t, p.requestHeader(req, key, secret), req.Body, req.BodyLease)
	switch {
	case err == nil:
		return resp, nil
	case notSent:
		return nil, fmt.Errorf("openai: %s %s: %w: %w", p.name, req.Surface, providers.ErrNotSent, err)
	default:
		return nil, fmt.Errorf("openai: %s %s: %w", p.name, req.Surface, err)
	}
}

// requestHeader builds the upstream request header for one call. Its value
// slices may be shared with p.header, req.Header and httpx (see
// httpx.SetStandard): no one modifies them, and net/http only reads them.
func (p *Provider) requestHeader(req *providers.Request, key providers.Key, secret string) http.Header {
	h := make(http.Header, len(p.header)+8)
	maps.Copy(h, p.header)
	for _, name := range forwardAlways {
		if _, set := p.header[name]; set {
			continue
		}
		if vs := httpx.ValidValues(req.Header.Values(name)); len(vs) > 0 {
			h[name] = vs
		}
	}
	if key.Source == providers.KeyClient {
		// The organization and project belong to the account that owns the
		// key: with the client's key, the operator's configured ones do not
		// apply.
		for _, name := range forwardClientKey {
			delete(h, name)
			if vs := httpx.ValidValues(req.Header.Values(name)); len(vs) > 0 {
				h[name] = vs
			}
		}
	}
	httpx.SetExtra(h, req.TraceHeader, "")
	httpx.SetExtra(h, req.ExtraHeader, "")
	httpx.SetStandard(h, req.Stream, p.userAgent)
	httpx.SetKey(h, p.authName, secret)
	return h
}
