package catalog

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors for errors.Is; Resolve wraps them in a *NameError.
var (
	// ErrUnknownModel: no provider serves the name, and it has no provider
	// prefix that would allow passing it through.
	ErrUnknownModel = errors.New("unknown model")
	// ErrUnknownProvider: the name has a "prefix:" that names no provider
	// and the whole name is not a model either.
	ErrUnknownProvider = errors.New("unknown provider")
	// ErrInvalidName: the name is empty, too long, has control characters,
	// or has an empty part around the ':'.
	ErrInvalidName = errors.New("invalid model name")
)

// MaxNameLen is the longest model name, in bytes, Resolve accepts.
const MaxNameLen = 1024

// NameError reports a model name that does not resolve. Name is the name as
// given, trimmed of surrounding spaces (its first 64 bytes and "..." when it
// is longer than MaxNameLen), and Provider the provider prefix it named, if
// any (the catalog ID when the provider is known). Err is, or wraps,
// ErrUnknownModel, ErrUnknownProvider or ErrInvalidName. The zero NameError is not meaningful. A *NameError is not
// modified after Resolve returns it and is safe to share.
type NameError struct {
	Name     string
	Provider string
	Err      error
}

// Error describes the problem, prefixed "catalog: ".
func (e *NameError) Error() string {
	s := "catalog: model name " + strconv.Quote(e.Name)
	if e.Provider != "" {
		s += " (provider " + strconv.Quote(e.Provider) + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns Err.
func (e *NameError) Unwrap() error { return e.Err }

// invalidName is a reason a name is invalid; it matches ErrInvalidName.
type invalidName string

// The reasons, as constants so that nothing can change them.
const (
	errEmptyName     invalidName = "empty"
	errLongName      invalidName = "longer than 1024 bytes"
	errControlName   invalidName = "contains a control character"
	errEmptyModel    invalidName = "empty model after the provider prefix"
	errEmptyProvider invalidName = "empty provider before ':'"
)

func (e invalidName) Error() string        { return ErrInvalidName.Error() + ": " + string(e) }
func (e invalidName) Is(target error) bool { return target == ErrInvalidName }

// Match is one way to serve a resolved model name: a provider and the model
// it serves. The zero Match is not meaningful. Matches returned by Resolve
// point at the catalog's shared providers and models, which must not be
// modified.
type Match struct {
	// Provider is the provider to call; never nil in a Match from Resolve.
	Provider *Provider
	// Model is the catalog model, or nil for an unknown model passed through
	// with a provider prefix.
	Model *Model
	// UpstreamID is the model name to send upstream: Model.ID when the model
	// is known, else the client's text after the provider prefix verbatim
	// (case preserved, surrounding spaces trimmed). Never empty.
	UpstreamID string
}

// Known reports whether the match is a catalog model rather than an unknown
// pass-through.
func (m Match) Known() bool { return m.Model != nil }

// Resolve turns a client's model name into the providers and models that can
// serve it. Names have the shape
//
//	[provider ":"] [author "/"] model
//
// and are matched ASCII case-insensitively:
//
//  1. Surrounding spaces are trimmed. An empty name, one longer than
//     [MaxNameLen] or one with control characters is invalid.
//  2. If the name has a ':' and the text before the first ':' is a provider
//     ID or alias, that provider is pinned and the rest (trimmed) is the model
//     part, which may itself contain ':' or '/' ("my-ollama:llama3.2:latest").
//     The model part is looked up in that provider by ID or alias, else as
//     "author/model" where author is the model's Author
//     ("openai:openai/gpt-4o"). When nothing matches it is an unknown model:
//     a single Match with a nil Model whose UpstreamID is the model part
//     verbatim ("openrouter:anthropic/claude-sonnet-4.5" sends
//     "anthropic/claude-sonnet-4.5"). An empty model part is invalid.
//  3. Otherwise the whole name is looked up in every provider, by ID or alias
//     and as "author/model" ("openai/gpt-4o", "meta-llama/llama-3.3-70b-versatile").
//     Every provider that serves it yields one Match; matches are sorted by
//     provider ID, alphabetically (the order the gateway tries them in when
//     no strategy reorders them). If nothing matches, a name with a ':' is an
//     unknown provider ([ErrUnknownProvider], NameError.Provider is the
//     prefix; an empty prefix is invalid) and any other name an unknown model
//     ([ErrUnknownModel]).
//
// Errors are *NameError. The returned slice is new and owned by the caller.
// Resolve is safe for concurrent use and allocates only the result slice,
// plus one lower-cased copy of names with upper-case letters.
func (c *Catalog) Resolve(name string) ([]Match, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return nil, &NameError{Name: name, Err: errEmptyName}
	case len(name) > MaxNameLen:
		return nil, &NameError{Name: name[:64] + "...", Err: errLongName}
	case hasControl(name):
		return nil, &NameError{Name: name, Err: errControlName}
	}
	if c == nil {
		c = &Catalog{}
	}
	lower := toLower(name) // same byte offsets as name

	colon := strings.IndexByte(lower, ':')
	if colon >= 0 {
		if p := c.byName[strings.TrimSpace(lower[:colon])]; p != nil {
			rest := strings.TrimSpace(name[colon+1:])
			if rest == "" {
				return nil, &NameError{Name: name, Provider: p.ID, Err: errEmptyModel}
			}
			restLower := strings.TrimSpace(lower[colon+1:])
			if m := p.lookup(restLower); m != nil {
				return []Match{{Provider: p, Model: m, UpstreamID: upstreamID(m, restLower)}}, nil
			}
			return []Match{{Provider: p, UpstreamID: rest}}, nil
		}
	}

	if out := c.lookupAll(lower); out != nil {
		for i := range out {
			out[i].UpstreamID = upstreamID(out[i].Model, lower)
		}
		return out, nil
	}
	if colon >= 0 {
		prefix := strings.TrimSpace(name[:colon])
		if prefix == "" {
			return nil, &NameError{Name: name, Err: errEmptyProvider}
		}
		return nil, &NameError{Name: name, Provider: prefix, Err: ErrUnknownProvider}
	}
	return nil, &NameError{Name: name, Err: ErrUnknownModel}
}

// lookupAll finds every provider serving a lower-cased name, exact ID or
// alias first, else author/model; nil when none does. The result is a new
// slice sorted by provider ID.
func (c *Catalog) lookupAll(key string) []Match {
	exact := c.byModel[key]
	var byAuthor []Match
	var author string
	if i := strings.IndexByte(key, '/'); i > 0 && i < len(key)-1 {
		author = key[:i]
		byAuthor = c.byModel[key[i+1:]]
	}
	n := len(exact)
	for _, m := range byAuthor {
		if equalFold(m.Model.Author, author) {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	out := make([]Match, 0, n)
	if n == len(exact) {
		return append(out, exact...)
	}
	// Merge the two lists, both sorted by provider ID; an exact match wins
	// over an author match at the same provider.
	i := 0
	for _, m := range byAuthor {
		if !equalFold(m.Model.Author, author) {
			continue
		}
		for i < len(exact) && compareFold(exact[i].Provider.ID, m.Provider.ID) < 0 {
			out = append(out, exact[i])
			i++
		}
		if i < len(exact) && exact[i].Provider == m.Provider {
			continue
		}
		out = append(out, m)
	}
	return append(out, exact[i:]...)
}

// upstreamID returns the name to send upstream for a known model that the
// client named key (lower-cased, possibly "author/model"): the model ID,
// except that a dated snapshot alias ("gpt-4o-2024-08-06",
// "claude-sonnet-4-5-20250929") is sent as itself, because the provider
// serves that exact snapshot and the undated ID may point at a newer one.
func upstreamID(m *Model, key string) string {
	if i := strings.LastIndexByte(key, '/'); i >= 0 && !equalFold(m.ID, key) {
		if equalFold(m.Author, key[:i]) {
			key = key[i+1:]
		}
	}
	if equalFold(m.ID, key) || !isDated(key) {
		return m.ID
	}
	for _, a := range m.Aliases {
		if equalFold(a, key) {
			return a
		}
	}
	return m.ID
}

// isDated reports whether name ends in a snapshot date: "-YYYY-MM-DD" or
// "-YYYYMMDD".
func isDated(name string) bool {
	digits := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
		return len(s) > 0
	}
	n := len(name)
	if n > 11 && name[n-11] == '-' && name[n-6] == '-' && name[n-3] == '-' &&
		digits(name[n-10:n-6]) && digits(name[n-5:n-3]) && digits(name[n-2:]) {
		return name[n-10] == '2'
	}
	if n > 9 && name[n-9] == '-' && digits(name[n-8:]) {
		return name[n-8] == '2'
	}
	return false
}
