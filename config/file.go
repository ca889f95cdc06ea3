package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/providers"
)

// File is a parsed configuration file. Its exported fields are the file's
// fields (the yaml tags give their names); nil pointers and empty lists
// keep the gateway's defaults. A File returned by Parse or ReadFile also
// remembers the line of every field, for Explain; a File built in Go has
// no lines, and its problems are reported by path only.
//
// A File is not modified by its methods and may be read concurrently.
type File struct {
	// Listen is the server's listen address (host:port). Server setting:
	// Options ignores it.
	Listen string `yaml:"listen"`
	// MaxConnections caps the connections the server serves at once; more
	// wait in the kernel's accept queue. Server setting: Options ignores it.
	MaxConnections *int `yaml:"max_connections"`
	// Log configures the server's log. Server setting: Options ignores it.
	Log Log `yaml:"log"`
	// Metrics configures the listener of the Prometheus metrics. Server
	// setting: Options ignores it.
	Metrics Metrics `yaml:"metrics"`
	// ShutdownTimeout bounds how long a graceful shutdown (SIGTERM or
	// SIGINT) waits for the requests in flight, long streams included,
	// before it closes their connections; default DefaultShutdownTimeout.
	// Server setting: Options ignores it.
	ShutdownTimeout *time.Duration `yaml:"shutdown_timeout"`

	// Store is the key store of gateway API keys: "sqlite:PATH" or a
	// "postgres://" URL (see StoreDSN). It may hold a password, so it
	// prints redacted (StoreName is its form for logs). Options ignores
	// it: the caller opens the store and adds gateway.WithKeyStore with
	// KeyStoreOptions.
	Store providers.Secret `yaml:"store"`
	// Endpoint names this gateway among those sharing the store: only
	// keys created for it work here. "" means DefaultEndpoint (see
	// EndpointName).
	Endpoint string `yaml:"endpoint"`
	// GatewayKeys is "required" (the default with a store: every request
	// needs a gateway key) or "optional" (requests without one are served
	// as if there were no store).
	GatewayKeys string `yaml:"gateway_keys"`
	// KeyEncryptionKeys seal the provider keys attached to gateway keys:
	// the first is current, the others are older ones still opened
	// during a rotation (see Sealer).
	KeyEncryptionKeys []KEK `yaml:"key_encryption_keys"`
	// Admin configures the admin API's listener. Server setting: Options
	// ignores it.
	Admin Admin `yaml:"admin"`
	// Credits configures usage records and prepaid credits, kept in the
	// store. Options ignores it: the caller adds gateway.WithMetering
	// with the opened store and MeteringOptions.
	Credits Credits `yaml:"credits"`
	// Limits bounds every request's tokens (gateway.WithTokenLimits).
	Limits Limits `yaml:"limits"`
	// Events are where every request's event goes: JSON lines or a
	// webhook. Options ignores them: the caller opens them once with
	// OpenEventSinks and adds their Options.
	Events []EventSink `yaml:"events"`
	// Inspector captures request and response bodies (redacted, bounded)
	// as JSON lines (gateway.WithInspector, sinks/jsonl). Off unless
	// enabled. Like events, Options ignores it: OpenEventSinks opens it.
	Inspector Inspector `yaml:"inspector"`
	// Tracing sends OpenTelemetry traces over OTLP/HTTP. Options ignores
	// it: the caller builds the exporter (see Tracing).
	Tracing Tracing `yaml:"tracing"`

	// PerRequestTimeout bounds one upstream attempt (gateway.WithTimeouts).
	PerRequestTimeout *time.Duration `yaml:"per_request_timeout"`
	// TotalTimeout bounds all attempts of a request (gateway.WithTimeouts).
	TotalTimeout *time.Duration `yaml:"total_timeout"`
	// StreamIdleTimeout cuts a committed stream that goes quiet
	// (gateway.WithStreamIdleTimeout).
	StreamIdleTimeout *time.Duration `yaml:"stream_idle_timeout"`
	// StreamKeepAlive is the keep-alive period of translated streams; 0
	// disables it (gateway.WithStreamKeepAlive).
	StreamKeepAlive *time.Duration `yaml:"stream_keep_alive"`
	// BodyReadTimeout bounds reading a request body
	// (gateway.WithClientTimeouts).
	BodyReadTimeout *time.Duration `yaml:"body_read_timeout"`
	// WriteTimeout bounds each write to a client
	// (gateway.WithClientTimeouts).
	WriteTimeout *time.Duration `yaml:"write_timeout"`
	// OnlyAllowConfiguredProviders refuses providers not listed in
	// Providers (gateway.WithOnlyConfiguredProviders). Nil means true when
	// Providers has an enabled entry, else false.
	OnlyAllowConfiguredProviders *bool `yaml:"only_allow_configured_providers"`
	// OnlyAllowConfiguredModels refuses models not listed under some
	// provider's Models (gateway.WithOnlyConfiguredModels).
	OnlyAllowConfiguredModels bool `yaml:"only_allow_configured_models"`
	// DefaultModels are tried, in order, for "auto" and model-less
	// requests (gateway.WithDefaultModels).
	DefaultModels []string `yaml:"default_models"`
	// MaxRequestBytes limits request bodies (gateway.WithMaxRequestBytes).
	MaxRequestBytes *int64 `yaml:"max_request_bytes"`
	// MaxResponseBytes limits upstream JSON bodies
	// (gateway.WithMaxResponseBytes).
	MaxResponseBytes *int64 `yaml:"max_response_bytes"`
	// MaxEventBytes limits one upstream SSE event
	// (gateway.WithMaxEventBytes).
	MaxEventBytes *int `yaml:"max_event_bytes"`
	// StreamHoldback bounds the held-back stream preamble
	// (gateway.WithStreamHoldback).
	StreamHoldback Holdback `yaml:"stream_holdback"`
	// FailFastStatuses are upstream statuses relayed instead of failed over
	// (gateway.WithFailFastStatuses).
	FailFastStatuses []int `yaml:"fail_fast_statuses"`
	// KeyCooldowns sets how long refused and rate-limited keys are skipped
	// (gateway.WithKeyCooldowns).
	KeyCooldowns KeyCooldowns `yaml:"key_cooldowns"`
	// MaxModels caps the models one request may name
	// (gateway.WithMaxModels).
	MaxModels *int `yaml:"max_models"`
	// MaxAttempts caps the upstream requests of one client request
	// (gateway.WithMaxAttempts).
	MaxAttempts *int `yaml:"max_attempts"`
	// PassThrough is "scoped", "off" or "any" (gateway.WithPassThrough).
	PassThrough string `yaml:"pass_through"`
	// ErrorDetail puts key IDs and upstream reasons in client error bodies
	// (gateway.WithErrorDetail).
	ErrorDetail bool `yaml:"error_detail"`
	// CORSOrigins are the browser origins allowed to call the gateway
	// (gateway.WithCORS).
	CORSOrigins []string `yaml:"cors_origins"`
	// ForwardHeaders are client headers sent upstream beyond the built-in
	// allow-list (gateway.WithForwardHeaders).
	ForwardHeaders []string `yaml:"forward_headers"`
	// AllowedHosts are the Host names served (gateway.WithAllowedHosts);
	// ["*"] means every Host. Nil leaves the choice to the server (which
	// allows only loopback names when it listens on a loopback address).
	AllowedHosts []string `yaml:"allowed_hosts"`
	// ModelSelection holds the CEL model selection strategies
	// (gateway.WithModelSelection).
	ModelSelection Selection `yaml:"model_selection"`
	// APIKeySelection orders every provider's keys: a built-in balancing
	// name or CEL key strategies (gateway.WithKeySelection).
	APIKeySelection Selection `yaml:"api_key_selection"`
	// RequestPolicy holds the rules for upstream requests that hold for
	// every provider (gateway.WithParamAllowList); each provider's and
	// model's own are under Providers.
	RequestPolicy RequestPolicy `yaml:"request_policy"`
	// Redaction finds and replaces text in request bodies and answers
	// (gateway.WithRedaction).
	Redaction Redaction `yaml:"redaction"`
	// Providers configures catalog providers and defines custom ones
	// (gateway.WithProvider, one per entry).
	Providers []Provider `yaml:"providers"`

	name     string            // the file's name, for errors
	lines    map[string]int    // field path → line
	bad      map[string]bool   // field paths with a problem of the file itself
	problems []*Problem        // the problems Parse found
	env      map[string]string // variables expanded: name → value, never printed
}

// Log configures logging.
type Log struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format is text (default) or json.
	Format string `yaml:"format"`
}

// Holdback is stream_holdback; a nil field keeps its default.
type Holdback struct {
	// Events is the most preamble events held back (default 64).
	Events *int `yaml:"events"`
	// Bytes is the most preamble bytes held back (default 256 KiB).
	Bytes *int `yaml:"bytes"`
}

// KeyCooldowns is key_cooldowns; a nil field keeps its default.
type KeyCooldowns struct {
	// Auth is how long a key refused with 401, 402 or 403 is skipped
	// (default 5m).
	Auth *time.Duration `yaml:"auth"`
	// RateLimit is how long a key is skipped after a 429 without
	// Retry-After (default 10s).
	RateLimit *time.Duration `yaml:"rate_limit"`
	// MaxRetryAfter caps the Retry-After honoured on a 429 (default 2m).
	MaxRetryAfter *time.Duration `yaml:"max_retry_after"`
}

// Selection is model_selection or api_key_selection.
type Selection struct {
	// Strategy lists CEL expressions tried in order; for
	// api_key_selection it may instead be one built-in name (ordered,
	// round_robin, weighted, least_in_flight, least_latency).
	Strategy []string `yaml:"strategy"`
}

// Provider is one entry of providers. Each field is the field of
// gateway.ProviderConfig with the same name (api_keys: Keys), passed as
// written; the package documentation describes them.
type Provider struct {
	ID           string            `yaml:"id"`
	Aliases      []string          `yaml:"aliases"`
	BaseURL      string            `yaml:"base_url"`
	Format       string            `yaml:"format"`
	Surfaces     []string          `yaml:"surfaces"`
	APIKeys      []APIKey          `yaml:"api_keys"`
	Headers      map[string]string `yaml:"headers"`
	QueryParams  map[string]string `yaml:"query_params"`
	AuthHeader   string            `yaml:"auth_header"`
	DefaultModel string            `yaml:"default_model"`
	StreamUsage  *bool             `yaml:"stream_usage"`
	Disabled     bool              `yaml:"disabled"`
	KeyPrefixes  []string          `yaml:"key_prefixes"`
	PassThrough  bool              `yaml:"pass_through"`
	Models       []Model           `yaml:"models"`
	// APIKeySelection overrides the file's api_key_selection for this
	// provider (gateway.ProviderConfig.KeySelection).
	APIKeySelection Selection `yaml:"api_key_selection"`
	// Policy changes every request sent to the provider
	// (gateway.ProviderConfig.Policy).
	Policy Policy `yaml:"policy"`
}

// APIKey is one upstream key of a provider (gateway.ProviderKey).
type APIKey struct {
	// Value is the credential; it is never printed.
	Value providers.Secret `yaml:"value"`
	// ID is an optional, non-secret name shown in logs and events.
	ID string `yaml:"id"`
	// Weight is the key's share under the weighted key selection
	// (gateway.ProviderKey.Weight).
	Weight int `yaml:"weight"`
}

// Model is one entry of providers[].models. Each field is the field of
// catalog.Model with the same name, passed as written, except Policy,
// the model's request policy (gateway.ProviderConfig.ModelPolicies).
type Model struct {
	ID               string         `yaml:"id"`
	Aliases          []string       `yaml:"aliases"`
	Author           string         `yaml:"author"`
	DisplayName      string         `yaml:"display_name"`
	ContextWindow    int            `yaml:"context_window"`
	MaxOutputTokens  int            `yaml:"max_output_tokens"`
	InputModalities  []string       `yaml:"input_modalities"`
	OutputModalities []string       `yaml:"output_modalities"`
	Features         []string       `yaml:"features"`
	Metadata         map[string]any `yaml:"metadata"`
	Pricing          Pricing        `yaml:"pricing"`
	Policy           Policy         `yaml:"policy"`
}

// Pricing is a model's price in integer micro-USD per million tokens.
type Pricing struct {
	Input      int64 `yaml:"input"`
	Output     int64 `yaml:"output"`
	CacheRead  int64 `yaml:"cache_read"`
	CacheWrite int64 `yaml:"cache_write"`
}

// Load reads the configuration file at path, expanding ${env:NAME} from
// the process environment, checks it with gateway.New (see File.Check) and
// returns its options. Every problem, of the file or found by
// gateway.New, is returned at once as an *Error naming the file, each
// with its field path and line. A host typically appends its own options:
//
//	opts, err := config.Load("llmgate.yaml")
//	if err != nil {
//		log.Fatal(err)
//	}
//	gw, err := gateway.New(append(opts, gateway.WithLogger(logger))...)
func Load(path string) ([]gateway.Option, error) {
	f, err := ReadFile(path, os.Getenv)
	if f == nil {
		return nil, err
	}
	if err := f.Check(); err != nil {
		return nil, err
	}
	return f.Options(), nil
}

// ReadFile reads and parses the file at path, as Parse does; problems are
// reported with the file's name.
func ReadFile(path string, env func(string) string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(data, env)
	var e *Error
	if errors.As(err, &e) {
		e.File = path
	}
	if f != nil {
		f.name = path
	}
	return f, err
}

// Parse parses a YAML configuration. env resolves ${env:NAME} references
// (os.Getenv, or a map lookup in tests).
//
// Parse checks only what is the file's own business: YAML syntax, unknown
// fields, values of the wrong YAML type, unset variables, the strings
// no option takes (log level and format, pass_through, modalities,
// listen, max_connections, metrics, shutdown_timeout), the key store fields (store, endpoint,
// gateway_keys, key_encryption_keys, admin), credits and events, which no
// option of File.Options carries, and limits. Everything the options take is checked by
// gateway.New; Explain maps its errors to the file.
//
// It returns every problem at once as an *Error. The File is returned even
// then, unless the YAML itself could not be parsed, with the faulty fields
// left at their zero values: Check, or gateway.New followed by Explain,
// then reports the problems of the rest as well.
func Parse(data []byte, env func(string) string) (*File, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, &Error{Problems: []*Problem{{Err: err, msg: err.Error()}}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		err := errors.New("the file must hold exactly one YAML document")
		return nil, &Error{Problems: []*Problem{{Err: err, msg: err.Error()}}}
	}
	d := &decoder{getenv: env, lines: map[string]int{}, raws: map[string]string{}, bad: map[string]bool{}, env: map[string]string{}}
	f := &File{}
	if root.Kind != 0 {
		d.decode(&root, reflect.ValueOf(f).Elem(), "")
	}
	d.requireVariables(f)
	d.check(f)
	f.lines, f.bad, f.env = d.lines, d.bad, d.env
	for _, e := range d.errs {
		f.problems = append(f.problems, &Problem{Path: e.path, Line: e.line, Err: errors.New(e.msg), msg: e.msg})
	}
	sortProblems(f.problems)
	if len(f.problems) > 0 {
		return f, &Error{Problems: f.problems}
	}
	return f, nil
}

// SlogLevel returns the slog level Level names; info when it is empty or
// unknown (Parse reports unknown levels).
func (l Log) SlogLevel() slog.Level {
	var level slog.Level
	_ = level.UnmarshalText([]byte(l.Level))
	return level
}

// NewLogger returns a logger writing to w in Format (text or json) at
// level; a nil level means l.SlogLevel().
func (l Log) NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	if level == nil {
		level = l.SlogLevel()
	}
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(l.Format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// check applies the rules of the file itself (those no gateway option
// checks).
func (d *decoder) check(f *File) {
	if f.Listen != "" && !d.bad["listen"] {
		if _, port, err := net.SplitHostPort(f.Listen); err != nil || !validPort(port) {
			d.failAt("listen", "%s is not a host:port address", d.show("listen", f.Listen))
		}
	}
	if f.MaxConnections != nil && *f.MaxConnections < 1 {
		d.failAt("max_connections", "must be at least 1, got %d", *f.MaxConnections)
		f.MaxConnections = nil
	}
	if f.Log.Level != "" && !oneOf(f.Log.Level, logLevels) {
		d.failAt("log.level", "%s is not one of %s", d.show("log.level", f.Log.Level), strings.Join(logLevels, ", "))
		f.Log.Level = ""
	}
	if f.Log.Format != "" && !oneOf(f.Log.Format, logFormats) {
		d.failAt("log.format", "%s is not one of %s", d.show("log.format", f.Log.Format), strings.Join(logFormats, ", "))
		f.Log.Format = ""
	}
	if f.PassThrough != "" {
		if _, err := gateway.ParsePassThroughMode(f.PassThrough); err != nil {
			d.failAt("pass_through", "%s is not one of scoped, off, any", d.show("pass_through", f.PassThrough))
		}
	}
	if len(f.AllowedHosts) > 1 {
		for i, h := range f.AllowedHosts {
			if h == "*" {
				d.failAt(fmt.Sprintf("allowed_hosts[%d]", i), `"*" (every host) must be the only entry`)
			}
		}
	}
	for i := range f.Providers {
		for j := range f.Providers[i].Models {
			m := &f.Providers[i].Models[j]
			path := fmt.Sprintf("providers[%d].models[%d]", i, j)
			for _, list := range []struct {
				field string
				vals  []string
			}{{"input_modalities", m.InputModalities}, {"output_modalities", m.OutputModalities}} {
				for k, v := range list.vals {
					if mp := fmt.Sprintf("%s.%s[%d]", path, list.field, k); !oneOf(v, modalities) {
						d.failAt(mp, "%s is not one of %s", d.show(mp, v), strings.Join(modalities, ", "))
					}
				}
			}
		}
	}
	d.checkServer(f)
	d.checkKeys(f)
	d.checkCredits(f)
	d.checkEvents(f)
	d.checkTracing(f)
	d.checkPolicies(f)
	d.checkRedaction(f)
}
