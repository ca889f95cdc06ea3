package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/providers"
)

// DefaultListen is the address served when neither the configuration nor
// -listen sets one.
const DefaultListen = "127.0.0.1:8080"

// Config is the llmgate configuration file (YAML, snake_case field names,
// following the ai-gateway configuration it models). Zero fields keep the
// gateway's defaults. Every string value may contain ${env:NAME}
// references, expanded after YAML parsing.
type Config struct {
	// Listen is the address to serve on; "" means DefaultListen. The
	// -listen flag overrides it.
	Listen string `yaml:"listen"`
	// PerRequestTimeout bounds one upstream attempt (default 3m).
	PerRequestTimeout *time.Duration `yaml:"per_request_timeout"`
	// TotalTimeout bounds all attempts of a request together (default 6m).
	TotalTimeout *time.Duration `yaml:"total_timeout"`
	// StreamIdleTimeout cuts a committed stream that goes quiet (default:
	// the per-request timeout).
	StreamIdleTimeout *time.Duration `yaml:"stream_idle_timeout"`
	// OnlyAllowConfiguredProviders refuses providers not listed in
	// Providers.
	OnlyAllowConfiguredProviders bool `yaml:"only_allow_configured_providers"`
	// OnlyAllowConfiguredModels refuses models not listed under some
	// provider's Models.
	OnlyAllowConfiguredModels bool `yaml:"only_allow_configured_models"`
	// DefaultModels are tried, in order, for "auto" and model-less
	// requests.
	DefaultModels []string `yaml:"default_models"`
	// MaxRequestBytes limits request bodies (default 32 MiB).
	MaxRequestBytes *int64 `yaml:"max_request_bytes"`
	// FailFastStatuses are upstream statuses that end a request instead of
	// failing over.
	FailFastStatuses []int `yaml:"fail_fast_statuses"`
	// Log configures the server's log.
	Log LogConfig `yaml:"log"`
	// Providers configures catalog providers and defines custom ones.
	Providers []ProviderConfig `yaml:"providers"`

	// options are the gateway options built from the valid fields.
	options []gateway.Option
}

// LogConfig configures logging.
type LogConfig struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format is text (default) or json.
	Format string `yaml:"format"`
}

// ProviderConfig is one entry of providers.
type ProviderConfig struct {
	ID           string            `yaml:"id"`
	Aliases      []string          `yaml:"aliases"`
	BaseURL      string            `yaml:"base_url"`
	Format       string            `yaml:"format"`
	Surfaces     []string          `yaml:"surfaces"`
	APIKeys      []APIKeyConfig    `yaml:"api_keys"`
	Headers      map[string]string `yaml:"headers"`
	QueryParams  map[string]string `yaml:"query_params"`
	AuthHeader   string            `yaml:"auth_header"`
	DefaultModel string            `yaml:"default_model"`
	StreamUsage  *bool             `yaml:"stream_usage"`
	Disabled     bool              `yaml:"disabled"`
	Models       []ModelConfig     `yaml:"models"`
}

// APIKeyConfig is one upstream key of a provider.
type APIKeyConfig struct {
	// Value is the credential; it is never printed.
	Value providers.Secret `yaml:"value"`
	// ID is an optional, non-secret name shown in logs and events.
	ID string `yaml:"id"`
}

// ModelConfig is one entry of providers[].models.
type ModelConfig struct {
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
	Pricing          PricingConfig  `yaml:"pricing"`
}

// PricingConfig is a model's price in integer micro-USD per million tokens.
type PricingConfig struct {
	Input      int64 `yaml:"input"`
	Output     int64 `yaml:"output"`
	CacheRead  int64 `yaml:"cache_read"`
	CacheWrite int64 `yaml:"cache_write"`
}

// Options returns the gateway options the configuration describes. When
// LoadConfig reported problems, the options leave out the invalid fields
// (and providers with an invalid id, format or base_url), so that
// gateway.New can still report the problems of the rest.
func (c *Config) Options() []gateway.Option {
	return slices.Clone(c.options)
}

// ListenAddr returns Listen or DefaultListen.
func (c *Config) ListenAddr() string {
	if c.Listen == "" {
		return DefaultListen
	}
	return c.Listen
}

// NewLogger returns the logger the log section describes, writing to w.
func (c *Config) NewLogger(w io.Writer) *slog.Logger {
	return newLogger(c.Log, w)
}

func newLogger(lc LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(lc.Level)) // validated; "" is info
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(lc.Format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// ConfigError lists every problem found in a configuration, each prefixed
// with the path of its field (and its line when known).
type ConfigError struct {
	// File is the configuration file's name, "" when not read from a file.
	File string
	// Problems are the individual problems, in document order.
	Problems []error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if len(e.Problems) == 1 {
		b.WriteString("invalid configuration: ")
		b.WriteString(e.Problems[0].Error())
		return b.String()
	}
	fmt.Fprintf(&b, "invalid configuration (%d problems):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap returns the problems.
func (e *ConfigError) Unwrap() []error { return e.Problems }

// fieldError is one problem with one field.
type fieldError struct {
	path string
	line int
	msg  string
}

func (e *fieldError) Error() string {
	s := e.msg
	if e.path != "" {
		s = e.path + ": " + s
	}
	if e.line > 0 {
		s += " (line " + strconv.Itoa(e.line) + ")"
	}
	return s
}

// LoadConfig parses a YAML configuration. getenv resolves ${env:NAME}
// references; an unset or empty variable is an error. It returns every
// problem at once as a *ConfigError; the Config is then still returned
// when the YAML itself could be parsed, with Options holding what was
// valid. A YAML syntax error returns a nil Config.
func LoadConfig(data []byte, getenv func(string) string) (*Config, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, &ConfigError{Problems: []error{err}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &ConfigError{Problems: []error{errors.New("the file must hold exactly one YAML document")}}
	}
	d := &decoder{getenv: getenv, lines: map[string]int{}, raws: map[string]string{}, bad: map[string]bool{}}
	c := &Config{}
	if root.Kind != 0 {
		d.decode(&root, reflect.ValueOf(c).Elem(), "")
	}
	d.check(c)
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].line < d.errs[j].line })
		problems := make([]error, len(d.errs))
		for i, e := range d.errs {
			problems[i] = e
		}
		return c, &ConfigError{Problems: problems}
	}
	return c, nil
}

// decoder walks a YAML node tree into a Go value, collecting every problem
// with its field path instead of stopping at the first.
type decoder struct {
	getenv func(string) string
	lines  map[string]int    // field path → line
	raws   map[string]string // field path → scalar text before ${env:} expansion
	bad    map[string]bool   // field paths that could not be decoded
	errs   []*fieldError
}

func (d *decoder) fail(path string, line int, format string, args ...any) {
	d.bad[path] = true
	d.errs = append(d.errs, &fieldError{path: path, line: line, msg: fmt.Sprintf(format, args...)})
}

// failAt reports a problem found after decoding, at the line of its path
// (or of its closest parent when the field is absent).
func (d *decoder) failAt(path, format string, args ...any) {
	d.fail(path, d.lineOf(path), format, args...)
}

func (d *decoder) lineOf(path string) int {
	for path != "" {
		if l, ok := d.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// show quotes the value of the field at path for an error message. When
// the value came from ${env:...} references it shows the text as written,
// never the expanded value, which may be secret.
func (d *decoder) show(path, value string) string {
	if raw, ok := d.raws[path]; ok && raw != value {
		return strconv.Quote(raw)
	}
	return strconv.Quote(value)
}

var durationType = reflect.TypeFor[time.Duration]()

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return "a scalar"
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// decode stores node n into v; path names v in errors.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 1 {
			d.decode(n.Content[0], v, path)
		}
		return
	case yaml.AliasNode:
		d.decode(n.Alias, v, path)
		return
	}
	if path != "" {
		d.lines[path] = n.Line
	}
	if isNull(n) {
		return // keep the zero value
	}
	t := v.Type()
	switch {
	case t.Kind() == reflect.Pointer:
		p := reflect.New(t.Elem())
		before := len(d.errs)
		d.decode(n, p.Elem(), path)
		if len(d.errs) == before {
			v.Set(p) // only a value that decoded counts as set
		}
	case t == durationType:
		s, ok := d.scalar(n, path, "a duration")
		if !ok {
			return
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.fail(path, n.Line, "%q is not a duration (use Go syntax such as 90s, 3m or 1h30m)", n.Value)
			return
		}
		v.SetInt(int64(dur))
	case t.Kind() == reflect.String:
		s, ok := d.scalar(n, path, "a string")
		if ok {
			v.SetString(s)
		}
	case t.Kind() == reflect.Bool:
		s, ok := d.scalar(n, path, "a boolean")
		if !ok {
			return
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			d.fail(path, n.Line, "%q is not a boolean (true or false)", n.Value)
			return
		}
		v.SetBool(b)
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		s, ok := d.scalar(n, path, "an integer")
		if !ok {
			return
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 0, t.Bits())
		if err != nil {
			d.fail(path, n.Line, "%q is not an integer", n.Value)
			return
		}
		v.SetInt(i)
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(path, n.Line, "expected a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), path+"["+strconv.Itoa(i)+"]")
		}
		v.Set(s)
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(path, n.Line, "expected a mapping, got %s", kindName(n))
			return
		}
		m := reflect.MakeMapWithSize(t, len(n.Content)/2)
		for _, merged := range mergedNodes(n) {
			tmp := reflect.New(t).Elem()
			d.decode(merged, tmp, path)
			for it := tmp.MapRange(); it.Next(); {
				m.SetMapIndex(it.Key(), it.Value())
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			switch {
			case isMergeKey(k):
			case k.Kind != yaml.ScalarNode:
				d.fail(path, k.Line, "map keys must be strings")
			default:
				elem := reflect.New(t.Elem()).Elem()
				d.decode(val, elem, join(path, k.Value))
				m.SetMapIndex(reflect.ValueOf(k.Value).Convert(t.Key()), elem)
			}
		}
		v.Set(m)
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.fail(path, n.Line, "expected a mapping, got %s", kindName(n))
			return
		}
		for _, merged := range mergedNodes(n) {
			d.decode(merged, v, path)
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if isMergeKey(k) {
				continue
			}
			idx, ok := fields[k.Value]
			if !ok {
				msg := "unknown field"
				if s := suggest(k.Value, fields); s != "" {
					msg += fmt.Sprintf("; did you mean %q?", s)
				}
				d.fail(join(path, k.Value), k.Line, "%s", msg)
				continue
			}
			d.decode(val, v.Field(idx), join(path, k.Value))
		}
	case t.Kind() == reflect.Interface:
		v.Set(reflect.ValueOf(d.anyValue(n, path)))
	default:
		d.fail(path, n.Line, "unsupported field type %s", t) // a bug in Config
	}
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Tag == "!!merge"
}

// mergedNodes returns the mappings merged into n with YAML merge keys
// ("<<: *defaults" or "<<: [*a, *b]"), to be decoded before n's own keys,
// which override them as a whole (a merge is shallow). Of several merged
// mappings the first wins, so they are returned last to first.
func mergedNodes(n *yaml.Node) []*yaml.Node {
	var out []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, val := n.Content[i], n.Content[i+1]; isMergeKey(k) {
			if val.Kind == yaml.SequenceNode {
				for j := len(val.Content) - 1; j >= 0; j-- {
					out = append(out, val.Content[j])
				}
			} else {
				out = append(out, val)
			}
		}
	}
	return out
}

// scalar returns the text of a scalar node, with ${env:NAME} expanded.
func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.fail(path, n.Line, "expected %s, got %s", want, kindName(n))
		return "", false
	}
	d.raws[path] = n.Value
	return d.expand(n.Value, path, n.Line)
}

// anyValue decodes free-form data (metadata), expanding strings.
func (d *decoder) anyValue(n *yaml.Node, path string) any {
	switch n.Kind {
	case yaml.AliasNode:
		return d.anyValue(n.Alias, path)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for _, merged := range mergedNodes(n) {
			if mm, ok := d.anyValue(merged, path).(map[string]any); ok {
				for k, v := range mm {
					m[k] = v
				}
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; !isMergeKey(k) {
				m[k.Value] = d.anyValue(n.Content[i+1], join(path, k.Value))
			}
		}
		return m
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, item := range n.Content {
			s[i] = d.anyValue(item, path+"["+strconv.Itoa(i)+"]")
		}
		return s
	}
	var x any
	if err := n.Decode(&x); err != nil {
		d.fail(path, n.Line, "invalid value")
		return nil
	}
	if s, ok := x.(string); ok {
		x, _ = d.expand(s, path, n.Line)
	}
	return x
}

// expand replaces every ${env:NAME} in s with the variable's value. It never
// prints the value, only the reference.
func (d *decoder) expand(s, path string, line int) (string, bool) {
	const open = "${env:"
	if !strings.Contains(s, open) {
		return s, true
	}
	var b strings.Builder
	ok := true
	for {
		i := strings.Index(s, open)
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		rest := s[i+len(open):]
		j := strings.IndexByte(rest, '}')
		if j < 0 {
			d.fail(path, line, "unterminated ${env:...} reference")
			return "", false
		}
		name := rest[:j]
		switch {
		case !validEnvName(name):
			d.fail(path, line, "${env:%s} is not a valid variable reference", name)
			ok = false
		case d.getenv(name) == "":
			d.fail(path, line, "${env:%s} is not set", name)
			ok = false
		default:
			b.WriteString(d.getenv(name))
		}
		s = rest[j+1:]
	}
	return b.String(), ok
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// yamlFields maps the yaml names of t's fields to their indexes.
func yamlFields(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.IsExported() && name != "" && name != "-" {
			m[name] = i
		}
	}
	return m
}

// suggest returns the known field closest to name, if one is close: at
// most two edits away, or a prefix of it or the other way round.
func suggest(name string, fields map[string]int) string {
	name = strings.ToLower(name)
	best, bestDist := "", -1
	for f := range fields {
		d := editDistance(name, f)
		if d > 2 && !strings.HasPrefix(name, f) && !strings.HasPrefix(f, name) {
			continue
		}
		if bestDist < 0 || d < bestDist || d == bestDist && f < best {
			best, bestDist = f, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// ---- semantic checks -------------------------------------------------

var (
	logLevels   = []string{"debug", "info", "warn", "error"}
	logFormats  = []string{"text", "json"}
	formats     = []string{string(providers.FormatOpenAI), string(providers.FormatAnthropic)}
	surfaceList = []string{
		string(providers.SurfaceChatCompletions), string(providers.SurfaceResponses),
		string(providers.SurfaceEmbeddings), string(providers.SurfaceMessages),
	}
	modalities = []string{"text", "image", "audio", "video", "file", "embedding"}
)

// validPort reports whether s is a port number (0 picks a free port).
func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && n <= 65535
}

func oneOf(v string, allowed []string) bool {
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return true
		}
	}
	return false
}

// check validates the decoded configuration and builds c.options from the
// valid parts.
func (d *decoder) check(c *Config) {
	var opts []gateway.Option
	if c.Listen != "" && !d.bad["listen"] {
		if _, port, err := net.SplitHostPort(c.Listen); err != nil || !validPort(port) {
			d.failAt("listen", "%s is not a host:port address", d.show("listen", c.Listen))
		}
	}
	positive := func(path string, v *time.Duration) bool {
		if v != nil && *v <= 0 {
			d.failAt(path, "must be positive, got %v", *v)
			return false
		}
		return v != nil
	}
	per, total := gateway.DefaultPerAttemptTimeout, gateway.DefaultTotalTimeout
	perOK := positive("per_request_timeout", c.PerRequestTimeout)
	totalOK := positive("total_timeout", c.TotalTimeout)
	if perOK {
		per = *c.PerRequestTimeout
	}
	if totalOK {
		total = *c.TotalTimeout
	}
	switch {
	case per > total && perOK:
		d.failAt("per_request_timeout", "%v exceeds total_timeout %v", per, total)
	case per > total:
		d.failAt("total_timeout", "%v is less than per_request_timeout %v", total, per)
	case perOK || totalOK:
		opts = append(opts, gateway.WithTimeouts(per, total))
	}
	if positive("stream_idle_timeout", c.StreamIdleTimeout) {
		opts = append(opts, gateway.WithStreamIdleTimeout(*c.StreamIdleTimeout))
	}
	opts = append(opts,
		gateway.WithOnlyConfiguredProviders(c.OnlyAllowConfiguredProviders),
		gateway.WithOnlyConfiguredModels(c.OnlyAllowConfiguredModels))
	if len(c.DefaultModels) > 0 {
		valid := true
		for i, m := range c.DefaultModels {
			if strings.TrimSpace(m) == "" {
				d.failAt(fmt.Sprintf("default_models[%d]", i), "is empty")
				valid = false
			}
		}
		if valid {
			opts = append(opts, gateway.WithDefaultModels(c.DefaultModels...))
		}
	}
	if c.MaxRequestBytes != nil {
		if *c.MaxRequestBytes <= 0 {
			d.failAt("max_request_bytes", "must be positive, got %d", *c.MaxRequestBytes)
		} else {
			opts = append(opts, gateway.WithMaxRequestBytes(*c.MaxRequestBytes))
		}
	}
	var statuses []int
	for i, s := range c.FailFastStatuses {
		if d.bad[fmt.Sprintf("fail_fast_statuses[%d]", i)] {
			continue
		}
		if s < 400 || s > 599 {
			d.failAt(fmt.Sprintf("fail_fast_statuses[%d]", i), "%d is not a 4xx or 5xx status", s)
			continue
		}
		statuses = append(statuses, s)
	}
	if len(statuses) > 0 {
		opts = append(opts, gateway.WithFailFastStatuses(statuses...))
	}
	if c.Log.Level != "" && !oneOf(c.Log.Level, logLevels) {
		d.failAt("log.level", "%s is not one of %s", d.show("log.level", c.Log.Level), strings.Join(logLevels, ", "))
		c.Log.Level = ""
	}
	if c.Log.Format != "" && !oneOf(c.Log.Format, logFormats) {
		d.failAt("log.format", "%s is not one of %s", d.show("log.format", c.Log.Format), strings.Join(logFormats, ", "))
		c.Log.Format = ""
	}

	seen := map[string]int{} // lower-case ID → index
	for i := range c.Providers {
		if d.bad[fmt.Sprintf("providers[%d]", i)] {
			continue // not a mapping
		}
		if pc, ok := d.checkProvider(&c.Providers[i], fmt.Sprintf("providers[%d]", i), i, seen); ok {
			opts = append(opts, gateway.WithProvider(pc))
		}
	}
	c.options = opts
}

// checkProvider validates one provider and converts it; ok is false when
// the provider is too broken to hand to the gateway.
func (d *decoder) checkProvider(p *ProviderConfig, path string, index int, seen map[string]int) (gateway.ProviderConfig, bool) {
	ok := true
	switch id := strings.ToLower(strings.TrimSpace(p.ID)); {
	case id == "":
		d.failAt(join(path, "id"), "is required")
		ok = false
	case strings.ContainsAny(id, ": /"):
		d.failAt(join(path, "id"), "%s must not contain ':', '/' or spaces", d.show(join(path, "id"), p.ID))
		ok = false
	default:
		if j, dup := seen[id]; dup {
			d.failAt(join(path, "id"), "%s is already configured by providers[%d]", d.show(join(path, "id"), p.ID), j)
			ok = false
		} else {
			seen[id] = index
		}
	}
	if p.Format != "" && !oneOf(p.Format, formats) {
		d.failAt(join(path, "format"), "%s is not one of %s", d.show(join(path, "format"), p.Format), strings.Join(formats, ", "))
		ok = false
	}
	if p.BaseURL != "" {
		u, err := url.Parse(p.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			d.failAt(join(path, "base_url"), "%s is not an absolute http:// or https:// URL", d.show(join(path, "base_url"), p.BaseURL))
			ok = false
		}
	}
	out := gateway.ProviderConfig{
		ID: strings.TrimSpace(p.ID), Aliases: p.Aliases, BaseURL: p.BaseURL,
		Format: providers.Format(strings.ToLower(p.Format)), DefaultModel: p.DefaultModel,
		StreamUsage: p.StreamUsage, Disabled: p.Disabled,
	}
	for i, a := range p.Aliases {
		if strings.TrimSpace(a) == "" {
			d.failAt(fmt.Sprintf("%s.aliases[%d]", path, i), "is empty")
		}
	}
	for i, s := range p.Surfaces {
		if sp := fmt.Sprintf("%s.surfaces[%d]", path, i); !oneOf(s, surfaceList) {
			d.failAt(sp, "%s is not one of %s", d.show(sp, s), strings.Join(surfaceList, ", "))
			continue
		}
		out.Surfaces = append(out.Surfaces, providers.Surface(strings.ToLower(s)))
	}
	keyIDs := map[string]int{}
	for i, k := range p.APIKeys {
		kp := fmt.Sprintf("%s.api_keys[%d]", path, i)
		valid := true
		if k.Value == "" {
			if !d.bad[join(kp, "value")] { // an unset ${env:...} was reported already
				d.failAt(join(kp, "value"), "is required")
			}
			valid = false
		}
		id := k.ID
		if id == "" {
			id = "key-" + strconv.Itoa(i+1)
		}
		switch j, dup := keyIDs[id]; {
		case id == "client":
			d.failAt(join(kp, "id"), "%s is reserved for keys passed through from clients", d.show(join(kp, "id"), id))
			valid = false
		case dup:
			d.failAt(join(kp, "id"), "%s is already used by api_keys[%d]", d.show(join(kp, "id"), id), j)
			valid = false
		default:
			keyIDs[id] = i
		}
		if valid {
			out.Keys = append(out.Keys, gateway.ProviderKey{ID: k.ID, Value: k.Value})
		}
	}
	out.Headers = d.checkHeaders(p.Headers, join(path, "headers"))
	out.QueryParams = p.QueryParams
	if p.AuthHeader != "" && !validHeaderName(p.AuthHeader) {
		d.failAt(join(path, "auth_header"), "%s is not a valid header name", d.show(join(path, "auth_header"), p.AuthHeader))
	} else {
		out.AuthHeader = p.AuthHeader
	}
	for i := range p.Models {
		if m, ok := d.checkModel(&p.Models[i], fmt.Sprintf("%s.models[%d]", path, i)); ok {
			out.Models = append(out.Models, m)
		}
	}
	return out, ok
}

func (d *decoder) checkHeaders(h map[string]string, path string) map[string]string {
	var out map[string]string
	for k, v := range h {
		switch {
		case !validHeaderName(k):
			d.failAt(join(path, k), "%q is not a valid header name", k) // a key, never expanded
		case strings.ContainsAny(v, "\r\n\x00"):
			d.failAt(join(path, k), "header values must not contain line breaks")
		default:
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

func (d *decoder) checkModel(m *ModelConfig, path string) (catalog.Model, bool) {
	ok := true
	if strings.TrimSpace(m.ID) == "" {
		d.failAt(join(path, "id"), "is required")
		ok = false
	}
	nonNegative := func(field string, v int64) {
		if v < 0 {
			d.failAt(join(path, field), "must not be negative, got %d", v)
			ok = false
		}
	}
	nonNegative("context_window", int64(m.ContextWindow))
	nonNegative("max_output_tokens", int64(m.MaxOutputTokens))
	nonNegative("pricing.input", m.Pricing.Input)
	nonNegative("pricing.output", m.Pricing.Output)
	nonNegative("pricing.cache_read", m.Pricing.CacheRead)
	nonNegative("pricing.cache_write", m.Pricing.CacheWrite)
	for _, list := range []struct {
		field string
		vals  []string
	}{{"input_modalities", m.InputModalities}, {"output_modalities", m.OutputModalities}} {
		for i, v := range list.vals {
			if mp := fmt.Sprintf("%s.%s[%d]", path, list.field, i); !oneOf(v, modalities) {
				d.failAt(mp, "%s is not one of %s", d.show(mp, v), strings.Join(modalities, ", "))
				ok = false
			}
		}
	}
	return catalog.Model{
		ID: strings.TrimSpace(m.ID), Aliases: m.Aliases, Author: m.Author, DisplayName: m.DisplayName,
		ContextWindow: m.ContextWindow, MaxOutputTokens: m.MaxOutputTokens,
		InputModalities: m.InputModalities, OutputModalities: m.OutputModalities,
		Features: m.Features, Metadata: m.Metadata,
		Pricing: catalog.Pricing{Input: m.Pricing.Input, Output: m.Pricing.Output, CacheRead: m.Pricing.CacheRead, CacheWrite: m.Pricing.CacheWrite},
	}, ok
}
