package httpx

import (
	"maps"
	"net/http"
	"slices"
)

// ValidHeaderValue reports whether v can be sent as an HTTP header value
// (no control characters other than horizontal tab).
func ValidHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// ValidHeaderName reports whether n is an RFC 9110 token.
func ValidHeaderName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '!' || c == '#' || c == '$' || c == '%' || c == '&' || c == '\'' || c == '*' ||
			c == '+' || c == '-' || c == '.' || c == '^' || c == '_' || c == '`' || c == '|' || c == '~':
		default:
			return false
		}
	}
	return true
}

// ValidValues returns the values of vs that can be sent in a header: a
// client header value with control characters is dropped rather than
// failing the request. When every value is valid (the usual case) it
// returns vs itself, without copying, with its capacity clipped to its
// length so that appending to the result copies instead of writing into
// vs; otherwise it returns a new slice. Either way the caller must not
// modify the elements of the result.
func ValidValues(vs []string) []string {
	for i, v := range vs {
		if !ValidHeaderValue(v) {
			var out []string
			out = append(out, vs[:i]...)
			for _, v := range vs[i+1:] {
				if ValidHeaderValue(v) {
					out = append(out, v)
				}
			}
			return out
		}
	}
	return slices.Clip(vs)
}

// reserved are the headers set by SetStandard or by the transport.
var reserved = map[string]bool{
	"Content-Type":      true,
	"Content-Length":    true,
	"Accept":            true,
	"User-Agent":        true,
	"Host":              true,
	"Connection":        true,
	"Keep-Alive":        true,
	"Proxy-Connection":  true,
	"Transfer-Encoding": true,
	"Te":                true,
	"Trailer":           true,
	"Upgrade":           true,
}

// Reserved reports whether the header with the canonical name canon is
// managed by SetStandard or the transport (Content-Type, Accept,
// User-Agent, Content-Length, Host and the hop-by-hop headers), so that a
// configuration may neither set it nor use it to carry the key.
func Reserved(canon string) bool { return reserved[canon] }

// ConfigHeader validates the extra headers of a provider configuration and
// returns them with canonical keys, in a new map. Each problem is reported
// through fail (a format and its arguments, as for fmt.Errorf) in a fixed
// order: by sorted name, a name that is not a token, then a Reserved one,
// then one refuse rejects (refuse returns the problem for a canonical name,
// or "" to accept it; nil accepts all), then each value with control
// characters. Rejected names and values are left out.
//
// The value slices of the result have no spare capacity: a provider may
// share them with every request without copying, because appending to one
// copies it. Neither the provider nor net/http modifies them (net/http only
// reads the request header, and Header.Set replaces a slice).
func ConfigHeader(h http.Header, refuse func(canon string) string, fail func(format string, args ...any)) http.Header {
	out := make(http.Header, len(h))
	for _, name := range slices.Sorted(maps.Keys(h)) {
		canon := http.CanonicalHeaderKey(name)
		if !ValidHeaderName(name) {
			fail("header name %q is not a valid token", name)
			continue
		}
		if Reserved(canon) {
			fail("header %q is managed by the provider and cannot be set", canon)
			continue
		}
		if refuse != nil {
			if problem := refuse(canon); problem != "" {
				fail("%s", problem)
				continue
			}
		}
		for _, v := range h[name] {
			if !ValidHeaderValue(v) {
				fail("header %q has a value with control characters", canon)
				continue
			}
			out.Add(canon, v)
		}
	}
	for k, vs := range out {
		out[k] = slices.Clip(vs)
	}
	return out
}

// SetExtra sets the per-request headers of providers.Request.ExtraHeader
// in h, each replacing the header of the same name, except skip (a
// canonical name the provider merges itself; "" for none): names that are
// not tokens or are Reserved are skipped, and so are values with control
// characters. Value slices are shared with extra, not copied (see
// ValidValues).
func SetExtra(h, extra http.Header, skip string) {
	for name, vs := range extra {
		canon := http.CanonicalHeaderKey(name)
		if canon == skip || !ValidHeaderName(name) || Reserved(canon) {
			continue
		}
		if vs = ValidValues(vs); len(vs) > 0 {
			h[canon] = vs
		}
	}
}

// AuthHeader returns the canonical name of the header that carries the
// key: def (canonical) when configured is "", else configured, which must
// be a valid header name that is neither Reserved nor managed (managed
// reports the provider's own headers; nil means none). A problem is
// reported through fail. The scheme follows from the name (see SetKey).
func AuthHeader(configured, def string, managed func(canon string) bool, fail func(format string, args ...any)) string {
	if configured == "" {
		return def
	}
	canon := http.CanonicalHeaderKey(configured)
	switch {
	case !ValidHeaderName(configured):
		fail("auth header %q is not a valid header name", configured)
	case Reserved(canon) || managed != nil && managed(canon):
		fail("auth header %q is managed by the provider", canon)
	}
	return canon
}

// UserAgent returns the User-Agent value for SetStandard, built once per
// provider: configured, or def when configured is "". A configured value
// with control characters is reported through fail.
func UserAgent(configured, def string, fail func(format string, args ...any)) []string {
	if configured == "" {
		return []string{def}
	}
	if !ValidHeaderValue(configured) {
		fail("user agent has control characters")
	}
	return []string{configured}
}

// Shared header values. SetStandard assigns these slices to every request
// header instead of allocating new ones: they must never be modified. That
// holds downstream too: net/http only reads request header values, and
// Header.Set and Header.Add replace a slice or, its capacity being its
// length, copy it.
var (
	contentJSON = []string{"application/json"}
	acceptJSON  = []string{"application/json"}
	acceptSSE   = []string{"text/event-stream"}
)

// SetStandard sets the headers every request carries: Content-Type:
// application/json, Accept (text/event-stream when stream, else
// application/json) and User-Agent. userAgent holds the one User-Agent
// value; it is assigned, not copied, so the provider builds it once and
// must not modify it afterwards.
func SetStandard(h http.Header, stream bool, userAgent []string) {
	h["Content-Type"] = contentJSON
	if stream {
		h["Accept"] = acceptSSE
	} else {
		h["Accept"] = acceptJSON
	}
	h["User-Agent"] = userAgent
}

// SetKey sets the credential: "Authorization: Bearer <secret>" when name
// is "Authorization", else "<name>: <secret>". name must be canonical and
// secret a ValidHeaderValue. An empty secret sets nothing, so a header of
// the same name already in h stays (a keyless upstream with custom
// authentication).
func SetKey(h http.Header, name, secret string) {
	switch {
	case secret == "":
	case name == "Authorization":
		h[name] = []string{"Bearer " + secret}
	default:
		h[name] = []string{secret}
	}
}
