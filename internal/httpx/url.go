package httpx

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
)

// Target is a request URL prepared once, when a provider is created.
type Target struct {
	URL   string // full request URL, with query
	Shown string // URL without its query, for error text
}

// ParseBaseURL checks an API root URL: it must be an absolute http or https
// URL with a host and without credentials or fragment; a query is allowed
// (JoinURL keeps it). It reports every problem in one error, whose text
// never contains the URL's password. It is llmgate's one base URL rule: the
// catalog (for provider base URLs) and the OpenAI and Anthropic provider
// implementations all apply it, so a URL the catalog accepts is one the
// providers accept.
func ParseBaseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("base URL is required")
	}
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

// CheckQuery reports through fail (a format and its arguments, as for
// fmt.Errorf) the problems of the extra query parameters of a provider
// configuration: an empty parameter name, once per such name.
func CheckQuery(q url.Values, fail func(format string, args ...any)) {
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if k == "" {
			fail("query parameter names must not be empty")
		}
	}
}

// JoinURL appends path to the base URL's path (adding the missing "/") and
// merges extra into its query: a parameter in extra replaces one of the same
// name in base. Neither base nor extra is modified or retained.
func JoinURL(base *url.URL, extra url.Values, path string) Target {
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
	return Target{URL: full, Shown: u.String()}
}

// WithQuery returns t with extra merged into its URL's query, each
// parameter replacing one of the same name; parameters with an empty name
// are skipped. Shown is kept. t is returned as is when extra is empty.
func WithQuery(t Target, extra url.Values) (Target, error) {
	if len(extra) == 0 {
		return t, nil
	}
	u, err := url.Parse(t.URL)
	if err != nil {
		return t, RedactURL(err, t.Shown)
	}
	q := u.Query()
	for k, vs := range extra {
		if k != "" {
			q[k] = vs
		}
	}
	u.RawQuery = q.Encode()
	return Target{URL: u.String(), Shown: t.Shown}, nil
}
