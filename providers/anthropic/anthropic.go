// Package anthropic implements providers.Provider for the Anthropic Messages
// API (and upstreams that speak it). It is a thin transport: it POSTs the
// prepared body to the base URL plus "messages" with the key and the
// anthropic-version header and returns the raw response, without retrying,
// parsing or translating anything.
package anthropic

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

// Defaults applied by New to empty Config fields.
const (
	DefaultName      = "anthropic"
	DefaultBaseURL   = "https://api.anthropic.com/v1/"
	DefaultVersion   = "2023-06-01"
	DefaultUserAgent = "llmgate"
)

// Config configures a Provider. The zero value is valid and means the
// public Anthropic API. New copies everything it keeps, so the Config may be
// reused or modified after New returns.
type Config struct {
	// Name is the provider ID used in attempts and events; "" means
	// DefaultName. No spaces or control characters.
	Name string

	// BaseURL is the API root, http or https; "" means DefaultBaseURL. A
	// missing trailing "/" is added and "messages" is appended. It may carry
	// a query string (merged with Query) but no credentials and no fragment.
	BaseURL string

	// Version is the anthropic-version header sent when the client did not
	// send one; "" means DefaultVersion.
	Version string

	// Header holds extra headers set on every request. Anthropic-Beta values
	// here are sent together with the client's. Headers Do or the transport
	// manage (Content-Type, Accept, User-Agent, Anthropic-Version,
	// Content-Length, Host, hop-by-hop headers) are rejected. The key's
	// authentication header (when the key is not empty) takes precedence.
	Header http.Header

	// Query holds extra query parameters added to every request URL; a
	// parameter here replaces one of the same name in BaseURL. Query values
	// never appear in error text.
	Query url.Values

	// AuthHeader names the header that carries the key. "" means
	// "x-api-key: <key>"; "Authorization" means "Authorization: Bearer
	// <key>"; any other name sends the raw key in that header.
	AuthHeader string

	// Client sends the requests. Nil means a dedicated *http.Client with a
	// tuned *http.Transport, no Client.Timeout (it would cut off long
	// streams: bound attempts with the request context instead) and no
	// redirect following (a redirected POST would replay the body and the
	// credential to another URL).
	Client *http.Client

	// UserAgent is the User-Agent header; "" means DefaultUserAgent.
	UserAgent string
}

// Provider sends requests to one Anthropic Messages upstream. It is
// immutable after New and safe for concurrent use.
type Provider struct {
	name      string
	target    httpx.Target
	version   []string    // the one default anthropic-version value, shared read-only by every request
	header    http.Header // canonical keys, validated; values shared read-only by every request
	authName  string      // canonical header name carrying the key (Bearer scheme when Authorization)
	userAgent []string    // the one User-Agent value, shared read-only by every request
	client    *http.Client
	traceable bool
}

var _ providers.LeasesBody = (*Provider)(nil)

// New validates cfg and returns a Provider. It reports every problem at
// once, joined with errors.Join, each prefixed "anthropic: ".
func New(cfg Config) (*Provider, error) {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("anthropic: "+format, args...))
	}

	name := cfg.Name
	if name == "" {
		name = DefaultName
	} else if strings.ContainsFunc(name, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) {
		fail("name %q must not contain spaces or control characters", name)
	}

	rawBase := cfg.BaseURL
	if rawBase == "" {
		rawBase = DefaultBaseURL
	}
	base, err := httpx.ParseBaseURL(rawBase)
	if err != nil {
		fail("%v", err)
	}

	version := cfg.Version
	if version == "" {
		version = DefaultVersion
	} else if !httpx.ValidHeaderValue(version) {
		fail("version has control characters")
	}

	header := httpx.ConfigHeader(cfg.Header, func(canon string) string {
		if canon == "Anthropic-Version" {
			return fmt.Sprintf("header %q cannot be set: use Version", canon)
		}
		return ""
	}, fail)

	httpx.CheckQuery(cfg.Query, fail)
	authName := httpx.AuthHeader(cfg.AuthHeader, "X-Api-Key", func(canon string) bool {
		return canon == "Anthropic-Version" || canon == "Anthropic-Beta"
	}, fail)
	userAgent := httpx.UserAgent(cfg.UserAgent, DefaultUserAgent, fail)

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	client := cfg.Client
	if client == nil {
		client = httpx.NewClient()
	}
	return &Provider{
		name:      name,
		target:    httpx.JoinURL(base, cfg.Query, providers.SurfaceMessages.Path()),
		version:   []string{version},
		header:    header,
		authName:  authName,
		userAgent: userAgent,
		client:    client,
		traceable: httpx.Traceable(client),
	}, nil
}

// Name returns the provider ID (Config.Name or DefaultName).
func (p *Provider) Name() string { return p.name }

// LeasesBody marks the Provider as honouring providers.Request.BodyLease:
// the request body it hands to its transport holds the lease until the
// transport closes it.
func (p *Provider) LeasesBody() {}

// Surfaces returns the one surface the provider serves: messages.
func (p *Provider) Surfaces() []providers.Surface {
	return []providers.Surface{providers.SurfaceMessages}
}

// URL returns the request URL Do uses (with the configured query). It is
// meant for diagnostics and tests; it never contains the key.
func (p *Provider) URL() string { return p.target.URL }

// CloseIdleConnections closes the idle keep-alive connections of the
// provider's HTTP client. It does not interrupt requests in flight.
func (p *Provider) CloseIdleConnections() { p.client.CloseIdleConnections() }

// Do POSTs req.Body to the messages URL with key and returns the upstream
// response of any status, with its Body unread (the caller closes it).
//
// The request carries Content-Type: application/json, Accept
// (text/event-stream when req.Stream, else application/json), User-Agent,
// anthropic-version (the client's, if req.Header has one, else
// Config.Version), anthropic-beta (Config.Header's values, all of the
// client's and req.ExtraHeader's), the other Config.Header entries,
// req.TraceHeader, the other req.ExtraHeader entries (each replacing any
// of those, anthropic-version included) and the key in the configured
// header (no credential at all when key.Secret is empty), at the messages
// URL with req.ExtraQuery merged into its query. No other client header is forwarded; credentials in
// req.Header never are.
//
// The error wraps providers.ErrNotSent when the request provably never
// reached the upstream: it could not be built, ctx was done before it was
// sent, or no connection could be made (DNS, dial, proxy, TLS handshake).
// Error text never contains the key or the configured query.
func (p *Provider) Do(ctx context.Context, req *providers.Request, key providers.Key) (*providers.Response, error) {
	if req == nil {
		return nil, fmt.Errorf("anthropic: %s: nil request: %w", p.name, providers.ErrNotSent)
	}
	if req.Surface != providers.SurfaceMessages {
		return nil, fmt.Errorf("anthropic: %s does not serve surface %q: %w", p.name, req.Surface, providers.ErrNotSent)
	}
	secret := key.Secret.Reveal()
	if !httpx.ValidHeaderValue(secret) {
		return nil, fmt.Errorf("anthropic: %s: key %q cannot be sent in a header (control characters): %w",
			p.name, key.ID, providers.ErrNotSent)
	}
	t, err := httpx.WithQuery(p.target, req.ExtraQuery)
	if err != nil {
		return nil, fmt.Errorf("anthropic: %s: %w: %w", p.name, providers.ErrNotSent, err)
	}
	resp, notSent, err := httpx.Send(ctx, p.client, p.traceable, t, p.requestHeader(req, secret), req.Body, req.BodyLease)
	switch {
	case err == nil:
		return resp, nil
	case notSent:
		return nil, fmt.Errorf("anthropic: %s: %w: %w", p.name, providers.ErrNotSent, err)
	default:
		return nil, fmt.Errorf("anthropic: %s: %w", p.name, err)
	}
}

// requestHeader builds the upstream request header for one call. Its value
// slices may be shared with p, req.Header and httpx (see
// httpx.SetStandard): no one modifies them, and net/http only reads them.
func (p *Provider) requestHeader(req *providers.Request, secret string) http.Header {
	h := make(http.Header, len(p.header)+8)
	maps.Copy(h, p.header)
	h["Anthropic-Version"] = p.version
	if vs := req.Header.Values("Anthropic-Version"); len(vs) > 0 && vs[0] != "" && httpx.ValidHeaderValue(vs[0]) {
		h["Anthropic-Version"] = vs[:1:1]
	}
	// Clipped, the configured slice is copied by the first append, never
	// written to.
	beta := slices.Clip(p.header["Anthropic-Beta"])
	for _, v := range req.Header.Values("Anthropic-Beta") {
		if httpx.ValidHeaderValue(v) && !slices.Contains(beta, v) {
			beta = append(beta, v)
		}
	}
	for _, v := range req.ExtraHeader["Anthropic-Beta"] {
		if httpx.ValidHeaderValue(v) && !slices.Contains(beta, v) {
			beta = append(beta, v)
		}
	}
	if len(beta) > 0 {
		h["Anthropic-Beta"] = beta
	}
	httpx.SetExtra(h, req.TraceHeader, "Anthropic-Beta")
	httpx.SetExtra(h, req.ExtraHeader, "Anthropic-Beta")
	httpx.SetStandard(h, req.Stream, p.userAgent)
	httpx.SetKey(h, p.authName, secret)
	return h
}
