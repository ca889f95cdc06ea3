package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	gateway "github.com/llmgate/gateway"
)

// Error lists every problem with a configuration file, each with the path
// of its field and its line. Parse, ReadFile, Load, Check and Explain
// return it.
type Error struct {
	// File is the file's name; "" when the file was not read by ReadFile
	// or Load.
	File string
	// Problems are the problems in line order; those without a line come
	// last.
	Problems []*Problem
}

// Error returns "FILE: invalid configuration: PROBLEM" for one problem and
// "FILE: invalid configuration (N problems):" followed by one indented line
// per problem otherwise.
func (e *Error) Error() string {
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

// Unwrap returns the problems, so that errors.As finds a problem's
// *gateway.OptionError.
func (e *Error) Unwrap() []error {
	out := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p
	}
	return out
}

// Problem is one problem with a configuration file.
type Problem struct {
	// Path is the field's path in the file, such as "total_timeout" or
	// "providers[1].api_keys[0].value"; "" when the problem concerns the
	// file as a whole or could not be placed.
	Path string
	// Line is the 1-based line of the field (or of its closest enclosing
	// field present in the file); 0 when unknown.
	Line int
	// Err is the problem: a *gateway.OptionError for a problem
	// gateway.New found.
	Err error

	msg string // Err's text for the file: without the option's name, values from the environment shown as references
}

// Error returns "path: problem (line N)".
func (p *Problem) Error() string {
	s := p.msg
	if p.Path != "" {
		s = p.Path + ": " + s
	}
	if p.Line > 0 {
		s += " (line " + strconv.Itoa(p.Line) + ")"
	}
	return s
}

// Unwrap returns Err.
func (p *Problem) Unwrap() error { return p.Err }

// Check builds a gateway from f.Options() followed by extra, closes it
// again, and returns Explain of the result: nil when the file, with extra,
// makes a valid gateway. Load calls it; a host that calls gateway.New
// itself uses Explain instead.
func (f *File) Check(extra ...gateway.Option) error {
	gw, err := gateway.New(append(f.Options(), extra...)...)
	if gw != nil {
		_ = gw.Close()
	}
	return f.Explain(err)
}

// Explain returns every problem with the file: those Parse found and those
// in err, an error returned by gateway.New or Gateway.Reload for
// f.Options() (perhaps with other options appended), each placed at the
// path and line of the file that caused it. It returns nil when there is
// no problem. Explain(nil) reports Parse's problems only.
//
//	gw, err := gateway.New(f.Options()...)
//	if err := f.Explain(err); err != nil {
//		// "llmgate.yaml: invalid configuration (2 problems):
//		//   providers[0].api_keys[1].value: key 2 has an empty value (line 9)
//		//   total_timeout: ... (line 3)"
//	}
//
// A problem of New with a provider ID and field (see gateway.OptionError)
// is placed at that field of the provider's entry (at the entry when it
// has no field); one with an option's name at the field the option comes
// from; anything else, such as a problem of an option the host added, is
// listed without a place, as New wrote it. A problem at a
// field that Parse already found faulty, or inside one, is left out. Values
// taken from the environment are shown as their ${env:NAME} references.
func (f *File) Explain(err error) error {
	ps := slices.Clone(f.problems)
	if err != nil {
		l := &locator{f: f, count: map[string]int{}}
		var found []*Problem
		for _, leaf := range leaves(err, nil) {
			if oe, ok := leaf.(*gateway.OptionError); ok && oe.Option == "WithOnlyConfiguredProviders" &&
				f.OnlyAllowConfiguredProviders == nil && f.OnlyConfiguredProviders() {
				continue // the file's default, with every entry refused: New reports why
			}
			found = append(found, l.problems(leaf)...)
		}
		for _, p := range found {
			switch {
			case f.faultyWithin(p.Path):
			case slices.ContainsFunc(ps, func(q *Problem) bool { return q.Path == p.Path && q.msg == p.msg }):
			default:
				ps = append(ps, p)
			}
		}
	}
	if len(ps) == 0 {
		return nil
	}
	sortProblems(ps)
	return &Error{File: f.name, Problems: ps}
}

// faultyWithin reports whether path, or a field enclosing it, has a
// problem Parse found.
func (f *File) faultyWithin(path string) bool {
	for p := range enclosing(path) {
		if f.bad[p] {
			return true
		}
	}
	return false
}

// sortProblems orders problems by line, those without one last.
func sortProblems(ps []*Problem) {
	slices.SortStableFunc(ps, func(a, b *Problem) int {
		switch {
		case a.Line == b.Line:
			return 0
		case a.Line == 0:
			return 1
		case b.Line == 0:
			return -1
		}
		return a.Line - b.Line
	})
}

// leaves returns the problems in err's tree: each *gateway.OptionError,
// and each error that holds none.
func leaves(err error, out []error) []error {
	switch x := err.(type) {
	case nil:
	case *gateway.OptionError:
		out = append(out, x)
	case interface{ Unwrap() []error }:
		for _, e := range x.Unwrap() {
			out = leaves(e, out)
		}
	case interface{ Unwrap() error }:
		if len(gateway.OptionErrors(err)) > 0 { // a wrapper such as "llmgate: invalid configuration: %w"
			return leaves(x.Unwrap(), out)
		}
		out = append(out, err)
	default:
		out = append(out, err)
	}
	return out
}

// locator places the errors of gateway.New in a file.
type locator struct {
	f     *File
	count map[string]int // errors placed so far per provider and field, to tell same-ID entries apart
}

// problems returns the problems of one leaf error of New: usually one, one
// per part for a joined transport error.
func (l *locator) problems(err error) []*Problem {
	oe, ok := err.(*gateway.OptionError)
	if !ok {
		return []*Problem{l.problem("", err, err.Error())}
	}
	if oe.Option != "WithProvider" {
		path := l.optionPath(oe)
		if path == "" || l.f.lines != nil && lineOf(l.f.lines, path) == 0 {
			return []*Problem{l.problem("", oe, oe.Error())} // not the file's option
		}
		return []*Problem{l.problem(path, oe, oe.Err.Error())}
	}
	path := l.providerPath(oe.Provider, oe.Field)
	if path == "" || oe.Provider == "" && oe.Field == "" {
		return []*Problem{l.problem("", oe, oe.Error())} // not the file's provider
	}
	parts := []error{oe.Err}
	if oe.Field == "" {
		parts = joined(oe.Err, nil) // a transport's problems, one by one
	}
	out := make([]*Problem, len(parts))
	for i, part := range parts {
		out[i] = l.problem(path, oe, part.Error())
	}
	return out
}

// joined returns the parts of an errors.Join tree.
func joined(err error, out []error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = joined(e, out)
		}
		return out
	}
	return append(out, err)
}

func (l *locator) problem(path string, err error, msg string) *Problem {
	return &Problem{Path: path, Line: lineOf(l.f.lines, path), Err: err, msg: l.f.redact(msg)}
}

// redact replaces the values of environment variables in msg with their
// references: a variable may hold a secret even where the file does not
// expect one. Short values are replaced only where they stand quoted.
func (f *File) redact(msg string) string {
	for name, v := range f.env {
		ref := "${env:" + name + "}"
		switch {
		case len(v) >= 6:
			msg = strings.ReplaceAll(msg, v, ref)
		case v != "":
			msg = strings.ReplaceAll(msg, strconv.Quote(v), strconv.Quote(ref))
		}
	}
	return msg
}

// optionPath returns the path of the field an option other than
// WithProvider comes from: the option's field, then the argument or list
// element New names in e.Field.
func (l *locator) optionPath(e *gateway.OptionError) string {
	if e.Option == "WithTimeouts" && e.Field == "" {
		// A rule between the two (per-attempt beyond total): the
		// per-attempt timeout when the file sets it.
		if l.f.PerRequestTimeout != nil {
			return "per_request_timeout"
		}
		return "total_timeout"
	}
	if e.Option == "WithDefaultModels" && len(l.f.DefaultModels) == 0 {
		return "" // the providers' default models
	}
	if e.Option == "WithParamAllowList" {
		// Field is the surface, then the element: "messages[1]".
		return "request_policy.allow." + e.Field
	}
	if path, ok := argumentFields[e.Option+"."+e.Field]; ok {
		return path
	}
	path := optionFields[e.Option]
	if path != "" && strings.HasPrefix(e.Field, "[") {
		path += e.Field // an element of a list option
	}
	return path
}

// argumentFields maps the arguments of options with several (as New names
// them in OptionError.Field) to their fields in the file.
var argumentFields = map[string]string{
	"WithTimeouts.perAttempt":             "per_request_timeout",
	"WithTimeouts.total":                  "total_timeout",
	"WithClientTimeouts.readBody":         "body_read_timeout",
	"WithClientTimeouts.write":            "write_timeout",
	"WithKeyCooldowns.auth":               "key_cooldowns.auth",
	"WithKeyCooldowns.rateLimit":          "key_cooldowns.rate_limit",
	"WithKeyCooldowns.maxRetryAfter":      "key_cooldowns.max_retry_after",
	"WithStreamHoldback.events":           "stream_holdback.events",
	"WithStreamHoldback.bytes":            "stream_holdback.bytes",
	"WithDefaultModels.":                  "default_models",
	"WithKeyCooldowns.":                   "key_cooldowns",
	"WithStreamHoldback.":                 "stream_holdback",
	"WithClientTimeouts.":                 "body_read_timeout",
	"WithKeyStore.Endpoint":               "endpoint",
	"WithMetering.FeeBasisPoints":         "credits.fee_percent",
	"WithMetering.FeePerMillionTokens":    "credits.fee_per_million_tokens",
	"WithMetering.MinOutputTokens":        "credits.min_output_tokens",
	"WithMetering.DefaultMaxOutputTokens": "credits.default_max_output_tokens",
	"WithMetering.HoldTTL":                "credits.hold_ttl",
	"WithMetering.SweepInterval":          "credits.sweep_interval",
	"WithRedaction.Mode":                  "redaction.mode",
}

// optionFields maps the options with one field to it.
var optionFields = map[string]string{
	"WithDefaultModels":           "default_models",
	"WithStreamIdleTimeout":       "stream_idle_timeout",
	"WithStreamKeepAlive":         "stream_keep_alive",
	"WithOnlyConfiguredProviders": "only_allow_configured_providers",
	"WithOnlyConfiguredModels":    "only_allow_configured_models",
	"WithMaxRequestBytes":         "max_request_bytes",
	"WithMaxResponseBytes":        "max_response_bytes",
	"WithMaxEventBytes":           "max_event_bytes",
	"WithFailFastStatuses":        "fail_fast_statuses",
	"WithMaxModels":               "max_models",
	"WithMaxAttempts":             "max_attempts",
	"WithPassThrough":             "pass_through",
	"WithErrorDetail":             "error_detail",
	"WithCORS":                    "cors_origins",
	"WithRedaction":               "redaction.rules",
	"WithForwardHeaders":          "forward_headers",
	"WithAllowedHosts":            "allowed_hosts",
	"WithModelSelection":          "model_selection.strategy",
	"WithKeySelection":            "api_key_selection.strategy",
	"WithKeyStore":                "store",
	"WithMetering":                "credits",
	"WithTokenLimits":             "limits",
}

// negative reports whether *p is negative (or zero, with orZero); false
// for nil.
func negative[T ~int | ~int64](p *T, orZero bool) bool {
	return p != nil && (*p < 0 || orZero && *p == 0)
}

// providerPath returns the path of field (a gateway.ProviderConfig path
// such as "Keys[1].Value") in the entry of provider id.
func (l *locator) providerPath(id, field string) string {
	var same []int
	for i, p := range l.f.Providers {
		if p.ID == id {
			same = append(same, i)
		}
	}
	if len(same) == 0 {
		for i, p := range l.f.Providers {
			if strings.EqualFold(p.ID, id) {
				same = append(same, i)
			}
		}
	}
	if len(same) == 0 {
		return ""
	}
	i := same[0]
	if len(same) > 1 {
		// Several entries with this ID: New checks them in order, and
		// reports the second and later ones as configured twice.
		key := strings.ToLower(id) + "|" + field
		n := l.count[key]
		l.count[key]++
		if field == "ID" && id != "" {
			n++
		}
		i = same[min(n, len(same)-1)]
	}
	path := "providers[" + strconv.Itoa(i) + "]"
	if mp, ok := modelPolicyPath(&l.f.Providers[i], field); ok {
		return path + "." + mp
	}
	if field != "" {
		path += "." + yamlPath(field)
	}
	return path
}

// yamlPath turns a Go field path of gateway.ProviderConfig into the
// file's: "Keys[1].Value" → "api_keys[1].value", "Models[0].Pricing.Input"
// → "models[0].pricing.input", `Headers["X-A"]` → "headers.X-A".
func yamlPath(field string) string {
	var b strings.Builder
	for i, seg := range strings.Split(field, ".") {
		if i > 0 {
			b.WriteByte('.')
		}
		name, index, _ := strings.Cut(seg, "[")
		switch name {
		case "Keys":
			b.WriteString("api_keys")
		case "KeySelection":
			b.WriteString("api_key_selection.strategy")
		default:
			b.WriteString(snake(name))
		}
		switch {
		case index == "":
		case strings.HasPrefix(index, `"`):
			if key, err := strconv.Unquote(strings.TrimSuffix(index, "]")); err == nil && key != "" {
				b.WriteString("." + key)
			}
		default:
			b.WriteString("[" + index)
		}
	}
	return b.String()
}

// snake turns a Go field name into snake case: "BaseURL" → "base_url",
// "APIKeys" → "api_keys".
func snake(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			prevLower := i > 0 && 'a' <= s[i-1] && s[i-1] <= 'z'
			nextLower := i+1 < len(s) && 'a' <= s[i+1] && s[i+1] <= 'z'
			if i > 0 && (prevLower || nextLower) {
				b.WriteByte('_')
			}
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}
