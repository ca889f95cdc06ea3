// Package anthropic implements providers.Provider for the Anthropic Messages
// API (and upstreams that speak it). It is a thin transport: it POSTs the
// prepared body to the base URL plus "messages" with the key and the
// anthropic-version header and returns the raw response, without retrying,
// parsing or translating anything.
package anthropic

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strings"
	"unicode"

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
	target    target
	version   string
	header    http.Header // canonical keys, validated
	authName  string
	bearer    bool
	userAgent string
	client    *http.Client
	traceable bool
}

type target struct {
	url   string // full request URL, with query
	shown string // URL without its query, for error text
}

var _ providers.Provider = (*Provider)(nil)

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
	base, err := parseBaseURL(rawBase)
	if err != nil {
		fail("%v", err)
	}

	version := cfg.Version
	if version == "" {
		version = DefaultVersion
	} else if !validHeaderValue(version) {
		fail("version has control characters")
	}

	header := make(http.Header, len(cfg.Header))
	for _, hname := range slices.Sorted(maps.Keys(cfg.Header)) {
		canon := http.CanonicalHeaderKey(hname)
		switch {
		case !validHeaderName(hname):
			fail("header name %q is not a valid token", hname)
			continue
		case reservedHeaders[canon]:
			fail("header %q is managed by the provider and cannot be set", canon)
			continue
		case canon == "Anthropic-Version":
			fail("header %q cannot be set: use Version", canon)
			continue
		}
		for _, v := range cfg.Header[hname] {
			if !validHeaderValue(v) {
				fail("header %q has a value with control characters", canon)
				continue
			}
			header.Add(canon, v)
		}
	}

	for _, k := range slices.Sorted(maps.Keys(cfg.Query)) {
		if k == "" {
			fail("query parameter names must not be empty")
		}
	}

	authName, bearer := "X-Api-Key", false
	if cfg.AuthHeader != "" {
		authName = http.CanonicalHeaderKey(cfg.AuthHeader)
		bearer = authName == "Authorization"
		switch {
		case !validHeaderName(cfg.AuthHeader):
			fail("auth header %q is not a valid header name", cfg.AuthHeader)
		case reservedHeaders[authName] || authName == "Anthropic-Version" || authName == "Anthropic-Beta":
			fail("auth header %q is managed by the provider", authName)
		}
	}

	userAgent := cfg.UserAgent
	if userAgent == "" {
		userAgent = DefaultUserAgent
	} else if !validHeaderValue(userAgent) {
		fail("user agent has control characters")
	}

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	client := cfg.Client
	if client == nil {
		client = newClient()
	}
	return &Provider{
		name:      name,
		target:    joinURL(base, cfg.Query, providers.SurfaceMessages.Path()),
		version:   version,
		header:    header,
		authName:  authName,
		bearer:    bearer,
		userAgent: userAgent,
		client:    client,
		traceable: traceable(client),
	}, nil
}

// parseBaseURL checks an API root URL.
func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the raw URL may hold credentials: do not echo it
		}
		return nil, fmt.Errorf("base URL is invalid: %v", err)
	}
	var problems []string
	if u.Scheme != "http" && u.Scheme != "https" {
		problems = append(problems, "scheme must be http or https")
	}
	if u.Opaque != "" || u.Host == "" {
		problems = append(problems, "host is required")
	}
	if u.User != nil {
		problems = append(problems, "credentials are not allowed in the URL (use the key or Header)")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		problems = append(problems, "fragment is not allowed")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("base URL %q: %s", u.Redacted(), strings.Join(problems, "; "))
	}
	return u, nil
}

// joinURL appends path to the base URL's path (adding the missing "/") and
// merges extra into its query.
func joinURL(base *url.URL, extra url.Values, path string) target {
	u := *base
	u.Path = strings.TrimSuffix(base.Path, "/") + "/" + path
	if base.RawPath != "" {
		u.RawPath = strings.TrimSuffix(base.RawPath, "/") + "/" + path
	}
	if len(extra) > 0 {
		q := base.Query()
		for k, vs := range extra {
			q[k] = slices.Clone(vs)
		}
		u.RawQuery = q.Encode()
	}
	full := u.String()
	u.RawQuery, u.ForceQuery = "", false
	return target{url: full, shown: u.String()}
}

// Name returns the provider ID (Config.Name or DefaultName).
func (p *Provider) Name() string { return p.name }

// Surfaces returns the one surface the provider serves: messages.
func (p *Provider) Surfaces() []providers.Surface {
	return []providers.Surface{providers.SurfaceMessages}
}

// URL returns the request URL Do uses (with the configured query). It is
// meant for diagnostics and tests; it never contains the key.
func (p *Provider) URL() string { return p.target.url }

// CloseIdleConnections closes the idle keep-alive connections of the
// provider's HTTP client. It does not interrupt requests in flight.
func (p *Provider) CloseIdleConnections() { p.client.CloseIdleConnections() }

// Do POSTs req.Body to the messages URL with key and returns the upstream
// response of any status, with its Body unread (the caller closes it).
//
// The request carries Content-Type: application/json, Accept
// (text/event-stream when req.Stream, else application/json), User-Agent,
// anthropic-version (the client's, if req.Header has one, else
// Config.Version), anthropic-beta (Config.Header's values and all of the
// client's), the other Config.Header entries and the key in the configured
// header (no credential at all when key.Secret is empty). No other client
// header is forwarded; credentials in req.Header never are.
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
	if !validHeaderValue(secret) {
		return nil, fmt.Errorf("anthropic: %s: key %q cannot be sent in a header (control characters): %w",
			p.name, key.ID, providers.ErrNotSent)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("anthropic: %s: %w: %w", p.name, providers.ErrNotSent, err)
	}

	var trace connTrace
	tctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: trace.gotConn})
	// A *bytes.Reader body makes NewRequest set ContentLength and GetBody, so
	// the transport can replay the body on a dead keep-alive connection.
	hreq, err := http.NewRequestWithContext(tctx, http.MethodPost, p.target.url, bytes.NewReader(req.Body))
	if err != nil {
		return nil, fmt.Errorf("anthropic: %s: %w: %w", p.name, providers.ErrNotSent, redactURL(err, p.target.shown))
	}
	hreq.Header = p.requestHeader(req, secret)

	resp, err := p.client.Do(hreq)
	if err != nil {
		err = redactURL(err, p.target.shown)
		if notSent(err, trace.got.Load(), p.traceable) {
			return nil, fmt.Errorf("anthropic: %s: %w: %w", p.name, providers.ErrNotSent, err)
		}
		return nil, fmt.Errorf("anthropic: %s: %w", p.name, err)
	}
	return &providers.Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: resp.Body}, nil
}

// requestHeader builds the upstream request header for one call.
func (p *Provider) requestHeader(req *providers.Request, secret string) http.Header {
	h := make(http.Header, len(p.header)+8)
	for k, vs := range p.header {
		h[k] = slices.Clone(vs)
	}
	version := req.Header.Get("Anthropic-Version")
	if version == "" || !validHeaderValue(version) {
		version = p.version
	}
	h.Set("Anthropic-Version", version)
	for _, v := range req.Header.Values("Anthropic-Beta") {
		if validHeaderValue(v) && !slices.Contains(h["Anthropic-Beta"], v) {
			h.Add("Anthropic-Beta", v)
		}
	}
	h.Set("Content-Type", "application/json")
	if req.Stream {
		h.Set("Accept", "text/event-stream")
	} else {
		h.Set("Accept", "application/json")
	}
	h.Set("User-Agent", p.userAgent)
	if secret != "" {
		if p.bearer {
			h.Set(p.authName, "Bearer "+secret)
		} else {
			h.Set(p.authName, secret)
		}
	}
	return h
}
